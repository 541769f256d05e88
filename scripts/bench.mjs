#!/usr/bin/env node
// `npm run bench`: measures the figures of shared/spec/targets.md on a temp local layout, with
// baselines taken in the same run, and prints one JSON object per figure on stdout (a short human
// summary goes to stderr). It stops everything it started.
// It measures the shipped handler: the zip scripts/package.mjs makes, unpacked into a temp base dir
// and run with the node it carries, as the agent would (`install` and `enable` through the shim,
// where `enable` goes through the native client first).
// Usage: node scripts/bench.mjs [--cpus N] [--only figure1,figure2,...] [--profile] [--zip PATH | --tree]
//   --cpus  pin the bench, the daemon, the scripts, Azurite and every baseline to CPUs 0..N-1
//           (taskset), so a figure means the same on any machine; also BENCH_CPUS=N (targets.md: 2)
//   --only  measure only the groups holding these figures (e.g. enable_ms_not_running,idle_rss_mb);
//           `dispatch`, `spawn`, `burst`, `enable`, `idle` name those groups of figures;
//           `--only stream` measures the streaming figures alone (BENCH_STREAM_ROUNDS, default 5)
//   --profile  with the dispatch figures: the median ms of each step of the dispatch path over its
//           50 runs (the daemon, launcher and wrapper mark them under RCH_DISPATCH_PROFILE)
//   --zip   measure this zip instead of packaging the work tree; --tree: the work tree's dist/cli.js
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { describeCpuPerRun, formatDispatchProfile, reapedChildrenCpuMs, summarizeDispatchProfile, treeCpuMs } from './bench-profile.mjs';
import { terminalStatus } from './bench-status.mjs';

const root = dirname(dirname(fileURLToPath(import.meta.url)));

// Short names for --only: the figures of one group.
const figureGroups = {
  dispatch: ['dispatch_p50_ms', 'dispatch_p95_ms', 'status_lag_ms'],
  spawn: ['spawn_overhead_ratio', 'spawn_overhead_ratio_public'],
  burst: ['burst_200_s'],
  enable: ['enable_ms_running', 'enable_ms_not_running'],
  idle: ['idle_rss_mb', 'idle_cpu_pct'],
};

// --cpus N: run again under `taskset -c 0-(N-1)`; every process it starts inherits the affinity.
const cpusArg = process.argv.findIndex((arg) => arg === '--cpus' || arg.startsWith('--cpus='));
const cpus = cpusArg < 0 ? process.env.BENCH_CPUS : process.argv[cpusArg].includes('=') ? process.argv[cpusArg].split('=')[1] : process.argv[cpusArg + 1];
if (cpusArg >= 0) process.argv.splice(cpusArg, process.argv[cpusArg].includes('=') ? 1 : 2);
if (cpus !== undefined && process.env.BENCH_PINNED === undefined) {
  if (!/^[1-9]\d*$/.test(cpus)) throw new Error(`bench: --cpus wants a positive number, got ${cpus}`);
  const pinned = spawnSync('taskset', ['-c', `0-${Number(cpus) - 1}`, process.execPath, ...process.argv.slice(1)], {
    stdio: 'inherit',
    env: { ...process.env, BENCH_PINNED: cpus },
  });
  if (pinned.error) throw new Error(`bench: taskset is needed for --cpus (${pinned.error.message})`);
  process.exit(pinned.status ?? 1);
}
const benchArgs = parseBenchArgs(process.argv.slice(2));
const zipPath = benchArgs.tree ? undefined : (benchArgs.zip ?? packageZip());
let firstCommandMs; // set by unpack()
const unpacked = zipPath === undefined ? undefined : unpack(zipPath);
const cli = unpacked === undefined ? join(root, 'dist', 'cli.js') : join(unpacked, 'dist', 'cli.js');
const nodePath = unpacked === undefined ? process.execPath : join(unpacked, 'bin', 'node');
const { ensureLocalLayout, encryptToCertificate, findLocalCertificate } = await import(join(root, 'dist/handler/cli/local-layout.js'));
const { readHandlerEnvironment } = await import(join(root, 'dist/config/handler-environment.js'));
const { toAgentJson } = await import(join(root, 'dist/handler/cli/submit.js'));

