// Only root can act as the daemon or talk to it (issue: hardening #1). A non-root user who binds
// what used to be the daemon's abstract socket name cannot stop the next enable from starting a
// daemon, never receives the token, cannot connect to the daemon's socket, and cannot stop
// `disable` from killing a run; one lock decides which of two daemons serves, and a SIGKILLed
// daemon's stale lock and socket are taken over by the next one.
import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, lstat, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, afterAll, describe, expect, it } from 'vitest';
import { sendIpcRequest } from '../../src/handler/infra/ipc.js';
import { linuxPlatform } from '../../src/platform/linux.js';
import { toInstallHash } from '../../src/platform/platform.js';
import { cleanupLayout, isTerminalReport, makeAgentLayout, removeRunCommand, runCommand, waitForStatus, writeSettings, type AgentLayout } from '../helpers/agent.js';
import { findProcesses } from '../helpers/daemon-harness.js';
import { waitUntil } from '../helpers/scan.js';
import { makeTestUser, removeTestUsers, type TestUser } from '../helpers/users.js';

const fast = { RUNCOMMAND_HANDLER_STATUS_INTERVAL_MS: '300', RUNCOMMAND_HANDLER_KILL_GRACE_MS: '1000' };

// Binds an abstract socket name and answers every request as a daemon would (hello with the
// install's config folder, ok:true to anything else), printing every line it receives.
const squatterSource = `
import { createServer } from 'node:net';
const [name, configFolder, version] = process.argv.slice(2);
const server = createServer((socket) => {
  let data = '';
  socket.setEncoding('utf8');
  socket.on('error', () => undefined);
  socket.on('data', (chunk) => {
    data += chunk;
    const newline = data.indexOf('\\n');
    if (newline < 0) return;
    const line = data.slice(0, newline);
    process.stdout.write('RECV ' + line + '\\n');
    let op;
    try { op = JSON.parse(line).op; } catch {}
    socket.end(JSON.stringify(op === 'hello' ? { ok: true, pid: process.pid, version, configFolder } : { ok: true }) + '\\n');
  });
});
server.on('error', (error) => { process.stdout.write('ERROR ' + error.code + '\\n'); process.exit(1); });
server.listen('\\0' + name, () => process.stdout.write('LISTENING uid=' + process.getuid() + '\\n'));
`;

// Tries, as that user, to connect to the daemon's endpoint and to the old abstract name, and to
// read the token; prints what happened to each (the endpoint comes base64: an abstract name holds a NUL).
const probeSource = `
import { createConnection } from 'node:net';
import { readFile } from 'node:fs/promises';
const [endpointBase64, abstractName, tokenPath] = process.argv.slice(2);
const endpoint = Buffer.from(endpointBase64, 'base64').toString('utf8');
const connect = (path) => new Promise((resolve) => {
  const socket = createConnection(path);
  socket.on('connect', () => { socket.destroy(); resolve('connected'); });
  socket.on('error', (error) => resolve(error.code));
});
const token = await readFile(tokenPath, 'utf8').then(() => 'read', (error) => error.code);
process.stdout.write(JSON.stringify({ endpoint: await connect(endpoint), abstract: await connect('\\0' + abstractName), token }) + '\\n');
`;

let user: TestUser;
let scriptsDir: string;
let layout: AgentLayout | undefined;
let squatter: { child: ChildProcess; output: () => string } | undefined;

beforeAll(async () => {
  user = await makeTestUser('sq');
  scriptsDir = await mkdtemp(join(tmpdir(), 'rch-squat-'));
  await chmod(scriptsDir, 0o755);
  await writeFile(join(scriptsDir, 'squatter.mjs'), squatterSource, { mode: 0o644 });
  await writeFile(join(scriptsDir, 'probe.mjs'), probeSource, { mode: 0o644 });
});

afterAll(async () => {
  await removeTestUsers([user]);
  await rm(scriptsDir, { recursive: true, force: true });
});

