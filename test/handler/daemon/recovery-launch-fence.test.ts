// Hardening #5: recovery of a Pending run whose launch may still be on its way. It fences the
// journaled launch first: a launch it fenced is launched afresh (with a new nonce), a launch a
// wrapper claimed is followed (never started again), and a journal without a nonce (an earlier
// version's) is recovered as before.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { errorCodes } from '../../../src/errors.js';
import { launchOutcomeUnknown, recoverRuns, type RecoveryHooks } from '../../../src/handler/daemon/recovery.js';
import type { Log } from '../../../src/handler/infra/logger.js';
import { RunStore } from '../../../src/handler/state/run-store.js';
import { makeRunJournal, type RunJournal } from '../../../src/runner/journal.js';
import { toLaunchClaimPath } from '../../../src/runner/run-directory.js';
import type { Run } from '../../../src/runner/run.js';
import { FakeProcesses, makeFakeRunDeps, ManualClock, MemoryJournals, until } from '../../helpers/fake-runner.js';
import { parseSettings } from '../../helpers/settings.js';
import { useTempDir } from '../../helpers/temp-dir.js';

const dir = useTempDir('recovery-fence');
const nonce = '0123456789abcdef0123456789abcdef';
const identity = { wrapperPid: 4321, pid: 4322, pgid: 4322, startTime: '77', wrapperStartTime: '76' };

interface Recovered {
  adopted: Run[];
  scheduled: Run[];
  errors: string[];
  processes: FakeProcesses;
  runDir: string;
}

// Recovers one Pending run journaled with `launchNonce`, after `arrange` set up its run directory.
async function recover(launchNonce: string | undefined, arrange: (runDir: string) => Promise<void> = async () => undefined): Promise<Recovered> {
  const store = new RunStore(dir());
  await store.ensure();
  const clock = new ManualClock();
  const processes = new FakeProcesses();
  const runDeps = makeFakeRunDeps({ clock, processes, journals: new MemoryJournals(), workRoot: dir() });
  const runId = 'rc1.3.x';
  await store.makeRunDir(runId);
  await store.recordLaunch({ name: 'rc1', seq: 3, runId });
  const journal: RunJournal = {
    ...makeRunJournal({ name: 'rc1', seq: 3, runId, settingsFile: '/config/rc1.3.settings', bootId: 'boot-1' }, clock.now()),
    launchAttempts: 1,
    ...(launchNonce === undefined ? {} : { launchNonce }),
  };
  await store.writeJournal(journal);
  const runDir = store.toRunDir(runId);
  await arrange(runDir);
  const recovered: Recovered = { adopted: [], scheduled: [], errors: [], processes, runDir };
  const log: Log = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: (message) => void recovered.errors.push(message) };
  const hooks: RecoveryHooks = {
    adopt: (run) => void recovered.adopted.push(run),
    schedule: (run) => void recovered.scheduled.push(run),
    load: async () => parseSettings({ source: { script: 'echo hi' } }),
    runDeps,
    log,
    launchFence: { waitMs: 300 },
  };
  expect(await recoverRuns(store, hooks)).toBe(1);
  return recovered;
}

describe('recovery of a run whose launch may still be on its way', () => {
  it('fences an unclaimed launch, then launches the run afresh with a new nonce', async () => {
    const { scheduled, processes, runDir } = await recover(nonce);
    expect(scheduled).toHaveLength(1);
    // The fence: the name the old launch's wrapper would need is taken, as a directory.
    await expect(mkdir(toLaunchClaimPath(runDir, nonce))).rejects.toMatchObject({ code: 'EEXIST' });
    const run = scheduled[0]!;
    void run.execute();
    await until(() => run.journal.state === 'Running', 'the run to be launched again');
    expect(processes.launches).toHaveLength(1);
    expect(processes.launches[0]?.launchNonce).toMatch(/^[0-9a-f]{32}$/);
    expect(processes.launches[0]?.launchNonce).not.toBe(nonce);
    expect(run.journal.launchNonce).toBe(processes.launches[0]?.launchNonce);
  });

  it('launches afresh a run an earlier recovery fenced (a daemon killed again before the relaunch)', async () => {
    const { scheduled, adopted } = await recover(nonce, (runDir) => mkdir(toLaunchClaimPath(runDir, nonce)));
    expect(scheduled).toHaveLength(1);
    expect(adopted).toHaveLength(1);
  });

  it('follows a launch a wrapper claimed, once it reports the script, and never starts it again', async () => {
    const { scheduled, adopted, processes } = await recover(nonce, async (runDir) => {
      await writeFile(toLaunchClaimPath(runDir, nonce), '');
      setTimeout(() => void writeFile(join(runDir, 'process.json'), JSON.stringify(identity)), 50);
    });
    expect(scheduled).toEqual([]);
    expect(adopted).toHaveLength(1);
    expect(processes.attached).toEqual([identity]);
    expect(adopted[0]!.journal).toMatchObject({ state: 'Running', process: identity });
    processes.exit(identity.pid, { kind: 'exited', exitCode: 4 });
    expect(await adopted[0]!.done).toMatchObject({ state: 'Failed', exitCode: 4 });
    expect(processes.launches).toEqual([]);
  });

  it('ends a run whose claimed launch never reports its script as unknown, never starting it again', async () => {
    const { scheduled, adopted, errors, processes } = await recover(nonce, (runDir) => writeFile(toLaunchClaimPath(runDir, nonce), ''));
    expect(scheduled).toEqual([]);
    const journal = await adopted[0]!.done;
    expect(journal).toMatchObject({ state: 'Failed', exitCode: errorCodes.general, handlerFailure: true });
    expect(journal.message).toContain(launchOutcomeUnknown('its wrapper claimed the launch but did not report the script process within 0.3 s'));
    expect(errors).toContain('run launch interrupted, its outcome unknown: the run is ended, never started again');
    expect(processes.launches).toEqual([]);
  });

  it('recovers a journal without a launch nonce (an earlier version) as before: scheduled again', async () => {
    const { scheduled } = await recover(undefined);
    expect(scheduled).toHaveLength(1);
  });
});
