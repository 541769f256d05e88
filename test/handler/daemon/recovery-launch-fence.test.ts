// Hardening #5: recovery of a Pending run whose launch may still be on its way. It fences the
// journaled launch first: a launch it fenced is launched afresh (with a new nonce), a launch a
// wrapper claimed is followed (never started again), and a journal without a nonce (an earlier
// version's) is recovered as before.
import { spawn } from 'node:child_process';
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
// The claim holder's liveness, checked for real (hardening #5's followed claims).
import type { FenceOptions } from '../../../src/runner/launch-fence.js';
import { isSameProcess, readProcessStartTime } from '../../../src/runner/process.linux.js';
import { makeGate } from '../../helpers/gate.js';

const dir = useTempDir('recovery-fence');
const nonce = '0123456789abcdef0123456789abcdef';
const identity = { wrapperPid: 4321, pid: 4322, pgid: 4322, startTime: '77', wrapperStartTime: '76' };

interface Recovered {
  adopted: Run[];
  scheduled: Run[];
  errors: string[];
  processes: FakeProcesses;
  runDir: string;
  store: RunStore;
}

// Recovers one Pending run journaled with `launchNonce`, after `arrange` set up its run directory.
async function recover(launchNonce: string | undefined, arrange: (runDir: string) => Promise<void> = async () => undefined, launchFence: FenceOptions = { waitMs: 300 }): Promise<Recovered> {
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
  const recovered: Recovered = { adopted: [], scheduled: [], errors: [], processes, runDir, store };
  const log: Log = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: (message) => void recovered.errors.push(message) };
  const hooks: RecoveryHooks = {
    adopt: (run) => void recovered.adopted.push(run),
    schedule: (run) => void recovered.scheduled.push(run),
    load: async () => parseSettings({ source: { script: 'echo hi' } }),
    runDeps,
    log,
    launchFence,
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

  // A wrapper that claimed the launch and lives on without reporting (starved or stopped) past the
  // bounded wait: its script may still start, so it is followed, in the background.
  it('follows a claimed launch whose wrapper outlives the bounded wait, without holding up recovery, until it reports', async () => {
    const holder = await startHolder();
    const fence = { waitMs: 300, isAlive: isSameProcess };
    const { scheduled, adopted, errors, processes, runDir } = await recover(nonce, (dir) => writeClaim(dir, holder), fence);
    // recoverRuns returned with the run still followed: neither started again nor ended.
    expect({ scheduled, adopted, errors }).toEqual({ scheduled: [], adopted: [], errors: [] });
    const reported = { ...identity, wrapperPid: holder.wrapperPid, wrapperStartTime: holder.wrapperStartTime };
    await writeFile(join(runDir, 'process.json'), JSON.stringify(reported));
    await until(() => adopted.length === 1, 'the run to be resumed once its wrapper reports');
    expect(processes.attached).toEqual([reported]);
    expect(adopted[0]!.journal).toMatchObject({ state: 'Running', process: reported });
    expect(processes.launches).toEqual([]);
  });

  it('ends the script of a followed launch whose run command was deleted meanwhile, and never makes that run live', async () => {
    const holder = await startHolder();
    const { adopted, processes, runDir, store } = await recover(nonce, (dir) => writeClaim(dir, holder), { waitMs: 300, isAlive: isSameProcess });
    await store.markDisabled('rc1', await store.readRecord('rc1'), Date.now());
    const reported = { ...identity, wrapperPid: holder.wrapperPid, wrapperStartTime: holder.wrapperStartTime };
    await writeFile(join(runDir, 'process.json'), JSON.stringify(reported));
    await until(() => processes.terminationRequests.length === 1, 'the script to be asked to end');
    expect(processes.terminationRequests).toEqual([reported.pid]);
    expect(adopted).toEqual([]);
  });

  it('ends a followed claimed launch as unknown once its wrapper is gone without reporting, never starting it again', async () => {
    const holder = await startHolder();
    const { scheduled, adopted, errors, processes } = await recover(nonce, (dir) => writeClaim(dir, holder), { waitMs: 300, isAlive: isSameProcess });
    expect(adopted).toEqual([]);
    holder.kill();
    await until(() => adopted.length === 1, 'the run to be ended');
    const journal = await adopted[0]!.done;
    expect(journal).toMatchObject({ state: 'Failed', exitCode: errorCodes.general, handlerFailure: true });
    expect(journal.message).toContain(launchOutcomeUnknown(`its wrapper (pid ${holder.wrapperPid}) claimed the launch but ended before it reported the script process`));
    expect(errors).toContain('run launch interrupted, its outcome unknown: the run is ended, never started again');
    expect({ scheduled, launches: processes.launches }).toEqual({ scheduled: [], launches: [] });
  });
});

interface Holder {
  readonly wrapperPid: number;
  readonly wrapperStartTime: string;
  kill(): void;
}

// A live process standing for a wrapper that claimed a launch and has not reported yet.
async function startHolder(): Promise<Holder> {
  const gate = await makeGate();
  const child = spawn('/bin/sh', ['-c', gate.wait], { stdio: 'ignore' });
  await until(() => child.pid !== undefined && readProcessStartTime(child.pid) !== undefined, 'the holder to start');
  return { wrapperPid: child.pid!, wrapperStartTime: readProcessStartTime(child.pid!)!, kill: () => child.kill('SIGKILL') };
}

// The claim as the wrapper writes it: its pid and start time.
function writeClaim(runDir: string, holder: Holder): Promise<void> {
  return writeFile(toLaunchClaimPath(runDir, nonce), `${JSON.stringify({ wrapperPid: holder.wrapperPid, wrapperStartTime: holder.wrapperStartTime })}\n`);
}
