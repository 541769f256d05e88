// Hardening #3: a run whose launch work keeps taking the daemon down is ended by recovery with a
// clear error once it reached maxLaunchAttempts, instead of being started again on every restart.
import { describe, expect, it } from 'vitest';
import { errorCodes } from '../../../src/errors.js';
import { launchFailedRepeatedly, recoverRuns, type RecoveryHooks } from '../../../src/handler/daemon/recovery.js';
import type { Log } from '../../../src/handler/infra/logger.js';
import { RunStore } from '../../../src/handler/state/run-store.js';
import { makeRunJournal, maxLaunchAttempts, type RunJournal } from '../../../src/runner/journal.js';
import type { Run } from '../../../src/runner/run.js';
import { FakeProcesses, makeFakeRunDeps, ManualClock, MemoryJournals } from '../../helpers/fake-runner.js';
import { parseSettings } from '../../helpers/settings.js';
import { useTempDir } from '../../helpers/temp-dir.js';

const dir = useTempDir('recovery-attempts');

async function recoverWith(launchAttempts: number | undefined): Promise<{ adopted: Run[]; scheduled: Run[]; loaded: number; errors: string[]; journals: MemoryJournals }> {
  const store = new RunStore(dir());
  await store.ensure();
  const clock = new ManualClock();
  const journals = new MemoryJournals();
  const processes = new FakeProcesses();
  const runDeps = makeFakeRunDeps({ clock, processes, journals, workRoot: dir() });
  const runId = 'rc1.3.x';
  await store.makeRunDir(runId);
  await store.recordLaunch({ name: 'rc1', seq: 3, runId });
  const journal: RunJournal = {
    ...makeRunJournal({ name: 'rc1', seq: 3, runId, settingsFile: '/config/rc1.3.settings', bootId: 'boot-1' }, clock.now()),
    ...(launchAttempts === undefined ? {} : { launchAttempts }),
  };
  await store.writeJournal(journal);
  const adopted: Run[] = [];
  const scheduled: Run[] = [];
  const errors: string[] = [];
  let loaded = 0;
  const log: Log = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: (message) => void errors.push(message) };
  const hooks: RecoveryHooks = {
    adopt: (run) => void adopted.push(run),
    schedule: (run) => void scheduled.push(run),
    load: async () => {
      loaded += 1;
      return parseSettings({ source: { script: 'echo hi' } });
    },
    runDeps,
    log,
  };
  expect(await recoverRuns(store, hooks)).toBe(1);
  return { adopted, scheduled, loaded, errors, journals };
}

describe('recovery of a run whose launch kept failing', () => {
  it(`ends a Pending run journaled with ${maxLaunchAttempts} launch attempts as Failed, saying so, and never starts it`, async () => {
    const { adopted, scheduled, loaded, errors, journals } = await recoverWith(maxLaunchAttempts);
    expect(scheduled).toEqual([]);
    expect(loaded).toBe(0);
    expect(adopted).toHaveLength(1);
    const journal = await adopted[0]!.done;
    expect(journal).toMatchObject({ state: 'Failed', exitCode: errorCodes.startExecution, handlerFailure: true });
    expect(journal.message).toContain(launchFailedRepeatedly(maxLaunchAttempts));
    expect(journal.message).toMatch(/launch failed repeatedly/);
    expect(journals.written.at(-1)?.state).toBe('Failed');
    expect(errors).toContain('run launch failed repeatedly: the run is ended, never started again');
  });

  it('schedules again a run with fewer attempts (the daemon may have been restarted once)', async () => {
    for (const attempts of [undefined, maxLaunchAttempts - 1]) {
      const { adopted, scheduled, loaded } = await recoverWith(attempts);
      expect(scheduled).toHaveLength(1);
      expect(adopted).toHaveLength(1);
      expect(loaded).toBe(1);
      expect(scheduled[0]!.journal.state).toBe('Pending');
    }
  });
});
