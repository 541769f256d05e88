#!/usr/bin/env node
// Streaming figures of shared/spec/targets.md, each round back to back through one daemon (settings
// renamed in → terminal status on disk): a run command whose script writes 256 MiB of random bytes
// to stdout with `outputBlobUri` on a local Azurite, the same script writing to /dev/null, and a
// minimal Node uploader (bench-uploader.mjs, plain node:http) appending the streamed run's own
// stdout file to the same Azurite in as many blocks as the daemon used. Prints, one JSON object
// each: `stream_overhead_ratio` (blob / /dev/null, wall time), `stream_daemon_cpu_s_per_gib` (the
// daemon's utime+stime from /proc during the streamed run, per GiB appended) with the yardstick's,
// `stream_cpu_ratio` (daemon / yardstick), `stream_daemon_rss_mb` (VmHWM), `tail_latency_blob_s`.
// Pinned (bench.mjs --cpus N, N ≥ 2): Azurite alone on CPU N-1, standing in for remote storage;
// the daemon, its scripts and the yardstick on CPUs 0..N-2. It starts Azurite and the daemon itself
// and stops both.
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
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
// The node flags `enable` starts the daemon with (none: it sets its V8 flags itself), so that this
// daemon is the shipped one.
const { daemonNodeFlags } = await import(join(root, 'dist/handler/infra/daemon-control.js'));
const azuriteMain = createRequire(import.meta.url).resolve('azurite/dist/src/blob/main.js');

const size = 256 * 1024 * 1024;
const rounds = Number(process.env['BENCH_STREAM_ROUNDS'] ?? 5);
const account = 'devstoreaccount1';
const accountKey = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';
const nowMs = () => performance.timeOrigin + performance.now();
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const round = (value, digits = 2) => Math.round(value * 10 ** digits) / 10 ** digits;
const gib = size / 1024 ** 3;
const ticksPerSecond = 100;
const uploader = join(root, 'scripts', 'bench-uploader.mjs');

// Pinned to N ≥ 2 CPUs: Azurite gets the last one to itself (on a VM the storage is remote and
// costs the VM's CPUs nothing), the handler side — daemon, scripts, yardstick — the others.
const pinnedCpus = Number(process.env['BENCH_PINNED'] ?? 0);
const cpuLayout = pinnedCpus >= 2 ? { azurite: String(pinnedCpus - 1), handler: pinnedCpus === 2 ? '0' : `0-${pinnedCpus - 2}` } : undefined;
const pinned = (cpus, command, args) => (cpus === undefined ? [command, args] : ['taskset', ['-c', cpus, command, ...args]]);

// Starts a child and resolves once `ready` matches its stdout.
function startChild(args, env, ready, cpus) {
  const [command, argv] = pinned(cpus, process.execPath, args);
  const child = spawn(command, argv, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'ignore'] });
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
  const { child, match } = await startChild(args, {}, /successfully listens on http:\/\/127\.0\.0\.1:(\d+)/, cpuLayout?.azurite);
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

// Drops a settings file by rename; returns ms from the rename to its terminal status and the
// daemon's CPU seconds (utime+stime of all its threads, /proc) over the same span.
async function timeRun(env, name, publicSettings) {
  const temp = join(env.configFolder, `.${name}.tmp`);
  const handlerSettings = { publicSettings, protectedSettings: null, protectedSettingsCertThumbprint: null };
  await writeFile(temp, toAgentJson({ runtimeSettings: [{ handlerSettings }] }));
  const ticks = await cpuTicks(env.daemonPid);
  const side = await sideTicks(env);
  const at = nowMs();
  await rename(temp, join(env.configFolder, `${name}.0.settings`));
  const deadline = Date.now() + 300_000;
  for (;;) {
    const view = await terminalStatus(env.statusFolder, name);
    if (view) {
      if (view.executionState !== 'Succeeded') throw new Error(`bench-stream: ${name} ended ${view.executionState}: ${view.executionMessage}`);
      const ms = nowMs() - at;
      const sideAfter = await sideTicks(env);
      return { ms, cpuSeconds: ((await cpuTicks(env.daemonPid)) - ticks) / ticksPerSecond, azuriteCpu: (sideAfter.azurite - side.azurite) / ticksPerSecond, scriptCpu: (sideAfter.script - side.script) / ticksPerSecond };
    }
    if (Date.now() > deadline) throw new Error(`bench-stream: ${name} did not finish`);
    await sleep(5);
  }
}

async function cpuTicks(pid, reaped = false) {
  const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1].split(' ');
  return reaped ? Number(fields[13]) + Number(fields[14]) : Number(fields[11]) + Number(fields[12]);
}

