import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  makeNotRunStatus,
  makePendingStatus,
  readStatusEntries,
  readStatusFile,
  readTails,
  toInstanceView,
  toStatusDocument,
  toStatusPath,
  toTopLevelStatus,
  writeStatusFile,
  writeStatusFileIfMissing,
  type StatusInput,
} from '../../../src/handler/agent/status-file.js';
import { singleConfigName } from '../../../src/config/run-command.js';
import { runStates, type RunState } from '../../../src/runner/run-state.js';
import { useTempDir } from '../../helpers/temp-dir.js';

const tempDir = useTempDir('status-file');
const now = Date.UTC(2026, 10, 26, 10, 0, 0, 789);

function makeRun(overrides: Partial<StatusInput> = {}): StatusInput {
  return {
    name: 'hello',
    seq: 4,
    state: 'Succeeded',
    message: 'Execution completed',
    exitCode: 0,
    startTime: '2026-11-26T09:59:58Z',
    endTime: '2026-11-26T09:59:59Z',
    asyncExecution: false,
    treatFailureAsDeploymentFailure: false,
    handlerFailure: false,
    ...overrides,
  };
}

async function makeRunDir(stdout: string | Buffer | undefined, stderr: string | Buffer | undefined): Promise<string> {
  const runDir = join(tempDir(), 'run');
  await mkdir(runDir, { recursive: true });
  if (stdout !== undefined) await writeFile(join(runDir, 'stdout'), stdout);
  if (stderr !== undefined) await writeFile(join(runDir, 'stderr'), stderr);
  return runDir;
}

function parseMessage(document: string): Record<string, unknown> {
  const [entry] = JSON.parse(document) as [{ status: { formattedMessage: { message: string } } }];
  return JSON.parse(entry.status.formattedMessage.message) as Record<string, unknown>;
}

describe('toStatusPath', () => {
  it('names the file <extName>.<seq>.status in the status folder (multi-config)', () => {
    expect(toStatusPath('/var/lib/waagent/ext/status', 'hello', 12)).toBe('/var/lib/waagent/ext/status/hello.12.status');
  });

  it('names the single configuration\'s file <seq>.status (an agent without multi-config)', () => {
    expect(toStatusPath('/var/lib/waagent/ext/status', singleConfigName, 12)).toBe('/var/lib/waagent/ext/status/12.status');
  });
});

describe('the single configuration', () => {
  it('writes <seq>.status with an empty name, as Microsoft\'s handler does, and reads it back next to named ones', async () => {
    const statusFolder = join(tempDir(), 'status');
    await writeStatusFile(statusFolder, makeRun({ name: singleConfigName, seq: 3 }), undefined, now);
    await writeStatusFile(statusFolder, makeRun({ name: singleConfigName, seq: 2 }), undefined, now);
    await writeStatusFile(statusFolder, makeRun(), undefined, now);
    await writeFile(join(statusFolder, `${singleConfigName}.9.status`), 'not ours');
    expect((await readdir(statusFolder)).sort()).toEqual(['2.status', '3.status', `${singleConfigName}.9.status`, 'hello.4.status']);
    const [entry] = JSON.parse(await readFile(join(statusFolder, '3.status'), 'utf8')) as [{ status: { name: string } }];
    expect(entry.status.name).toBe('');
    expect((await readStatusFile(statusFolder, singleConfigName, 3))?.instanceView.executionState).toBe('Succeeded');
    expect((await readStatusEntries(statusFolder)).map(({ name, seq }) => ({ name, seq }))).toEqual([
      { name: singleConfigName, seq: 3 },
      { name: 'hello', seq: 4 },
    ]);
  });
});