afterEach(async () => {
  squatter?.child.kill('SIGKILL');
  squatter = undefined;
  if (layout) await cleanupLayout(layout);
  layout = undefined;
});

function asUser(args: string[]): ChildProcess {
  return spawn('setpriv', [`--reuid=${user.uid}`, `--regid=${user.gid}`, '--clear-groups', process.execPath, ...args], { stdio: ['ignore', 'pipe', 'pipe'], cwd: scriptsDir });
}

function stateDirOf(current: AgentLayout): string {
  return join(current.libDir, 'runcommand-handler');
}

// The name the daemon's socket had before this fix: predictable from the state dir.
function oldAbstractName(current: AgentLayout): string {
  return `runcommand-handler-${toInstallHash(stateDirOf(current))}`;
}

async function startSquatter(current: AgentLayout): Promise<void> {
  const child = asUser([join(scriptsDir, 'squatter.mjs'), oldAbstractName(current), current.configFolder, current.version]);
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  squatter = { child, output: () => output };
  await waitUntil(async () => output.includes('LISTENING') || output.includes('ERROR'), 10_000);
  expect(output).toContain(`LISTENING uid=${user.uid}`);
}

async function installed(): Promise<AgentLayout> {
  layout = await makeAgentLayout();
  const install = await runCommand(layout, 'install', { extra: fast });
  expect(install.exitCode, install.stderr).toBe(0);
  return layout;
}

async function enable(current: AgentLayout, name: string, seq: number): Promise<void> {
  const result = await runCommand(current, 'enable', { name, seq, extra: fast });
  expect(result.exitCode, result.stderr).toBe(0);
}

function findDaemons(current: AgentLayout): Promise<number[]> {
  return findProcesses(`${current.baseDir}/dist/cli.js`);
}

async function readToken(current: AgentLayout): Promise<string> {
  return readFile(join(stateDirOf(current), 'ipc-token'), 'utf8');
}

describe('the daemon control socket against a local non-root user', () => {
  it('a user squatting the old abstract socket name before the first enable cannot stop the daemon from starting and running the script, and gets nothing', async () => {
    const current = await installed();
    await startSquatter(current);
    await writeSettings(current, 'first', 0, { publicSettings: { source: { script: 'echo ran' } } });
    await enable(current, 'first', 0);
    const report = await waitForStatus(current, 'first', 0, isTerminalReport, 20_000);
    expect(report.instanceView).toMatchObject({ executionState: 'Succeeded', output: 'ran\n' });
    const daemons = await findDaemons(current);
    expect(daemons, `daemon processes: ${daemons.join(', ')}`).toHaveLength(1);
    // Another enable (the daemon running) still talks to the daemon only.
    await enable(current, 'first', 0);
    const token = await readToken(current);
    expect(token.length).toBeGreaterThan(0);
    expect(squatter?.output(), 'what the squatter received').not.toContain(token);
    expect(squatter?.output(), 'what the squatter received').not.toContain('RECV');
  });

  it('the user can neither connect to the daemon socket (EACCES) nor read the token, and nothing serves the old abstract name', async () => {
    const current = await installed();
    await writeSettings(current, 'first', 0, { publicSettings: { source: { script: 'echo ran' } } });
    await enable(current, 'first', 0);
    await waitForStatus(current, 'first', 0, isTerminalReport, 20_000);
    const endpoint = linuxPlatform.toDaemonEndpoint(stateDirOf(current));
    const probe = asUser([join(scriptsDir, 'probe.mjs'), Buffer.from(endpoint).toString('base64'), oldAbstractName(current), join(stateDirOf(current), 'ipc-token')]);
    let output = '';
    probe.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    probe.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    await new Promise((resolve) => probe.on('close', resolve));
    expect(JSON.parse(output)).toEqual({ endpoint: 'EACCES', abstract: 'ECONNREFUSED', token: 'EACCES' });
  });

  it('disable with a squatter around (the daemon crashed) still kills the running script tree, and the squatter gets nothing', async () => {
    const current = await installed();
    const marker = `rch-e2e-squat-disable-${process.pid}-${Date.now()}`;
    await writeSettings(current, 'victim', 1, { publicSettings: { source: { script: `sh -c 'sleep 120; : ${marker}' & setsid sh -c 'sleep 120; : ${marker}' & sh -c 'sleep 120; : ${marker}'\n` } } });
    await enable(current, 'victim', 1);
    await waitForStatus(current, 'victim', 1, (r) => r.instanceView.executionState === 'Running', 20_000);
    await waitUntil(async () => (await findProcesses(marker)).length >= 3, 10_000);
    const daemons = await findDaemons(current);
    expect(daemons).toHaveLength(1);
    for (const pid of daemons) process.kill(pid, 'SIGKILL');
    await waitUntil(async () => (await findDaemons(current)).length === 0, 10_000);
    await startSquatter(current);
    const disable = await removeRunCommand(current, 'victim');
    expect(disable?.exitCode).toBe(0);
    await waitUntil(async () => (await findProcesses(marker)).length === 0, 15_000).catch(() => undefined);
    expect(await findProcesses(marker)).toEqual([]);
    expect(squatter?.output()).not.toContain('RECV');
  });
});

