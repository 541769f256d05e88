// BlobStream against a real Azurite: byte-for-byte equality whatever the output looks like, blocks
// of at most 4 MiB with one append in flight, lost replies, restarts and final failures.
import { randomBytes } from 'node:crypto';
import { appendFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BlobStream } from '../../src/blob/append-stream.js';
import { makeAppendTarget, toBlobAddress, type AppendTarget } from '../../src/blob/blob-target.js';
import { hashFile, startAzurite, type Azurite } from '../helpers/azurite.js';
import { startDroppingProxy } from '../helpers/loopback-proxy.js';
import { useTempDir } from '../helpers/temp-dir.js';

const container = 'streams';
const noTokens = { tokens: { getToken: () => Promise.reject(new Error('no identity in this test')) }, onToken: () => undefined };
let azurite: Azurite;
const tempDir = useTempDir('blob-stream');

beforeAll(async () => {
  azurite = await startAzurite();
  await azurite.makeContainer(container);
});

afterAll(async () => {
  await azurite?.dispose();
});

function toSasUrl(blob: string, url = azurite.toBlobUrl(container, blob)): string {
  return `${url}?${azurite.toSas(container, blob, 'racw')}`;
}

function makeTarget(blob: string, url?: string): AppendTarget {
  return makeAppendTarget(toBlobAddress({ uri: toSasUrl(blob, url) }), noTokens);
}

// Records the size of every append and the most appends ever in flight at once.
function recording(target: AppendTarget): AppendTarget & { sizes: number[]; maxInFlight: number } {
  let inFlight = 0;
  const recorded = {
    ...target,
    sizes: [] as number[],
    maxInFlight: 0,
    append: async (bytes: Buffer, position: number, signal: AbortSignal) => {
      inFlight += 1;
      recorded.maxInFlight = Math.max(recorded.maxInFlight, inFlight);
      try {
        await target.append(bytes, position, signal);
        recorded.sizes.push(bytes.length);
      } finally {
        inFlight -= 1;
      }
    },
  };
  return recorded;
}