describe('writeStatusFile', () => {
  it('writes exactly the document shape Microsoft’s handler writes, instance view keys in order', async () => {
    const statusFolder = join(tempDir(), 'status');
    const runDir = await makeRunDir('hi\n', 'oops "quoted"\n');
    await writeStatusFile(statusFolder, makeRun(), runDir, now);
    const text = await readFile(join(statusFolder, 'hello.4.status'), 'utf8');
    expect(text).toBe(
      String.raw`[{"version":1,"timestampUTC":"2026-11-26T10:00:00Z","status":{"name":"hello","operation":"Enable","status":"success","formattedMessage":{"lang":"en","message":"{\"executionState\":\"Succeeded\",\"executionMessage\":\"Execution completed\",\"output\":\"hi\\n\",\"error\":\"oops \\\"quoted\\\"\\n\",\"exitCode\":0,\"startTime\":\"2026-11-26T09:59:58Z\",\"endTime\":\"2026-11-26T09:59:59Z\"}"}}}]`,
    );
    expect(Object.keys(parseMessage(text))).toEqual(['executionState', 'executionMessage', 'output', 'error', 'exitCode', 'startTime', 'endTime']);
  });

  it('writes UTF-8 without a byte-order mark, starting with the array bracket', async () => {
    const statusFolder = join(tempDir(), 'status');
    await writeStatusFile(statusFolder, makeRun({ message: 'héllo €' }), undefined, now);
    const bytes = await readFile(join(statusFolder, 'hello.4.status'));
    expect(bytes[0]).toBe(0x5b);
    expect([...bytes.subarray(0, 3)]).not.toEqual([0xef, 0xbb, 0xbf]);
    expect(parseMessage(bytes.toString('utf8'))['executionMessage']).toBe('héllo €');
  });

  it('reads the tails from <runDir>/stdout and <runDir>/stderr', async () => {
    const statusFolder = join(tempDir(), 'status');
    const runDir = await makeRunDir(`${'o'.repeat(5000)}OUT-END`, 'ERR');
    await writeStatusFile(statusFolder, makeRun({ state: 'Running', endTime: '' }), runDir, now);
    const view = parseMessage(await readFile(toStatusPath(statusFolder, 'hello', 4), 'utf8'));
    expect(view['output']).toBe(`${'o'.repeat(4089)}OUT-END`);
    expect(view['error']).toBe('ERR');
  });

  it('writes empty tails when the run has no directory or no output files yet', async () => {
    const statusFolder = join(tempDir(), 'status');
    await writeStatusFile(statusFolder, makePendingStatus('a', 1), undefined, now);
    await writeStatusFile(statusFolder, makePendingStatus('b', 1), await makeRunDir(undefined, undefined), now);
    for (const name of ['a', 'b']) {
      const view = parseMessage(await readFile(toStatusPath(statusFolder, name, 1), 'utf8'));
      expect([view['output'], view['error']]).toEqual(['', '']);
    }
  });

  it('creates the status folder when missing, writes mode 0644 and leaves no temp file', async () => {
    const statusFolder = join(tempDir(), 'deep', 'status');
    await writeStatusFile(statusFolder, makeRun(), undefined, now);
    await writeStatusFile(statusFolder, makeRun({ seq: 5 }), undefined, now);
    expect((await readdir(statusFolder)).sort()).toEqual(['hello.4.status', 'hello.5.status']);
    expect((await stat(join(statusFolder, 'hello.4.status'))).mode & 0o777).toBe(0o644);
  });

  it('replaces an existing status file', async () => {
    const statusFolder = join(tempDir(), 'status');
    await writeStatusFile(statusFolder, makeRun({ state: 'Running', message: 'Execution in progress' }), undefined, now);
    await writeStatusFile(statusFolder, makeRun(), undefined, now);
    expect(parseMessage(await readFile(toStatusPath(statusFolder, 'hello', 4), 'utf8'))['executionState']).toBe('Succeeded');
  });

  it('stays under 128 KiB with 4096 bytes of control characters in both tails and a long message', async () => {
    const statusFolder = join(tempDir(), 'status');
    const control = Buffer.alloc(4096 + 100, 0x01);
    const runDir = await makeRunDir(control, Buffer.alloc(4096, 0x1f));
    await writeStatusFile(statusFolder, makeRun({ message: '\u0002'.repeat(10_000) }), runDir, now);
    const bytes = await readFile(toStatusPath(statusFolder, 'hello', 4));
    expect(bytes.length).toBeLessThan(128 * 1024);
    const view = parseMessage(bytes.toString('utf8'));
    expect(view['output']).toBe('\u0001'.repeat(4096));
    expect(view['error']).toBe('\u001f'.repeat(4096));
    expect(view['executionMessage']).toBe(`${'\u0002'.repeat(4096)}…`);
  });
});