describe('one daemon per install', () => {
  function spawnDaemon(current: AgentLayout): ChildProcess {
    return spawn(process.execPath, [join(current.baseDir, 'dist', 'cli.js'), 'daemon', '--handler-environment', join(current.baseDir, 'HandlerEnvironment.json')], {
      cwd: current.baseDir,
      stdio: 'ignore',
      env: { ...process.env, ...fast },
    });
  }

  it('two daemons started at once: exactly one serves, the other exits 0; a SIGKILLed daemon leaves a stale lock and socket the next enable\u2019s daemon takes over', async () => {
    const current = await installed();
    const stateDir = stateDirOf(current);
    const address = { endpoint: linuxPlatform.toDaemonEndpoint(stateDir), tokenPath: join(stateDir, 'ipc-token'), lockPath: join(stateDir, 'daemon.lock') };
    const daemons = [spawnDaemon(current), spawnDaemon(current)];
    const exits = daemons.map((child) => new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code))));
    const first = await Promise.race(exits.map((exit, index) => exit.then((code) => ({ index, code }))));
    expect(first.code).toBe(0);
    const survivor = daemons[1 - first.index] as ChildProcess;
    await waitUntil(async () => (await sendIpcRequest(address, { op: 'hello' }, 500)) !== undefined, 10_000);
    const hello = await sendIpcRequest(address, { op: 'hello' }, 2000);
    expect(hello).toMatchObject({ ok: true, pid: survivor.pid });
    expect(survivor.exitCode).toBeNull();
    expect((await readFile(address.lockPath, 'utf8')).split(' ')[0]).toBe(String(survivor.pid));
    const logs = await readdir(current.logFolder);
    const logText = (await Promise.all(logs.filter((file) => /^handler-.*\.log$/.test(file)).map((file) => readFile(join(current.logFolder, file), 'utf8')))).join('');
    expect(logText).toContain('another daemon already serves this install');

    // A crash: the lock and the socket stay behind, naming a dead process.
    survivor.kill('SIGKILL');
    await exits[1 - first.index];
    expect((await lstat(address.endpoint)).isSocket()).toBe(true);
    expect((await readFile(address.lockPath, 'utf8')).split(' ')[0]).toBe(String(survivor.pid));
    await writeSettings(current, 'after', 0, { publicSettings: { source: { script: 'echo after' } } });
    await enable(current, 'after', 0);
    const report = await waitForStatus(current, 'after', 0, isTerminalReport, 20_000);
    expect(report.instanceView).toMatchObject({ executionState: 'Succeeded', output: 'after\n' });
    const next = await findDaemons(current);
    expect(next).toHaveLength(1);
    expect((await readFile(address.lockPath, 'utf8')).split(' ')[0]).toBe(String(next[0]));
    expect(await sendIpcRequest(address, { op: 'hello' }, 2000)).toMatchObject({ ok: true, pid: next[0] });
  });
});