async function expectBlobEqualsFile(blob: string, file: string): Promise<void> {
  expect(await azurite.hashBlob(container, blob)).toEqual(await hashFile(file));
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('BlobStream', () => {
  it('uploads output written while it streams byte for byte: binary bytes, no trailing newline', async () => {
    const file = join(tempDir(), 'stdout');
    await writeFile(file, '');
    const target = makeTarget('live');
    await target.reset(AbortSignal.timeout(5000));
    const stream = new BlobStream({ file, target, intervalMs: 100 });
    stream.start(0, false);
    for (let i = 0; i < 8; i += 1) {
      await appendFile(file, Buffer.concat([Buffer.from(`line ${i} é\n`), randomBytes(300), Buffer.from([0, 0xff, 0xfe, 0x0d])]));
      await sleep(60);
    }
    await appendFile(file, 'last line without newline');
    const result = await stream.finish(10_000);
    expect(result.failure).toBeUndefined();
    expect(result.uploaded).toBe(result.size);
    await expectBlobEqualsFile('live', file);
  });

  it('splits a burst over 4 MiB into blocks of at most 4 MiB, one append in flight', async () => {
    const file = join(tempDir(), 'stdout');
    await writeFile(file, randomBytes(100));
    const target = recording(makeTarget('burst'));
    await target.reset(AbortSignal.timeout(5000));
    const stream = new BlobStream({ file, target, intervalMs: 60_000 });
    stream.start(0, false);
    await appendFile(file, randomBytes(9 * 1024 * 1024 + 3));
    const result = await stream.finish(30_000);
    expect(result.failure).toBeUndefined();
    expect(Math.max(...target.sizes)).toBeLessThanOrEqual(4 * 1024 * 1024);
    expect(target.sizes.reduce((a, b) => a + b, 0)).toBe(result.size);
    expect(target.maxInFlight).toBe(1);
    await expectBlobEqualsFile('burst', file);
  });

  it('appends as soon as 1 MiB is waiting, long before the cadence', async () => {
    const file = join(tempDir(), 'stdout');
    await writeFile(file, '');
    const target = makeTarget('eager');
    await target.reset(AbortSignal.timeout(5000));
    const stream = new BlobStream({ file, target, intervalMs: 60_000, pollMs: 50 });
    stream.start(0, false);
    await appendFile(file, randomBytes(1024 * 1024 + 1));
    const deadline = Date.now() + 5000;
    // A size read while the write is still landing may catch part of it: at least 1 MiB goes at once.
    while (stream.offset < 1024 * 1024 && Date.now() < deadline) await sleep(25);
    expect(stream.offset).toBeGreaterThanOrEqual(1024 * 1024);
    await stream.finish(5000);
  });

  it('never duplicates bytes when replies are lost after the service appended', async () => {
    const proxy = await startDroppingProxy(azurite.port);
    try {
      const file = join(tempDir(), 'stdout');
      await writeFile(file, randomBytes(1000));
      const target = makeTarget('lost-replies', proxy.toProxyUrl(azurite.toBlobUrl(container, 'lost-replies')));
      await target.reset(AbortSignal.timeout(5000));
      proxy.dropAppendReplies(3);
      const stream = new BlobStream({ file, target, intervalMs: 50 });
      stream.start(0, false);
      for (let i = 0; i < 5; i += 1) {
        await appendFile(file, randomBytes(2 * 1024 * 1024 + i));
        await sleep(150);
      }
      const result = await stream.finish(30_000);
      expect(result.failure).toBeUndefined();
      expect(proxy.dropped()).toBe(3);
      // Each lost reply was resolved by a conditional retry that the service refused.
      expect(proxy.appendStatuses.filter((status) => status === 412).length).toBeGreaterThanOrEqual(1);
      await expectBlobEqualsFile('lost-replies', file);
    } finally {
      await proxy.close();
    }
  });

  it('resumes after a restart from a journal offset that lags the blob', async () => {
    const file = join(tempDir(), 'stdout');
    const bytes = randomBytes(50_000);
    await writeFile(file, bytes);
    const target = makeTarget('resume');
    await target.reset(AbortSignal.timeout(5000));
    // The previous daemon appended 30,000 bytes but journaled only 10,000 before it died.
    await target.append(bytes.subarray(0, 30_000), 0, AbortSignal.timeout(5000));
    const stream = new BlobStream({ file, target, intervalMs: 100 });
    stream.start(10_000, true);
    const result = await stream.finish(10_000);
    expect(result).toEqual({ uploaded: 50_000, size: 50_000 });
    await expectBlobEqualsFile('resume', file);
  });

  it('stops and reports the missing bytes when the blob is deleted while it streams', async () => {
    const file = join(tempDir(), 'stdout');
    await writeFile(file, 'first\n');
    const target = makeTarget('deleted');
    await target.reset(AbortSignal.timeout(5000));
    const stream = new BlobStream({ file, target, intervalMs: 50 });
    stream.start(0, false);
    while (stream.offset === 0) await sleep(20);
    await azurite.admin.getContainerClient(container).deleteBlob('deleted');
    await appendFile(file, 'second\n');
    const result = await stream.finish(10_000);
    expect(result).toEqual({ uploaded: 6, size: 13, failure: 'HTTP 404 BlobNotFound' });
  });

  it('gives up at the flush deadline when the storage endpoint stays unreachable', async () => {
    const closedPort = await findClosedPort();
    const file = join(tempDir(), 'stdout');
    await writeFile(file, 'never uploaded\n');
    const target = makeAppendTarget(toBlobAddress({ uri: `http://127.0.0.1:${closedPort}/devstoreaccount1/c/b?sig=x` }), noTokens);
    const stream = new BlobStream({ file, target, intervalMs: 50 });
    stream.start(0, false);
    const started = Date.now();
    const result = await stream.finish(1500);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(result.uploaded).toBe(0);
    expect(result.failure).toMatch(/^gave up after 2 s \(ECONNREFUSED\)$/);
  });
});

async function findClosedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}