const figures = [];
const summary = [];
const nowMs = () => performance.timeOrigin + performance.now();
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const percentile = (values, p) => [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor((p / 100) * values.length))];
const round = (value, digits = 1) => Math.round(value * 10 ** digits) / 10 ** digits;
// What the figures below were measured on: pinned CPUs (--cpus), else every CPU of the machine.
report('bench_cpus', Number(process.env.BENCH_PINNED ?? availableParallelism()), process.env.BENCH_PINNED ? 'pinned with taskset' : 'not pinned: use --cpus 2');

function toOnly(list) {
  return new Set(list.split(',').flatMap((name) => figureGroups[name] ?? [name]));
}

function parseBenchArgs(argv) {
  const options = { only: undefined, zip: undefined, tree: false, profile: false };
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i];
    if (arg === '--only') options.only = toOnly(argv[(i += 1)]);
    else if (arg.startsWith('--only=')) options.only = toOnly(arg.slice('--only='.length));
    else if (arg === '--profile') options.profile = true;
    else if (arg === '--zip') options.zip = argv[(i += 1)];
    else if (arg === '--tree') options.tree = true;
    else throw new Error(`bench: unknown argument ${arg}`);
  }
  return options;
}

// True when any of these figures is asked for (all are without --only).
function wanted(...names) {
  return benchArgs.only === undefined || names.some((name) => benchArgs.only.has(name));
}

// Packages the work tree (reused when up to date) and returns the zip's path.
function packageZip() {
  const stdout = execFileSync(process.execPath, [join(root, 'scripts', 'package.mjs')], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  return stdout.trim().split('\n').at(-1);
}

// Unpacks the zip into a temp base dir (removed on exit) and returns it, after a first command
// through the shim, as the agent's install would be: that one unpacks bin/node.xz (timed here, a
// once-per-install cost), so the figures below are those of every later command.
function unpack(zip) {
  const dir = mkdtempSync(join(tmpdir(), 'rch-bench-pkg-'));
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  execFileSync('unzip', ['-q', zip, '-d', dir]);
  const started = performance.now();
  execFileSync('/bin/sh', [join(dir, 'bin', 'runcommand-handler'), 'help'], { cwd: dir, stdio: 'ignore' });
  firstCommandMs = performance.now() - started;
  return dir;
}

function report(name, value, note = '') {
  figures.push({ [name]: value });
  process.stdout.write(`${JSON.stringify({ [name]: value })}\n`);
  summary.push(`${name.padEnd(24)} ${String(value).padStart(10)}  ${note}`);
}

async function waitFor(probe, timeoutMs = 30_000, intervalMs = 2) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error('bench: timed out waiting');
    await sleep(intervalMs);
  }
}

function run(args, env) {
  return new Promise((resolve) => {
    const started = nowMs();
    const child = spawn(nodePath, [cli, ...args], { env: { ...process.env, ...env }, stdio: 'ignore' });
    child.on('exit', (code) => resolve({ code, ms: nowMs() - started }));
  });
}

// Runs a lifecycle command as the agent does: the shim (bin/runcommand-handler, where `enable`
// goes through the native client first), cwd = the base dir (protocol.md §2, §4).
function runShim(args, env) {
  const base = unpacked ?? root;
  return new Promise((resolve) => {
    const started = nowMs();
    const child = spawn(join(base, 'bin', 'runcommand-handler'), args, { cwd: base, env: { ...process.env, ...env }, stdio: 'ignore' });
    child.on('exit', (code) => resolve({ code, ms: nowMs() - started }));
  });
}

