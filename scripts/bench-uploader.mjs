#!/usr/bin/env node
// The yardstick of `stream_cpu_ratio` (shared/spec/targets.md): a minimal Node uploader that reads
// a file and appends it to an append blob in the given block sizes, one append in flight, each
// conditional on the blob's length (as the daemon does), over plain node:http with a keep-alive
// agent — no storage SDK, no pipeline, no retries: the floor of what appending costs in Node.
// Usage: node bench-uploader.mjs FILE SAS_URL BLOCK_BYTES[,BLOCK_BYTES...]
// Creates (or empties) the blob, appends, and prints {"cpuSeconds": X, "bytes": N, "blocks": B} on
// stdout: its own CPU (user + system, every thread) from the first read to the last reply.
import { Agent, request } from 'node:http';
import { open } from 'node:fs/promises';

const [file, sasUrl, sizesArg] = process.argv.slice(2);
if (!file || !sasUrl || !sizesArg) throw new Error('usage: bench-uploader.mjs FILE SAS_URL BLOCK_BYTES[,...]');
const sizes = sizesArg.split(',').map(Number);
const agent = new Agent({ keepAlive: true, maxSockets: 1 });
const version = '2025-01-05';

// One PUT to the blob with these query parameters and headers; resolves with the status code.
function put(query, headers, body) {
  const url = `${sasUrl}&${query}`;
  return new Promise((resolve, reject) => {
    const outgoing = request(url, { method: 'PUT', agent, headers: { 'x-ms-version': version, 'content-length': body?.length ?? 0, ...headers } }, (response) => {
      response.resume();
      response.on('end', () => (response.statusCode >= 200 && response.statusCode < 300 ? resolve(response.statusCode) : reject(new Error(`HTTP ${response.statusCode} for ${query}`))));
    });
    outgoing.on('error', reject);
    outgoing.end(body);
  });
}

async function main() {
  await put('', { 'x-ms-blob-type': 'AppendBlob' });
  const handle = await open(file, 'r');
  const buffer = Buffer.allocUnsafeSlow(Math.max(...sizes));
  const started = process.cpuUsage();
  let offset = 0;
  for (const size of sizes) {
    const { bytesRead } = await handle.read(buffer, 0, size, offset);
    if (bytesRead !== size) throw new Error(`bench-uploader: ${file} is shorter than the blocks`);
    await put('comp=appendblock', { 'x-ms-blob-condition-appendpos': offset }, buffer.subarray(0, size));
    offset += size;
  }
  const used = process.cpuUsage(started);
  await handle.close();
  agent.destroy();
  process.stdout.write(`${JSON.stringify({ cpuSeconds: (used.user + used.system) / 1e6, bytes: offset, blocks: sizes.length })}\n`);
}

await main();
