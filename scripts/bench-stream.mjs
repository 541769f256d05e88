#!/usr/bin/env node
// Streaming figures of shared/spec/targets.md: a run command whose script writes 256 MiB of random
// bytes to stdout with `outputBlobUri` on a local Azurite, against the same script writing to
// /dev/null, both through the daemon (settings renamed in → terminal status on disk); and the
// daemon's peak RSS (VmHWM). Prints `{"stream_overhead_ratio": X}` and `{"stream_daemon_rss_mb": Y}`
// on stdout, a short summary on stderr. It starts Azurite and the daemon itself and stops both.
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { terminalStatus } from './bench-status.mjs';
import { fileURLToPath } from 'node:url';
import { BlobSASPermissions, BlobServiceClient, generateBlobSASQueryParameters, StorageSharedKeyCredential } from '@azure/storage-blob';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
// bench.mjs passes the unpacked package's entry and node; run alone: the work tree's.
const cli = process.env['BENCH_CLI'] ?? join(root, 'dist', 'cli.js');
const nodePath = process.env['BENCH_NODE'] ?? process.execPath;
const { ensureLocalLayout } = await import(join(root, 'dist/handler/cli/local-layout.js'));
const { readHandlerEnvironment } = await import(join(root, 'dist/config/handler-environment.js'));
const { toAgentJson } = await import(join(root, 'dist/handler/cli/submit.js'));
const azuriteMain = createRequire(import.meta.url).resolve('azurite/dist/src/blob/main.js');

const size = 256 * 1024 * 1024;
const rounds = Number(process.env['BENCH_STREAM_ROUNDS'] ?? 5);
const account = 'devstoreaccount1';
const accountKey = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';
const nowMs = () => performance.timeOrigin + performance.now();
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const round = (value, digits = 2) => Math.round(value * 10 ** digits) / 10 ** digits;

// Starts a child and resolves once `ready` matches its stdout.
function startChild(args, env, ready) {
  const child = spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'ignore'] });
  return new Promise((resolve, reject) => {
    let output = '';
    child.stdout.on('data', (chunk) => {
      output += chunk;
      const match = ready.exec(output);
      if (match) resolve({ child, match });
    });
    child.once('exit', (code) => reject(new Error(`${args[0]} exited with ${code}: ${output.slice(-500)}`)));
  });
}

async function stopChild(child) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

async function startAzurite(location) {
  // In-memory persistence: the figure is the handler's overhead, not the emulator's disk speed
  // (BENCH_AZURITE_DISK=1 measures against Azurite's disk store instead).
  const store = process.env['BENCH_AZURITE_DISK'] ? ['--location', location] : ['--inMemoryPersistence'];
  const args = [azuriteMain, '--blobHost', '127.0.0.1', '--blobPort', '0', ...store, '--skipApiVersionCheck', '--disableTelemetry', '--silent'];
  const { child, match } = await startChild(args, {}, /successfully listens on http:\/\/127\.0\.0\.1:(\d+)/);
  const endpoint = `http://127.0.0.1:${match[1]}/${account}`;
  const credential = new StorageSharedKeyCredential(account, accountKey);
  const container = new BlobServiceClient(endpoint, credential).getContainerClient('bench');
  await container.createIfNotExists();
  const toSasUrl = (blob) => {
    const sas = generateBlobSASQueryParameters({ containerName: 'bench', blobName: blob, permissions: BlobSASPermissions.parse('racw'), expiresOn: new Date(Date.now() + 3_600_000) }, credential);
    return `${endpoint}/bench/${blob}?${sas}`;
  };
  return { child, container, toSasUrl };
}

// Drops a settings file by rename and returns ms from the rename to its terminal status.
async function timeRun(env, name, publicSettings) {
  const temp = join(env.configFolder, `.${name}.tmp`);
  const handlerSettings = { publicSettings, protectedSettings: null, protectedSettingsCertThumbprint: null };
  await writeFile(temp, toAgentJson({ runtimeSettings: [{ handlerSettings }] }));
  const at = nowMs();
  await rename(temp, join(env.configFolder, `${name}.0.settings`));
  const deadline = Date.now() + 300_000;
  for (;;) {
    const view = await terminalStatus(env.statusFolder, name);
    if (view) {
      if (view.executionState !== 'Succeeded') throw new Error(`bench-stream: ${name} ended ${view.executionState}: ${view.executionMessage}`);
      return nowMs() - at;
    }
    if (Date.now() > deadline) throw new Error(`bench-stream: ${name} did not finish`);
    await sleep(5);
  }
}