async function readEpoch(path) {
  const text = await readFile(path, 'utf8').catch(() => '');
  return /^\d+\.\d+\n$/.test(text) ? Number(text) * 1000 : undefined;
}

// A settings file appears in configFolder by rename, as an atomic drop would.
async function drop(env, name, seq, publicSettings, protectedSettings) {
  const certificate = await findLocalCertificate(env.certDir);
  const handlerSettings = {
    publicSettings,
    protectedSettings: protectedSettings ? await encryptToCertificate(JSON.stringify(protectedSettings), certificate.crtPath) : null,
    protectedSettingsCertThumbprint: protectedSettings ? certificate.thumbprint : null,
  };
  const temp = join(env.configFolder, `.${name}.${seq}.tmp`);
  await writeFile(temp, toAgentJson({ runtimeSettings: [{ handlerSettings }] }));
  return async () => {
    const at = nowMs();
    await rename(temp, join(env.configFolder, `${name}.${seq}.settings`));
    return at;
  };
}

async function processStats(pid) {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const stat = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1].split(' ');
  const kb = (key) => Number(new RegExp(`${key}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
  return { rssMb: kb('VmRSS') / 1024, hwmMb: kb('VmHWM') / 1024, cpuTicks: Number(stat[11]) + Number(stat[12]) };
}

async function daemonPid(handlerEnvironment) {
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.includes(cli) && cmdline.includes('daemon') && cmdline.includes(handlerEnvironment)) return Number(entry);
  }
  return undefined;
}

async function benchEnable(env, handlerEnvironment, options) {
  const base = { ...options, ConfigExtensionName: 'enable-probe', ConfigSequenceNumber: '0' };
  // The agent's order: install, then the first enable, which has to start the daemon.
  await runShim(['install', '--handler-environment', handlerEnvironment], options);
  const cold = [(await runShim(['enable', '--handler-environment', handlerEnvironment], base)).ms];
  // The other figures need the daemon that first enable started, not the enable figures.
  if (!wanted('enable_ms_running', 'enable_ms_not_running')) return;
  // Four more first enables, each after `uninstall` (which stops the daemon) and `install`: the
  // figure is their median, not one start's luck.
  while (cold.length < 5) {
    await runShim(['uninstall', '--handler-environment', handlerEnvironment], options);
    await runShim(['install', '--handler-environment', handlerEnvironment], options);
    // The stopped daemon's processes are still being torn down for a while after `uninstall`
    // returns; a VM's first enable does not race that.
    await sleep(1000);
    cold.push((await runShim(['enable', '--handler-environment', handlerEnvironment], base)).ms);
  }
  const warm = [];
  for (let i = 0; i < 10; i += 1) warm.push((await runShim(['enable', '--handler-environment', handlerEnvironment], base)).ms);
  report('enable_ms_running', round(percentile(warm, 50)), 'target ≤ 100 (daemon already running)');
  report('enable_ms_not_running', round(percentile(cold, 50)), `target ≤ 200 (enable had to start the daemon; median of ${cold.map((ms) => round(ms)).join(', ')})`);
}

async function benchDispatch(env, work, profileFile) {
  const dispatch = [];
  const lag = [];
  const times = new Map();
  for (let i = 0; i < 50; i += 1) {
    const first = join(work, `first-${i}`);
    const last = join(work, `last-${i}`);
    const script = `echo $EPOCHREALTIME > ${first}\necho "$SECRET" > /dev/null\necho $EPOCHREALTIME > ${last}\n`;
    const go = await drop(env, `dispatch${i}`, 0, { source: { script } }, { protectedParameters: [{ name: 'SECRET', value: 'bench-secret' }] });
    const at = await go();
    const started = await waitFor(() => readEpoch(first));
    const ended = await waitFor(() => readEpoch(last));
    await waitFor(() => terminalStatus(env.statusFolder, `dispatch${i}`, 0), 30_000, 1);
    lag.push(nowMs() - ended);
    dispatch.push(started - at);
    times.set(`dispatch${i}.0`, { renamed: at, first: started });
  }
  report('dispatch_p50_ms', round(percentile(dispatch, 50)), 'target ≤ 15 (settings renamed in → first instruction, with protected settings)');
  report('dispatch_p95_ms', round(percentile(dispatch, 95)), 'target ≤ 40');
  report('status_lag_ms', round(percentile(lag, 50)), 'target p50 ≤ 100 (script exit → terminal status on disk)');
  if (profileFile !== undefined) reportDispatchProfile(await readFile(profileFile, 'utf8').catch(() => ''), times);
}

// --profile: the median of each step, as one JSON object on stdout and a table on stderr.
function reportDispatchProfile(profileText, times) {
  const profile = summarizeDispatchProfile(profileText, times);
  const steps = Object.fromEntries(profile.steps.map(({ step, medianMs }) => [step, medianMs === undefined ? null : round(medianMs, 2)]));
  process.stdout.write(`${JSON.stringify({ dispatch_profile_ms: steps, runs: profile.runs, median_total_ms: round(profile.medianTotalMs, 2) })}\n`);
  process.stderr.write(`${formatDispatchProfile(profile)}\n`);
}

// The same 50 trivial scripts (with their protected settings) all at once through the daemon —
// settings renamed in → every terminal status on disk — against a plain Node loop that spawns the
// same scripts at once and waits for every exit: the daemon's whole cost per run, as a ratio.
async function benchSpawnOverhead(env, work, pid, { protectedSettings, figure }) {
  const count = 50;
  const goes = [];
  const secret = protectedSettings ? { protectedParameters: [{ name: 'SECRET', value: 'bench-secret' }] } : undefined;
  for (let i = 0; i < count; i += 1) {
    goes.push(await drop(env, `${figure}${i}`, 0, { source: { script: 'echo "$SECRET" > /dev/null' } }, secret));
  }
  const cpuBefore = await treeCpuMs(pid);
  const at = nowMs();
  await Promise.all(goes.map((go) => go()));
  for (let i = 0; i < count; i += 1) await waitFor(() => terminalStatus(env.statusFolder, `${figure}${i}`, 0), 60_000, 2);
  const daemonMs = nowMs() - at;
  const cpuAfter = await treeCpuMs(pid);
  const script = join(work, 'overhead.sh');
  await writeFile(script, 'echo "$SECRET" > /dev/null\n');
  const directCpuBefore = await reapedChildrenCpuMs();
  const started = nowMs();
  await Promise.all(Array.from({ length: count }, () => new Promise((resolve) => spawn('/bin/bash', [script], { stdio: 'ignore', env: { SECRET: 'x' } }).on('exit', resolve))));
  const directMs = nowMs() - started;
  const directCpuMs = (await reapedChildrenCpuMs()) - directCpuBefore;
  const what = protectedSettings ? 'with protected settings' : 'public settings only';
  const target = protectedSettings ? 2 : 2.5;
  const cpu = `${describeCpuPerRun(cpuBefore, cpuAfter, count)} (rch-exec: the launcher, its wrappers and their scripts); the scripts alone ${round(directCpuMs / count, 2)} ms/run`;
  report(figure, round(daemonMs / directMs, 2), `target ≤ ${target} (50 scripts at once, ${what}: daemon ${Math.round(daemonMs)} ms, plain Node loop ${Math.round(directMs)} ms; ${cpu})`);
}

async function benchBurst(env, pid) {
  const goes = [];
  for (let i = 0; i < 200; i += 1) goes.push(await drop(env, `burst${i}`, 0, { source: { script: 'true' } }));
  const cpuBefore = await treeCpuMs(pid);
  const at = nowMs();
  await Promise.all(goes.map((go) => go()));
  for (let i = 0; i < 200; i += 1) await waitFor(() => terminalStatus(env.statusFolder, `burst${i}`, 0), 60_000, 5);
  const seconds = (nowMs() - at) / 1000;
  const cpuAfter = await treeCpuMs(pid);
  const leftovers = await childProcesses(pid);
  report('burst_200_s', round(seconds, 2), `target ≤ 10, all terminal, ${leftovers} processes left (the daemon's own children: launcher, rch-crypto); ${describeCpuPerRun(cpuBefore, cpuAfter, 200)}`);
}

async function childProcesses(pid) {
  let count = 0;
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    if (stat.split(') ')[1]?.split(' ')[1] === String(pid)) count += 1;
  }
  return count;
}

async function benchTail(env) {
  const go = await drop(env, 'tail', 0, { source: { script: 'sleep 0.2; echo visible-line; sleep 8' } });
  await go();
  const printed = (await waitFor(async () => {
    const text = await readFile(join(env.statusFolder, 'tail.0.status'), 'utf8').catch(() => '');
    return text.includes('Running') ? nowMs() : undefined;
  })) + 200;
  const seen = await waitFor(async () => ((await readFile(join(env.statusFolder, 'tail.0.status'), 'utf8').catch(() => '')).includes('visible-line') ? nowMs() : undefined), 30_000, 20);
  report('tail_latency_s', round((seen - printed) / 1000, 2), 'target ≤ cadence (5 s) + 1 s, status file');
  await waitFor(() => terminalStatus(env.statusFolder, 'tail', 0), 30_000, 50);
}

// targets.md: a daemon with 25 finished run commands, then 60 s idle (its own fresh daemon, so
// the runs of the other figures do not count).
async function benchIdle() {
  const { layout, env, options } = await makeLayout();
  try {
    await run(['enable', '--handler-environment', layout.handlerEnvironmentPath], { ...options, ConfigExtensionName: 'idle0', ConfigSequenceNumber: '0' });
    const pid = await waitFor(() => daemonPid(layout.handlerEnvironmentPath), 10_000, 20);
    for (let i = 0; i < 25; i += 1) {
      const go = await drop(env, `idle${i}`, 0, { source: { script: 'echo "$SECRET"' } }, { protectedParameters: [{ name: 'SECRET', value: 'bench-secret' }] });
      await go();
    }
    for (let i = 0; i < 25; i += 1) await waitFor(() => terminalStatus(env.statusFolder, `idle${i}`, 0), 30_000, 10);
    await sleep(2000);
    const before = await processStats(pid);
    const started = Date.now();
    await sleep(60_000);
    const after = await processStats(pid);
    const cpu = ((after.cpuTicks - before.cpuTicks) / 100 / ((Date.now() - started) / 1000)) * 100;
    const rollup = await readFile(`/proc/${pid}/smaps_rollup`, 'utf8').catch(() => '');
    const anonMb = Number(/^Anonymous:\s+(\d+)/m.exec(rollup)?.[1] ?? Number.NaN) / 1024;
    // Anonymous memory (mostly the JS heap) and file pages (node's binary and libraries) apart: the
    // two move for different reasons (README, Idle memory).
    report('idle_rss_mb', round(after.rssMb), `target ≤ 50 (fresh daemon, 25 finished run commands, 60 s idle; ${round(anonMb)} MB anonymous, ${round(after.rssMb - anonMb)} MB file pages)`);
    report('idle_cpu_pct', round(cpu, 2), 'target ≤ 0.5');
  } finally {
    await run(['uninstall', '--handler-environment', layout.handlerEnvironmentPath], options);
    await rm(layout.root, { recursive: true, force: true });
  }
}

async function makeLayout() {
  const top = await mkdtemp(join(tmpdir(), 'rch-bench-'));
  const layout = await ensureLocalLayout(top);
  const environment = await readHandlerEnvironment(layout.handlerEnvironmentPath);
  const env = { configFolder: environment.configFolder, statusFolder: environment.statusFolder, certDir: layout.libDir };
  const options = { RUNCOMMAND_HANDLER_STATE_DIR: join(layout.libDir, 'runcommand-handler') };
  return { layout: { ...layout, root: top }, env, options };
}

// The zip as shipped: its size and how many files (directories not counted) it holds.
function benchPackage() {
  if (zipPath === undefined) return;
  const files = execFileSync('unzip', ['-Z1', zipPath], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 })
    .split('\n')
    .filter((line) => line !== '' && !line.endsWith('/')).length;
  const bytes = statSync(zipPath).size;
  report('package_zip_mb', round(bytes / 1e6), `target ≤ 30 (${round(bytes / 1048576)} MiB)`);
  report('package_files', files, 'target < 50');
  report('first_command_ms', Math.round(firstCommandMs), 'the first command after unzip (`help`): unpacks bin/node.xz, once per install');
}

