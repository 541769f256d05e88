// @module-tag faults
// Issue #6 at the Run level: output the wrapper dropped is said in the executionMessage, a missing
// exit record is an unknown outcome (never a kill), and a journal write that fails for want of
// space is retried until it lands.
import { beforeEach, describe, expect, it } from 'vitest';
import { Run } from '../../src/runner/run.js';
import { toTruncationNote } from '../../src/runner/run-end.js';
import { makeRunJournal, type RunJournal } from '../../src/runner/journal.js';
import { FakeProcesses, makeFakeRunDeps, ManualClock, MemoryJournals, until } from '../helpers/fake-runner.js';
import { parseSettings } from '../helpers/settings.js';
import { useTempDir } from '../helpers/temp-dir.js';

const dir = useTempDir('run-full-disk');
let clock: ManualClock;
let processes: FakeProcesses;

// Journals whose next `failures` writes fail with ENOSPC, like a full disk.
class FullDiskJournals extends MemoryJournals {
  failures = 0;
  attempts = 0;

  override async writeJournal(journal: RunJournal): Promise<void> {
    this.attempts += 1;
    if (this.failures > 0) {
      this.failures -= 1;
      throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
    }
    await super.writeJournal(journal);
  }
}

function makeRun(journals: MemoryJournals): Run {
  const command = parseSettings({ source: { script: 'echo hi' } });
  const start = makeRunJournal({ name: 'rc1', seq: 3, runId: 'rc1.3.x', settingsFile: '/config/rc1.3.settings', bootId: 'boot-1' }, clock.now(), command);
  return new Run(dir(), start, command, makeFakeRunDeps({ clock, processes, journals, workRoot: dir() }));
}

// Resolves once the script was launched; `done` resolves when the run is terminal.
async function startRun(run: Run): Promise<{ done: Promise<RunJournal> }> {
  await run.persist();
  const done = run.execute();
  await until(() => run.journal.state !== 'Pending', 'the script to be launched');
  return { done };
}

beforeEach(() => {
  clock = new ManualClock();
  processes = new FakeProcesses();
});

describe('Run on a full disk', () => {
  it('says in the executionMessage how much output the wrapper dropped, and keeps the true exit code', async () => {
    const run = makeRun(new MemoryJournals());
    const { done } = await startRun(run);
    processes.exit(processes.lastPid, { kind: 'exited', exitCode: 0, output: { stdoutDropped: 1234, stderrDropped: 0, lowSpace: false } });
    const journal = await done;
    expect(journal).toMatchObject({ state: 'Succeeded', exitCode: 0 });
    expect(journal.message).toBe('Execution completed; output truncated: 1234 bytes of stdout dropped (the output cap was reached; the beginning and the end of each stream are kept)');
  });

  it('names both streams and the free-space reserve when that is what stopped the output', () => {
    expect(toTruncationNote({ stdoutDropped: 5, stderrDropped: 7, lowSpace: true })).toBe(
      "output truncated: 5 bytes of stdout and 7 bytes of stderr dropped (the output cap or the file system's free-space reserve was reached; the beginning and the end of each stream are kept)",
    );
  });

  it('reports a run whose wrapper left no record as ended in an unknown way, not as killed by signal 9', async () => {
    const run = makeRun(new MemoryJournals());
    const { done } = await startRun(run);
    processes.exit(processes.lastPid, { kind: 'unreadable', reason: 'the script wrapper ended without recording how the script ended' });
    const journal = await done;
    expect(journal.state).toBe('Failed');
    expect(journal.exitCode).toBe(-1);
    expect(journal.message).toContain('how the script ended is unknown');
    expect(journal.message).not.toContain('signal');
  });

  it('retries a journal write that failed with ENOSPC until it lands, and the run goes on meanwhile', async () => {
    const journals = new FullDiskJournals();
    const run = makeRun(journals);
    const warnings: string[] = [];
    run.on('warning', (warning: string) => warnings.push(warning));
    const { done } = await startRun(run);
    journals.failures = 1;
    processes.exit(processes.lastPid, { kind: 'exited', exitCode: 7 });
    const journal = await done; // not held up by the failed write
    expect(journal).toMatchObject({ state: 'Failed', exitCode: 7 });
    await until(() => journals.written.at(-1)?.state === 'Failed', 'the terminal journal to land', 10_000);
    expect(journals.written.at(-1)).toEqual(journal);
    expect(warnings.some((warning) => warning.includes('ENOSPC') && warning.includes('retrying'))).toBe(true);
  });
});