// For the summary: Azurite's CPU, and the CPU of the runs' processes (each wrapper with its output
// relay and its script), which the long-lived launcher (rch-exec --launcher) reaps.
async function sideTicks(env) {
  env.launcherPid ??= await findLauncher(env.daemonPid);
  const script = env.launcherPid ? await cpuTicks(env.launcherPid, true).catch(() => 0) : 0;
  return { azurite: await cpuTicks(env.azuritePid), script };
}

async function findLauncher(daemonPid) {
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    if (stat.includes('(rch-exec)') && stat.split(') ')[1]?.split(' ')[1] === String(daemonPid)) return Number(entry);
  }
  return undefined;
}

// Profiling aid (BENCH_STREAM_THREADS=1): where the daemon's CPU went, per thread (main, libuv pool, V8).
async function threadCpu(pid) {
  const threads = [];
  for (const tid of await readdir(`/proc/${pid}/task`)) {
    const name = (await readFile(`/proc/${pid}/task/${tid}/comm`, 'utf8')).trim();
    const fields = (await readFile(`/proc/${pid}/task/${tid}/stat`, 'utf8')).split(') ')[1].split(' ');
    threads.push(`${name} ${Number(fields[11]) / ticksPerSecond}+${Number(fields[12]) / ticksPerSecond}`);
  }
  return threads.join(', ');
}

async function peakRssMb(pid) {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
}

// The streamed run's stdout file (the run directories were emptied before the round).
async function findOutputFile(stateDir) {
  const runs = join(stateDir, 'runs');
  for (const entry of await readdir(runs)) {
    const file = join(runs, entry, 'stdout');
    if ((await stat(file).catch(() => undefined))?.size === size) return file;
  }
  throw new Error('bench-stream: the streamed run has no 256 MiB stdout file');
}

// The yardstick: the same file appended to the same Azurite in as many blocks as the daemon used
// (evenly cut: the daemon's blocks follow the output's pace), pinned with the daemon.
async function runYardstick(file, sasUrl, blockCount) {
  const sizes = Array.from({ length: blockCount }, (_, i) => Math.floor((size * (i + 1)) / blockCount) - Math.floor((size * i) / blockCount));
  const [command, argv] = pinned(cpuLayout?.handler, process.execPath, [uploader, file, sasUrl, sizes.join(',')]);
  const child = spawn(command, argv, { stdio: ['ignore', 'pipe', 'inherit'] });
  let output = '';
  child.stdout.on('data', (chunk) => (output += chunk));
  const code = await new Promise((resolve) => child.once('exit', resolve));
  if (code !== 0) throw new Error(`bench-stream: the yardstick uploader exited with ${code}`);
  return JSON.parse(output).cpuSeconds;
}

// One round: to /dev/null, to a blob, then the yardstick on the blob run's own output file.
async function measureRound(env, azurite, i) {
  const baseline = await timeRun(env, `null${i}`, { source: { script: `head -c ${size} /dev/urandom > /dev/null` } });
  const streamed = await timeRun(env, `blob${i}`, { source: { script: `head -c ${size} /dev/urandom` }, outputBlobUri: azurite.toSasUrl(`blob${i}`) });
  const blob = azurite.container.getBlobClient(`blob${i}`);
  const properties = await blob.getProperties();
  if (properties.contentLength !== size) throw new Error(`bench-stream: blob${i} has ${properties.contentLength} bytes, expected ${size}`);
  const blocks = properties.blobCommittedBlockCount ?? Math.ceil(size / (4 * 1024 * 1024));
  const yardstick = await runYardstick(await findOutputFile(env.stateDir), azurite.toSasUrl(`yard${i}`), blocks);
  const yard = azurite.container.getBlobClient(`yard${i}`);
  if ((await yard.getProperties()).contentLength !== size) throw new Error(`bench-stream: yard${i} is not ${size} bytes long`);
  // Azurite keeps blobs in memory: only one round's worth at a time.
  await Promise.all([blob.delete(), yard.delete()]);
  await rm(join(env.stateDir, 'runs'), { recursive: true, force: true }).then(() => mkdir(join(env.stateDir, 'runs'), { recursive: true, mode: 0o700 }));
  return { baseline, streamed, yardstick, blocks };
}