async function main() {
  if (wanted('package_zip_mb', 'package_files')) benchPackage();
  const mainFigures = ['enable_ms_running', 'enable_ms_not_running', 'dispatch_p50_ms', 'dispatch_p95_ms', 'status_lag_ms', 'spawn_overhead_ratio', 'spawn_overhead_ratio_public', 'burst_200_s', 'tail_latency_s', 'daemon_peak_rss_mb'];
  if (wanted(...mainFigures)) await benchMain();
  if (!process.env['BENCH_QUICK'] && wanted('idle_rss_mb', 'idle_cpu_pct')) await benchIdle();
  const stream = join(root, 'scripts', 'bench-stream.mjs');
  if (existsSync(stream) && wanted('stream', 'stream_overhead_ratio', 'stream_daemon_cpu_s_per_gib', 'stream_cpu_ratio', 'stream_daemon_rss_mb', 'tail_latency_blob_s')) {
    await new Promise((resolve) => spawn(process.execPath, [stream], { stdio: 'inherit', env: { ...process.env, BENCH_CLI: cli, BENCH_NODE: nodePath } }).on('exit', resolve));
  }
  process.stderr.write(`\nrun-command handler bench (${new Date().toISOString()}, ${zipPath ?? 'work tree'})\n${summary.join('\n')}\n`);
}

