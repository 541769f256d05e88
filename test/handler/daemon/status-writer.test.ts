import { execFileSync } from 'node:child_process';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { makeCommandLog } from '../../../src/handler/infra/logger.js';
import { Redactor } from '../../../src/handler/infra/redact.js';
import { toStatusPath, type StatusInput } from '../../../src/handler/agent/status-file.js';
import { StatusWriter } from '../../../src/handler/daemon/status-writer.js';
import type { Clock } from '../../../src/util/time.js';
import { useTempDir } from '../../helpers/temp-dir.js';

const tempDir = useTempDir('status-writer');
const fixedClock: Clock = { now: () => Date.UTC(2026, 10, 26, 10, 0, 0) };

function makeRun(overrides: Partial<StatusInput & { runId: string }> = {}): StatusInput & { runId: string } {
  return {
    runId: 'hello-4',
    name: 'hello',
    seq: 4,
    state: 'Running',
    message: 'Execution in progress',
    exitCode: 0,
    startTime: '2026-11-26T09:59:58Z',
    endTime: '',
    asyncExecution: false,
    treatFailureAsDeploymentFailure: false,
    handlerFailure: false,
    ...overrides,
  };
}

function makeWriter(redactor = new Redactor()): { writer: StatusWriter; statusFolder: string; log: ReturnType<typeof makeCommandLog> } {
  const statusFolder = join(tempDir(), 'status');
  const log = makeCommandLog(join(tempDir(), 'log'), 'test');
  return { writer: new StatusWriter(statusFolder, fixedClock, log, redactor), statusFolder, log };
}

async function readView(path: string): Promise<Record<string, unknown>> {
  const [entry] = JSON.parse(await readFile(path, 'utf8')) as [{ status: { formattedMessage: { message: string } } }];
  return JSON.parse(entry.status.formattedMessage.message) as Record<string, unknown>;
}