describe('toStatusDocument', () => {
  it('halves both tails, keeping their ends, when the document would exceed 120 KiB', () => {
    // 10,000 control characters escape to 7 bytes each, twice: ~140 KB, ~70 KB after one halving.
    const output = `${'\u0001'.repeat(10_000)}OUT-END`;
    const error = `${'\u0007'.repeat(10_000)}ERR-END`;
    const document = toStatusDocument(makeRun(), output, error, now);
    expect(Buffer.byteLength(document)).toBeLessThanOrEqual(120 * 1024);
    const view = parseMessage(document);
    expect(view['output']).toBe(`${'\u0001'.repeat(4997)}OUT-END`);
    expect(view['error']).toBe(`${'\u0007'.repeat(4997)}ERR-END`);
  });

  it('keeps halving until even much larger tails fit', () => {
    const output = `${'\u0001'.repeat(80_000)}OUT-END`;
    const document = toStatusDocument(makeRun(), output, '', now);
    expect(Buffer.byteLength(document)).toBeLessThanOrEqual(120 * 1024);
    // 80,007 → 40,004 → 20,002 → 10,001 characters (each halving keeps the longer end).
    expect(parseMessage(document)['output']).toBe(`${'\u0001'.repeat(9994)}OUT-END`);
  });

  it('leaves tails untouched when the document fits', () => {
    const document = toStatusDocument(makeRun(), 'out', 'err', now);
    const view = parseMessage(document);
    expect([view['output'], view['error']]).toEqual(['out', 'err']);
  });

  it('writes the timestamp as RFC 3339 UTC to the second', () => {
    const [entry] = JSON.parse(toStatusDocument(makeRun(), '', '', Date.UTC(2027, 0, 2, 3, 4, 5, 999))) as [{ timestampUTC: string }];
    expect(entry.timestampUTC).toBe('2027-01-02T03:04:05Z');
  });
});

describe('toInstanceView', () => {
  it('copies the run’s fields in Microsoft’s key order and truncates a message over 4096 characters', () => {
    const view = toInstanceView(makeRun({ state: 'Failed', message: 'x'.repeat(4097), exitCode: 2 }), 'o', 'e');
    expect(Object.keys(view)).toEqual(['executionState', 'executionMessage', 'output', 'error', 'exitCode', 'startTime', 'endTime']);
    expect(view).toEqual({
      executionState: 'Failed',
      executionMessage: `${'x'.repeat(4096)}…`,
      output: 'o',
      error: 'e',
      exitCode: 2,
      startTime: '2026-11-26T09:59:58Z',
      endTime: '2026-11-26T09:59:59Z',
    });
  });

  it('keeps a message of exactly 4096 characters whole', () => {
    expect(toInstanceView(makeRun({ message: 'y'.repeat(4096) }), '', '').executionMessage).toBe('y'.repeat(4096));
  });
});