async function benchMain() {
  const { layout, env, options } = await makeLayout();
  const work = join(layout.root, 'work');
  await mkdir(work, { recursive: true });
  // --profile: the daemon (and its launcher) mark each step of the dispatch path in this file.
  const profileFile = benchArgs.profile ? join(work, 'dispatch-profile.jsonl') : undefined;
  const daemonOptions = profileFile === undefined ? options : { ...options, RCH_DISPATCH_PROFILE: profileFile };
  let pid;
  try {
    await benchEnable(env, layout.handlerEnvironmentPath, daemonOptions);
    pid = await waitFor(() => daemonPid(layout.handlerEnvironmentPath), 10_000, 20);
    if (wanted('dispatch_p50_ms', 'dispatch_p95_ms', 'status_lag_ms')) await benchDispatch(env, work, profileFile);
    if (wanted('spawn_overhead_ratio')) await benchSpawnOverhead(env, work, pid, { protectedSettings: true, figure: 'spawn_overhead_ratio' });
    if (wanted('spawn_overhead_ratio_public')) await benchSpawnOverhead(env, work, pid, { protectedSettings: false, figure: 'spawn_overhead_ratio_public' });
    if (wanted('burst_200_s')) await benchBurst(env, pid);
    if (wanted('tail_latency_s')) await benchTail(env);
    if (wanted('daemon_peak_rss_mb')) report('daemon_peak_rss_mb', round((await processStats(pid)).hwmMb), 'the runs above (VmHWM)');
  } finally {
    await run(['uninstall', '--handler-environment', layout.handlerEnvironmentPath], options);
    await rm(layout.root, { recursive: true, force: true });
  }
}

await main();