describe('StatusWriter', () => {
  it('serialises writes per name: they complete in submission order and the last one wins', async () => {
    const { writer, statusFolder } = makeWriter();
    const completed: number[] = [];
    const writes = Array.from({ length: 40 }, (_, index) =>
      writer.write(makeRun({ message: `step ${index}` }), undefined).then(() => completed.push(index)),
    );
    await Promise.all(writes);
    expect(completed).toEqual(Array.from({ length: 40 }, (_, index) => index));
    expect((await readView(toStatusPath(statusFolder, 'hello', 4)))['executionMessage']).toBe('step 39');
    expect(await readdir(statusFolder)).toEqual(['hello.4.status']);
  });

  it('skips a write still queued behind a newer one for the same file, but never one for another file', async () => {
    const statusFolder = join(tempDir(), 'status');
    let writes = 0; // the writer reads the clock once per file it writes
    const countingClock: Clock = { now: () => (writes += 1, fixedClock.now()) };
    const writer = new StatusWriter(statusFolder, countingClock, makeCommandLog(join(tempDir(), 'log'), 'test'), new Redactor());
    const queued = [
      writer.write(makeRun({ state: 'Pending', message: 'Execution pending' }), undefined),
      writer.write(makeRun({ state: 'Pending', message: 'Queued: waiting for a free execution slot' }), undefined),
      writer.write(makeRun({ runId: 'hello-5', seq: 5, state: 'Pending', message: 'the next run' }), undefined),
      writer.write(makeRun({ state: 'Running', message: 'Execution in progress' }), undefined),
    ];
    await Promise.all(queued);
    expect(writes).toBe(2);
    expect((await readView(toStatusPath(statusFolder, 'hello', 4)))['executionMessage']).toBe('Execution in progress');
    expect((await readView(toStatusPath(statusFolder, 'hello', 5)))['executionMessage']).toBe('the next run');
  });

  it('masks a secret that the run unregisters right after queueing its terminal status', async () => {
    const redactor = new Redactor();
    const { writer, statusFolder } = makeWriter(redactor);
    redactor.add(['s3cr3t-value']);
    const busy = writer.write(makeRun({ message: 'first' }), undefined);
    const last = writer.write(makeRun({ state: 'Failed', message: 'Execution failed: s3cr3t-value' }), undefined);
    redactor.remove(['s3cr3t-value']);
    await Promise.all([busy, last]);
    expect((await readView(toStatusPath(statusFolder, 'hello', 4)))['executionMessage']).toBe('Execution failed: ***');
  });

  it('writes the status of several names independently', async () => {
    const { writer, statusFolder } = makeWriter();
    await Promise.all([
      writer.write(makeRun({ name: 'a', runId: 'a-1', seq: 1, message: 'for a' }), undefined),
      writer.write(makeRun({ name: 'b', runId: 'b-2', seq: 2, message: 'for b' }), undefined),
    ]);
    expect((await readView(toStatusPath(statusFolder, 'a', 1)))['executionMessage']).toBe('for a');
    expect((await readView(toStatusPath(statusFolder, 'b', 2)))['executionMessage']).toBe('for b');
  });

  it('reads the output tails from the run directory it is given', async () => {
    const { writer, statusFolder } = makeWriter();
    const runDir = join(tempDir(), 'run');
    await mkdir(runDir);
    await writeFile(join(runDir, 'stdout'), 'progress 50%\n');
    await writer.write(makeRun(), runDir);
    expect((await readView(toStatusPath(statusFolder, 'hello', 4)))['output']).toBe('progress 50%\n');
  });

  it('writes no file for a run once silence() resolved, even for a write queued just before it', async () => {
    const { writer, statusFolder } = makeWriter();
    const queued = writer.write(makeRun(), undefined);
    await writer.silence('hello', ['hello-4']);
    await queued;
    await writer.write(makeRun({ state: 'Canceled', message: 'Execution failed: canceled' }), undefined);
    await writer.drain();
    expect(await readdir(statusFolder).catch(() => [])).toEqual([]);
  });

  it('resolves silence() only after a write already under way has landed, and writes nothing after it', async () => {
    const { writer, statusFolder } = makeWriter();
    const runDir = join(tempDir(), 'run');
    await mkdir(runDir);
    await writeFile(join(runDir, 'stdout'), 'x'.repeat(100_000));
    const started = writer.write(makeRun({ message: 'under way' }), runDir);
    // Let the queued write pass its silence check and start its file I/O.
    await new Promise((resolve) => setImmediate(resolve));
    await writer.silence('hello', ['hello-4']);
    expect((await readView(toStatusPath(statusFolder, 'hello', 4)))['executionMessage']).toBe('under way');
    await writer.write(makeRun({ message: 'after silence' }), runDir);
    await started;
    expect((await readView(toStatusPath(statusFolder, 'hello', 4)))['executionMessage']).toBe('under way');
  });

  it('keeps writing a newer run of the same name after an older run was silenced', async () => {
    const { writer, statusFolder } = makeWriter();
    await writer.silence('hello', ['hello-4']);
    await writer.write(makeRun({ runId: 'hello-4' }), undefined);
    await writer.write(makeRun({ runId: 'hello-5', seq: 5, message: 'new run' }), undefined);
    expect(await readdir(statusFolder)).toEqual(['hello.5.status']);
    expect((await readView(toStatusPath(statusFolder, 'hello', 5)))['executionMessage']).toBe('new run');
  });

  it('masks a registered secret in the executionMessage', async () => {
    const redactor = new Redactor();
    redactor.add(['Sup3r-S3cret-Value']);
    const { writer, statusFolder } = makeWriter(redactor);
    await writer.write(makeRun({ state: 'Failed', message: 'Execution failed: bad token Sup3r-S3cret-Value given' }), undefined);
    const path = toStatusPath(statusFolder, 'hello', 4);
    expect((await readView(path))['executionMessage']).toBe('Execution failed: bad token *** given');
    expect(await readFile(path, 'utf8')).not.toContain('Sup3r-S3cret-Value');
  });

  it('logs a failed write and resolves instead of rejecting', async () => {
    const { writer, statusFolder, log } = makeWriter();
    await writeFile(statusFolder, 'a file where the status folder should be');
    await expect(writer.write(makeRun(), undefined)).resolves.toBeUndefined();
    await log.flush();
    const lines = (await readFile(join(tempDir(), 'log', 'commands.log'), 'utf8')).trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0] ?? '')).toMatchObject({
      level: 'error',
      message: 'could not write the status file',
      name: 'hello',
      seq: 4,
      runId: 'hello-4',
    });
  });

  // Issue #6: a status write that fails because the disk is full is retried until it lands.
  it.skipIf(process.getuid?.() !== 0)('retries a status write that failed with ENOSPC until it lands (root: a full tmpfs)', async () => {
    const mountPoint = join(tempDir(), 'small-fs');
    await mkdir(mountPoint);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mountPoint]);
    try {
      const statusFolder = join(mountPoint, 'status');
      await mkdir(statusFolder);
      const filler = join(mountPoint, 'filler');
      try {
        execFileSync('dd', ['if=/dev/zero', `of=${filler}`, 'bs=4k'], { stdio: 'ignore' });
      } catch {
        // ENOSPC: the file system is full now.
      }
      const log = makeCommandLog(join(tempDir(), 'log'), 'test');
      const writer = new StatusWriter(statusFolder, fixedClock, log, new Redactor());
      const written = writer.write(makeRun({ state: 'Succeeded', message: 'Execution completed' }), undefined);
      await new Promise((resolve) => setTimeout(resolve, 400)); // the first attempt has failed by now
      expect(await readdir(statusFolder)).not.toContain('hello.4.status');
      await rm(filler);
      await written;
      expect((await readView(toStatusPath(statusFolder, 'hello', 4)))['executionMessage']).toBe('Execution completed');
      await log.flush();
      const lines = (await readFile(join(tempDir(), 'log', 'commands.log'), 'utf8')).trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
      expect(lines.some((line) => line['message'] === 'could not write the status file; retrying' && String(line['error']).includes('ENOSPC'))).toBe(true);
      expect(lines.some((line) => line['level'] === 'error')).toBe(false);
    } finally {
      execFileSync('umount', ['-l', mountPoint]);
    }
  });

  it('drain() waits for every queued write', async () => {
    const { writer, statusFolder } = makeWriter();
    for (let index = 0; index < 10; index += 1) void writer.write(makeRun({ name: `n${index}`, runId: `n${index}-1`, seq: 1 }), undefined);
    await writer.drain();
    expect((await readdir(statusFolder)).length).toBe(10);
  });
});
