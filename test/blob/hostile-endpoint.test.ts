// @module-tag faults
// Hardening #3: a hostile blob endpoint answering every request with a huge body (512 MiB, streamed
// lazily) must not blow up the daemon's memory: the run ends with a clear blob error (−101, before
// the script starts), the daemon's RSS grows far less than the body, and the next run is served.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { disposeHarness, makeHarness, waitForTerminal, writeSettings, type Harness } from '../helpers/daemon-harness.js';
import { startLoopbackServer, type LoopbackServer } from '../helpers/loopback-http.js';

const hugeBytes = 512 * 1024 * 1024;
const chunk = Buffer.alloc(1024 * 1024, '<Error><Code>x</Code></Error>');
const maxGrowthBytes = 64 * 1024 * 1024;

let harness: Harness | undefined;
let server: LoopbackServer | undefined;

afterEach(async () => {
  if (harness) await disposeHarness(harness);
  if (server) await server.close();
  harness = undefined;
  server = undefined;
});

// Answers every request with `status` and a 512 MiB body written only as fast as it is read.
function hugeBody(status: number): Parameters<LoopbackServer['route']>[1] {
  return (request, response) => {
    request.resume();
    response.writeHead(status, { 'content-type': 'application/xml', 'content-length': String(hugeBytes), 'x-ms-request-id': 'hostile' });
    let sent = 0;
    let closed = false;
    response.on('close', () => void (closed = true));
    const pump = (): void => {
      while (!closed && sent < hugeBytes) {
        sent += chunk.length;
        if (!response.write(chunk)) {
          response.once('drain', pump);
          return;
        }
      }
      if (!closed) response.end();
    };
    pump();
  };
}

describe('a hostile blob endpoint', () => {
  it('answering 500, 404 and 200 with 512 MiB bodies ends each run with −101, keeps the daemon small, and the next run is served', async () => {
    server = await startLoopbackServer();
    harness = await makeHarness();
    await harness.daemon.start();
    const figures: string[] = [];
    for (const [index, status] of [500, 404, 200].entries()) {
      const blob = `/hostile/out-${status}.txt`;
      server.route(blob, hugeBody(status));
      const marker = join(harness.root, `script-ran-${status}`);
      const before = process.memoryUsage();
      let peakRss = before.rss;
      let peakHeap = before.heapUsed;
      const sampler = setInterval(() => {
        const now = process.memoryUsage();
        peakRss = Math.max(peakRss, now.rss);
        peakHeap = Math.max(peakHeap, now.heapUsed);
      }, 10);
      try {
        await writeSettings(harness, `hostile${status}`, index, { source: { script: `touch ${marker}` }, outputBlobUri: `${server.origin}${blob}?sv=2023-01-03&sp=racw&sig=c2lnbmF0dXJl` });
        const report = await waitForTerminal(harness, `hostile${status}`, index, 60_000);
        expect(report.view.executionState).toBe('Failed');
        expect(report.view.exitCode).toBe(-101);
        expect(report.view.executionMessage).toContain(`could not create or empty the output blob ${server.origin}${blob} (HTTP ${status}`);
        expect(existsSync(marker)).toBe(false);
      } finally {
        clearInterval(sampler);
      }
      const rssGrowth = peakRss - before.rss;
      const heapGrowth = peakHeap - before.heapUsed;
      figures.push(`${status}: rss +${(rssGrowth / 2 ** 20).toFixed(1)} MiB, heap +${(heapGrowth / 2 ** 20).toFixed(1)} MiB`);
      expect(rssGrowth).toBeLessThan(maxGrowthBytes);
      expect(heapGrowth).toBeLessThan(maxGrowthBytes);
    }
    console.log(`hostile endpoint memory growth: ${figures.join('; ')}`);
    // The daemon still serves runs.
    await writeSettings(harness, 'after', 0, { source: { script: 'echo fine' } });
    const after = await waitForTerminal(harness, 'after', 0);
    expect(after.view).toMatchObject({ executionState: 'Succeeded', exitCode: 0 });
  }, 180_000);
});