async function peakRssMb(pid) {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
}

async function measure(env, azurite, pid) {
  await timeRun(env, 'warmup', { source: { script: 'true' }, outputBlobUri: azurite.toSasUrl('warmup') });
  const baseline = [];
  const streamed = [];
  for (let i = 0; i < rounds; i += 1) {
    baseline.push(await timeRun(env, `null${i}`, { source: { script: `head -c ${size} /dev/urandom > /dev/null` } }));
    streamed.push(await timeRun(env, `blob${i}`, { source: { script: `head -c ${size} /dev/urandom` }, outputBlobUri: azurite.toSasUrl(`blob${i}`) }));
    const length = (await azurite.container.getBlobClient(`blob${i}`).getProperties()).contentLength;
    if (length !== size) throw new Error(`bench-stream: blob${i} has ${length} bytes, expected ${size}`);
    await rm(join(env.stateDir, 'runs'), { recursive: true, force: true }).then(() => mkdir(join(env.stateDir, 'runs'), { recursive: true, mode: 0o700 }));
  }
  return { baseline: median(baseline), streamed: median(streamed), rssMb: await peakRssMb(pid) };
}

// targets.md tail_latency_s, blob side: a line printed by a running script → in the blob (default cadence).
async function measureBlobTail(env, azurite, top) {
  const mark = join(top, 'tail-mark');
  const temp = join(env.configFolder, '.blobtail.tmp');
  const publicSettings = { source: { script: `sleep 0.3; echo visible-line; echo $EPOCHREALTIME > ${mark}; sleep 8` }, outputBlobUri: azurite.toSasUrl('blobtail') };
  await writeFile(temp, toAgentJson({ runtimeSettings: [{ handlerSettings: { publicSettings, protectedSettings: null, protectedSettingsCertThumbprint: null } }] }));
  await rename(temp, join(env.configFolder, 'blobtail.0.settings'));
  const blob = azurite.container.getBlobClient('blobtail');
  const deadline = Date.now() + 30_000;
  for (;;) {
    const content = await blob.downloadToBuffer().catch(() => Buffer.alloc(0));
    if (content.includes('visible-line')) break;
    if (Date.now() > deadline) throw new Error('bench-stream: the line never reached the blob');
    await sleep(20);
  }
  const seenAt = nowMs();
  const printedAt = Number(await readFile(mark, 'utf8')) * 1000;
  return (seenAt - printedAt) / 1000;
}

async function main() {
  const top = await mkdtemp(join(tmpdir(), 'rch-bench-stream-'));
  const layout = await ensureLocalLayout(top);
  const environment = await readHandlerEnvironment(layout.handlerEnvironmentPath);
  const stateDir = join(layout.libDir, 'runcommand-handler');
  const env = { configFolder: environment.configFolder, statusFolder: environment.statusFolder, stateDir };
  let azurite;
  let daemon;
  try {
    azurite = await startAzurite(join(top, 'azurite'));
    const daemonEnv = { RUNCOMMAND_HANDLER_STATE_DIR: stateDir, RUNCOMMAND_HANDLER_SETTINGS_SETTLE_MS: '0' };
    daemon = spawn(nodePath, [cli, 'daemon', '--handler-environment', layout.handlerEnvironmentPath], { env: { ...process.env, ...daemonEnv }, stdio: 'ignore' });
    const result = await measure(env, azurite, daemon.pid);
    const blobTail = round(await measureBlobTail(env, azurite, top));
    const ratio = round(result.streamed / result.baseline);
    const rssMb = round(result.rssMb, 1);
    process.stdout.write(`${JSON.stringify({ stream_overhead_ratio: ratio })}\n${JSON.stringify({ stream_daemon_rss_mb: rssMb })}\n${JSON.stringify({ tail_latency_blob_s: blobTail })}\n`);
    process.stderr.write(
      `stream_overhead_ratio    ${String(ratio).padStart(10)}  target ≤ 1.5 (256 MiB to blob ${Math.round(result.streamed)} ms / to /dev/null ${Math.round(result.baseline)} ms, median of ${rounds})\n` +
        `stream_daemon_rss_mb     ${String(rssMb).padStart(10)}  target ≤ 150 (daemon VmHWM)\n` +
        `tail_latency_blob_s      ${String(blobTail).padStart(10)}  target ≤ cadence (5 s) + 1 s (printed line → in the blob)\n`,
    );
  } finally {
    await stopChild(daemon);
    await stopChild(azurite?.child);
    await rm(top, { recursive: true, force: true });
  }
}

await main();