describe('toTopLevelStatus', () => {
  // Written out from run-command.md §6 (and the code's reading of "at once": once Running). Since
  // the 12-01 spec, a handler failure ends with top-level success like any other run that ended
  // (Compat: Microsoft reports success with the instance view Failed); only
  // treatFailureAsDeploymentFailure makes it error.
  function expected(state: RunState, asyncExecution: boolean, treatFailure: boolean, _handlerFailure: boolean): string {
    switch (state) {
      case 'Pending':
        return 'transitioning';
      case 'Running':
        return asyncExecution ? 'success' : 'transitioning';
      case 'Succeeded':
        return 'success';
      default:
        return treatFailure ? 'error' : 'success';
    }
  }

  for (const state of runStates) {
    for (const asyncExecution of [false, true]) {
      for (const treatFailureAsDeploymentFailure of [false, true]) {
        for (const handlerFailure of [false, true]) {
          const want = expected(state, asyncExecution, treatFailureAsDeploymentFailure, handlerFailure);
          it(`is ${want} for ${state} with asyncExecution=${asyncExecution}, treatFailureAsDeploymentFailure=${treatFailureAsDeploymentFailure}, handlerFailure=${handlerFailure}`, () => {
            expect(toTopLevelStatus(makeRun({ state, asyncExecution, treatFailureAsDeploymentFailure, handlerFailure }))).toBe(want);
          });
        }
      }
    }
  }

  it('puts the top-level status in the document', () => {
    const document = toStatusDocument(makeRun({ state: 'Failed', exitCode: 1, treatFailureAsDeploymentFailure: true }), '', '', now);
    const [entry] = JSON.parse(document) as [{ status: { status: string } }];
    expect(entry.status.status).toBe('error');
  });
});

describe('writeStatusFileIfMissing', () => {
  it('writes the file and returns true when none exists', async () => {
    const statusFolder = join(tempDir(), 'status');
    expect(await writeStatusFileIfMissing(statusFolder, makePendingStatus('hello', 4), undefined, now)).toBe(true);
    const view = parseMessage(await readFile(toStatusPath(statusFolder, 'hello', 4), 'utf8'));
    expect(view['executionState']).toBe('Pending');
    expect(await readdir(statusFolder)).toEqual(['hello.4.status']);
  });

  it('never replaces an existing file and returns false', async () => {
    const statusFolder = join(tempDir(), 'status');
    await mkdir(statusFolder);
    const path = toStatusPath(statusFolder, 'hello', 4);
    await writeFile(path, 'newer status');
    expect(await writeStatusFileIfMissing(statusFolder, makePendingStatus('hello', 4), undefined, now)).toBe(false);
    expect(await readFile(path, 'utf8')).toBe('newer status');
    expect(await readdir(statusFolder)).toEqual(['hello.4.status']);
  });
});

describe('makeNotRunStatus', () => {
  // Settings that never run (an older sequence number, an unreadable exactly-once record) ended
  // without running: top-level success like every run that ended, with a startTime (§6; our choice,
  // as Microsoft reports success).
  it('ends Failed −1 with top-level success and startTime = endTime = now', () => {
    const status = makeNotRunStatus('hello', 2, 'sequence number 2 is older than 5', now);
    expect(status).toMatchObject({ state: 'Failed', exitCode: -1, message: 'Execution failed: sequence number 2 is older than 5', startTime: '2026-11-26T10:00:00Z', endTime: '2026-11-26T10:00:00Z' });
    expect(toTopLevelStatus(status)).toBe('success');
  });
});

describe('makePendingStatus', () => {
  it('describes a Pending run with no times, exit code 0 and a transitioning status', () => {
    const pending = makePendingStatus('hello', 9);
    expect(pending).toEqual({
      name: 'hello',
      seq: 9,
      state: 'Pending',
      message: 'Execution pending',
      exitCode: 0,
      startTime: '',
      endTime: '',
      asyncExecution: false,
      treatFailureAsDeploymentFailure: false,
      handlerFailure: false,
    });
    expect(toTopLevelStatus(pending)).toBe('transitioning');
  });

  it('uses the given message', () => {
    expect(makePendingStatus('hello', 9, 'Waiting for dependency first').message).toBe('Waiting for dependency first');
  });
});

describe('readTails', () => {
  it('returns both tails from the run directory', async () => {
    expect(await readTails(await makeRunDir('out\n', 'err\n'))).toEqual({ output: 'out\n', error: 'err\n' });
  });

  it('returns empty tails without a run directory', async () => {
    expect(await readTails(undefined)).toEqual({ output: '', error: '' });
  });
});