async function measure(env, azurite) {
  await timeRun(env, 'warmup', { source: { script: 'true' }, outputBlobUri: azurite.toSasUrl('warmup') });
  const results = [];
  for (let i = 0; i < rounds; i += 1) results.push(await measureRound(env, azurite, i));
  const pick = (value) => median(results.map(value));
  return {
    baselineMs: pick((r) => r.baseline.ms),
    streamedMs: pick((r) => r.streamed.ms),
    daemonCpu: pick((r) => r.streamed.cpuSeconds),
    daemonCpuNull: pick((r) => r.baseline.cpuSeconds),
    azuriteCpu: pick((r) => r.streamed.azuriteCpu),
    scriptCpu: pick((r) => r.streamed.scriptCpu),
    scriptCpuNull: pick((r) => r.baseline.scriptCpu),
    yardstickCpu: pick((r) => r.yardstick),
    blocks: pick((r) => r.blocks),
    rounds: results,
    rssMb: await peakRssMb(env.daemonPid),
  };
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

// One JSON object per figure on stdout, its same-run baseline in the same object; a summary on stderr.
function reportStream(result, blobTail) {
  const daemonPerGib = round(result.daemonCpu / gib);
  const yardstickPerGib = round(result.yardstickCpu / gib);
  const lines = [
    [{ stream_overhead_ratio: round(result.streamedMs / result.baselineMs), stream_ms: Math.round(result.streamedMs), devnull_ms: Math.round(result.baselineMs) }, 'target ≤ 1.5 (wall time, 256 MiB to the blob / to /dev/null)'],
    [{ stream_daemon_cpu_s_per_gib: daemonPerGib, yardstick_cpu_s_per_gib: yardstickPerGib }, `daemon utime+stime per GiB streamed (to /dev/null the daemon used ${round(result.daemonCpuNull)} s per run), ${result.blocks} appends`],
    [{ stream_cpu_ratio: round(result.daemonCpu / result.yardstickCpu), stream_daemon_cpu_s_per_gib: daemonPerGib, yardstick_cpu_s_per_gib: yardstickPerGib }, 'target ≤ 1.5 (daemon / plain node:http uploader, same file, same block count)'],
    [{ stream_daemon_rss_mb: round(result.rssMb, 1) }, 'target ≤ 150 (daemon VmHWM)'],
    [{ tail_latency_blob_s: blobTail }, 'target ≤ cadence (5 s) + 1 s (printed line → in the blob)'],
  ];
  for (const [figure] of lines) process.stdout.write(`${JSON.stringify(figure)}\n`);
  const where = cpuLayout ? `Azurite on CPU ${cpuLayout.azurite}, daemon, scripts and yardstick on CPU ${cpuLayout.handler}` : 'not pinned';
  const perRound = result.rounds.map((r) => `${Math.round(r.streamed.ms)}/${Math.round(r.baseline.ms)} ms, cpu ${round(r.streamed.cpuSeconds)}/${round(r.yardstick)} s`).join('; ');
  process.stderr.write(`stream figures: median of ${rounds} rounds, ${where}; per round (blob/null wall, daemon/yardstick cpu): ${perRound}\n`);
  process.stderr.write(`CPU s per 256 MiB run (median): daemon ${round(result.daemonCpu)} (to /dev/null ${round(result.daemonCpuNull)}), yardstick ${round(result.yardstickCpu)}, wrapper+relay+script ${round(result.scriptCpu)} (to /dev/null ${round(result.scriptCpuNull)}), Azurite ${round(result.azuriteCpu)}\n`);
  for (const [figure, note] of lines) {
    const [name, value] = Object.entries(figure)[0];
    process.stderr.write(`${name.padEnd(28)} ${String(value).padStart(8)}  ${note}\n`);
  }
}

async function main() {
  const top = await mkdtemp(join(tmpdir(), 'rch-bench-stream-'));
  const layout = await ensureLocalLayout(top);
  const environment = await readHandlerEnvironment(layout.handlerEnvironmentPath);
  const stateDir = join(layout.libDir, 'runcommand-handler');
  let azurite;
  let daemon;
  try {
    azurite = await startAzurite(join(top, 'azurite'));
    const daemonEnv = { RUNCOMMAND_HANDLER_STATE_DIR: stateDir, RUNCOMMAND_HANDLER_SETTINGS_SETTLE_MS: '0' };
    const [command, argv] = pinned(cpuLayout?.handler, nodePath, [...daemonNodeFlags, ...(process.env['BENCH_DAEMON_NODE_OPTIONS'] ?? '').split(' ').filter(Boolean), cli, 'daemon', '--handler-environment', layout.handlerEnvironmentPath]);
    daemon = spawn(command, argv, { env: { ...process.env, ...daemonEnv }, stdio: 'ignore' });
    const env = { configFolder: environment.configFolder, statusFolder: environment.statusFolder, stateDir, daemonPid: daemon.pid, azuritePid: azurite.child.pid };
    const result = await measure(env, azurite);
    reportStream(result, round(await measureBlobTail(env, azurite, top)));
    if (process.env['BENCH_STREAM_THREADS']) process.stderr.write(`daemon CPU by thread, whole life (user+system s): ${await threadCpu(daemon.pid)}\n`);
  } finally {
    await stopChild(daemon);
    await stopChild(azurite?.child);
    await rm(top, { recursive: true, force: true });
  }
}

await main();
