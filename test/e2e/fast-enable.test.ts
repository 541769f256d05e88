// The native `enable` client (src/native/rch-enable.c, commands/fast-enable.ts; issues 11.4, 16.3):
// with a daemon serving the install, the shim's enable is done by that daemon without node —
// Pending status, the command log's line (client: native), the run; with none, the client starts
// it as node's enable would and hands it the enable — and whenever it cannot be sure (no endpoint
// file, other variables, an unreadable token, a socket folder others can enter, another install's
// daemon, an invalid identity) node's enable does it, with today's outcome.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { chmod, copyFile, readdir, readFile, readlink, rename, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { daemonNodeFlags } from '../../src/handler/infra/daemon-control.js';
import { deferredCaCertsVariable } from '../../src/util/extra-ca-certificates.js';
import { cleanupLayout, isTerminalReport, makeAgentLayout, readStatus, runCommand, waitForStatus, writeSettings, type AgentLayout } from '../helpers/agent.js';
import { findProcesses } from '../helpers/daemon-harness.js';
import { waitUntil } from '../helpers/scan.js';

// NODE_EXTRA_CA_CERTS as an administrator may set it for every process: the daemon is started with
// it deferred (util/extra-ca-certificates.ts), its scripts get it back.
const extraCa = join(mkdtempSync(join(tmpdir(), 'rch-fast-enable-')), 'extra-ca.pem');
const fast = { RUNCOMMAND_HANDLER_STATUS_INTERVAL_MS: '300', RUNCOMMAND_HANDLER_KILL_GRACE_MS: '1000', NODE_EXTRA_CA_CERTS: extraCa };

beforeAll(() => {
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', '/dev/null', '-out', extraCa, '-days', '2', '-subj', '/CN=extra ca'], { stdio: 'ignore' });
});

afterAll(() => rmSync(dirname(extraCa), { recursive: true, force: true }));

// The daemon's environment: its variables by name.
async function readEnviron(pid: number): Promise<Record<string, string>> {
  const entries = (await readFile(`/proc/${pid}/environ`, 'utf8')).split('\0').filter(Boolean);
  return Object.fromEntries(entries.map((entry) => [entry.slice(0, entry.indexOf('=')), entry.slice(entry.indexOf('=') + 1)]));
}

const layouts: AgentLayout[] = [];

// What node's enable logs when it had to start the daemon: `starting` when the daemon took longer
// than its budget to answer (a busy machine).
const startedByNode = { daemon: expect.stringMatching(/^start(ed|ing)$/) as unknown };

afterEach(async () => {
  await Promise.all(layouts.splice(0).map((layout) => cleanupLayout(layout)));
});

async function installed(): Promise<AgentLayout> {
  const layout = await makeAgentLayout();
  layouts.push(layout);
  const install = await runCommand(layout, 'install', { extra: fast });
  expect(install.exitCode, install.stderr).toBe(0);
  return layout;
}

async function enable(layout: AgentLayout, name: string, seq: number): Promise<void> {
  const result = await runCommand(layout, 'enable', { name, seq, extra: fast });
  expect(result.exitCode, result.stderr).toBe(0);
}

// The command log's enable lines for (name, seq).
async function readEnableLines(layout: AgentLayout, name: string, seq: number): Promise<Array<Record<string, unknown>>> {
  const text = await readFile(join(layout.logFolder, 'commands.log'), 'utf8').catch(() => '');
  const lines = text.split('\n').filter((line) => line !== '').map((line) => JSON.parse(line) as Record<string, unknown>);
  return lines.filter((line) => line['command'] === 'enable' && line['message'] === 'enable' && line['name'] === name && line['seq'] === seq);
}

// The daemon's log lines (handler-<date>.log) saying an enable was left to node.
async function readLeftToNode(layout: AgentLayout): Promise<string[]> {
  const files = (await readdir(layout.logFolder).catch(() => [])).filter((file) => file.startsWith('handler-'));
  const texts = await Promise.all(files.map((file) => readFile(join(layout.logFolder, file), 'utf8')));
  return texts.flatMap((text) => text.split('\n')).filter((line) => line.includes('native enable left to node'));
}

function stateDirOf(layout: AgentLayout): string {
  return join(layout.libDir, 'runcommand-handler');
}

// A layout whose daemon runs (started by a first enable) and has run `warm`.
async function withDaemon(): Promise<AgentLayout> {
  const layout = await installed();
  await writeSettings(layout, 'warm', 0, { publicSettings: { source: { script: 'echo warm' } } });
  await enable(layout, 'warm', 0);
  await waitForStatus(layout, 'warm', 0, isTerminalReport, 20_000);
  const endpointFile = await readFile(join(layout.baseDir, '.daemon-endpoint'), 'utf8');
  expect(endpointFile.split('\n').slice(0, 3)).toEqual([join(stateDirOf(layout), 'daemon.sock'), join(layout.baseDir, 'HandlerEnvironment.json'), layout.logFolder]);
  return layout;
}

function findDaemons(layout: AgentLayout): Promise<number[]> {
  return findProcesses(`${layout.baseDir}/dist/cli.js\0daemon`);
}

// What the daemon was started with: argv, cwd, session leader, stdout.
async function describeDaemon(pid: number): Promise<{ argv: string[]; cwd: string; sessionLeader: boolean; stdout: string }> {
  const argv = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0').slice(0, -1);
  const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]?.split(' ') ?? [];
  return { argv, cwd: await readlink(`/proc/${pid}/cwd`), sessionLeader: fields[3] === String(pid), stdout: await readlink(`/proc/${pid}/fd/1`) };
}

describe('enable through the native client', () => {
  it('with a daemon serving the install, the daemon does the enable for the client: Pending before exit, the native line in commands.log, then the run', async () => {
    const layout = await withDaemon();
    // A run that waits for a dependency that never finishes stays Pending, so the status the
    // enable wrote is still the one read right after it exits.
    await writeSettings(layout, 'waiting', 3, { publicSettings: { source: { script: 'echo never' }, dependsOn: ['absent'] } });
    await enable(layout, 'waiting', 3);
    expect((await readStatus(layout, 'waiting', 3))?.instanceView.executionState).toBe('Pending');
    await writeSettings(layout, 'second', 1, { publicSettings: { source: { script: 'echo "second $AZURE_GUEST_AGENT_WIRE_PROTOCOL_ADDRESS"' } } });
    await enable(layout, 'second', 1);
    expect(await readStatus(layout, 'second', 1)).toBeDefined();
    const report = await waitForStatus(layout, 'second', 1, isTerminalReport, 20_000);
    expect(report.instanceView).toMatchObject({ executionState: 'Succeeded', output: 'second 168.63.129.16\n' });
    expect(await readEnableLines(layout, 'second', 1)).toEqual([expect.objectContaining({ level: 'info', daemon: 'running', client: 'native' })]);
    expect(await readLeftToNode(layout)).toEqual([]);
  });

  it('after install, with no daemon, the client starts it as node\u2019s enable would and hands it the enable: Pending before exit, one daemon, the run', async () => {
    const layout = await installed();
    await writeSettings(layout, 'first', 0, { publicSettings: { source: { script: 'echo first' }, dependsOn: ['absent'] } });
    await enable(layout, 'first', 0);
    expect((await readStatus(layout, 'first', 0))?.instanceView.executionState).toBe('Pending');
    expect(await readEnableLines(layout, 'first', 0)).toEqual([expect.objectContaining({ daemon: 'started', client: 'native' })]);
    const daemons = await findDaemons(layout);
    expect(daemons).toHaveLength(1);
    expect(await describeDaemon(daemons[0] as number)).toEqual({
      argv: [await readlink(`/proc/${daemons[0]}/exe`), ...daemonNodeFlags, join(layout.baseDir, 'dist', 'cli.js'), 'daemon', '--handler-environment', join(layout.baseDir, 'HandlerEnvironment.json')],
      cwd: layout.baseDir,
      sessionLeader: true,
      stdout: join(layout.logFolder, 'daemon.out'),
    });
    // NODE_EXTRA_CA_CERTS deferred: node does not read it before the daemon answers; scripts get it.
    const environ = await readEnviron(daemons[0] as number);
    expect([environ['NODE_EXTRA_CA_CERTS'], environ[deferredCaCertsVariable]]).toEqual([undefined, extraCa]);
    await writeSettings(layout, 'second', 0, { publicSettings: { source: { script: 'echo "second $NODE_EXTRA_CA_CERTS"' } } });
    await enable(layout, 'second', 0);
    const report = await waitForStatus(layout, 'second', 0, isTerminalReport, 20_000);
    expect(report.instanceView).toMatchObject({ executionState: 'Succeeded', output: `second ${extraCa}\n` });
    expect(await readEnableLines(layout, 'second', 0)).toEqual([expect.objectContaining({ daemon: 'running', client: 'native' })]);
  });

  it('with no daemon and no endpoint file, or other variables than the file\u2019s, node starts the daemon and does the enable', async () => {
    const layout = await installed();
    await rm(join(layout.baseDir, '.daemon-endpoint'));
    await writeSettings(layout, 'first', 0, { publicSettings: { source: { script: 'echo "first $NODE_EXTRA_CA_CERTS"' } } });
    await enable(layout, 'first', 0);
    const report = await waitForStatus(layout, 'first', 0, isTerminalReport, 20_000);
    expect(report.instanceView).toMatchObject({ executionState: 'Succeeded', output: `first ${extraCa}\n` });
    // Node's enable started this daemon (spawnDaemon) with NODE_EXTRA_CA_CERTS deferred too.
    const [daemon] = await findDaemons(layout);
    const environ = await readEnviron(daemon as number);
    expect([environ['NODE_EXTRA_CA_CERTS'], environ[deferredCaCertsVariable]]).toEqual([undefined, extraCa]);
    expect(await readEnableLines(layout, 'first', 0)).toEqual([expect.objectContaining(startedByNode)]);
    expect(await readEnableLines(layout, 'first', 0)).toEqual([expect.not.objectContaining({ client: 'native' })]);
    const other = await installed();
    expect(await stat(join(other.baseDir, '.daemon-endpoint'))).toBeDefined();
    const result = await runCommand(other, 'enable', { name: 'other', seq: 0, extra: { ...fast, RUNCOMMAND_HANDLER_SETTINGS_SETTLE_MS: '100' } });
    expect(result.exitCode, result.stderr).toBe(0);
    expect(await readEnableLines(other, 'other', 0)).toEqual([expect.objectContaining(startedByNode)]);
    expect(await readEnableLines(other, 'other', 0)).toEqual([expect.not.objectContaining({ client: 'native' })]);
  });

  it('with the token unreadable or the socket folder open to others, the client sends nothing and node does the enable', async () => {
    const layout = await withDaemon();
    const stateDir = stateDirOf(layout);
    await rename(join(stateDir, 'ipc-token'), join(stateDir, 'ipc-token.away'));
    await writeSettings(layout, 'notoken', 0, { publicSettings: { source: { script: 'echo notoken' } } });
    await enable(layout, 'notoken', 0);
    await rename(join(stateDir, 'ipc-token.away'), join(stateDir, 'ipc-token'));
    await chmod(stateDir, 0o755);
    await writeSettings(layout, 'opendir', 0, { publicSettings: { source: { script: 'echo opendir' } } });
    await enable(layout, 'opendir', 0);
    await chmod(stateDir, 0o700);
    for (const name of ['notoken', 'opendir']) {
      // Node's enable could not reach the daemon either: it wrote the status, and the daemon's
      // watcher runs the settings file.
      const report = await waitForStatus(layout, name, 0, isTerminalReport, 20_000);
      expect(report.instanceView).toMatchObject({ executionState: 'Succeeded', output: `${name}\n` });
      const lines = await readEnableLines(layout, name, 0);
      expect(lines).toHaveLength(1);
      expect(lines[0]).not.toHaveProperty('client');
    }
    // Nothing reached the daemon: it left nothing to node.
    expect(await readLeftToNode(layout)).toEqual([]);
  });

  it('a daemon of another install answers "not handled", and node does the enable for its own install', async () => {
    const first = await withDaemon();
    const second = await installed();
    // The second package root names the first install's daemon (as a copied or stale file would).
    await copyFile(join(first.baseDir, '.daemon-endpoint'), join(second.baseDir, '.daemon-endpoint'));
    await writeSettings(second, 'other', 0, { publicSettings: { source: { script: 'echo other' } } });
    await enable(second, 'other', 0);
    const report = await waitForStatus(second, 'other', 0, isTerminalReport, 20_000);
    expect(report.instanceView).toMatchObject({ executionState: 'Succeeded', output: 'other\n' });
    expect(await readEnableLines(second, 'other', 0)).toEqual([expect.objectContaining(startedByNode)]);
    await waitUntil(async () => (await readLeftToNode(first)).length > 0, 10_000, 'the first daemon logging the refusal');
    // The agent runs each version's commands in its own base dir: the cwd tells them apart first.
    expect((await readLeftToNode(first)).join('\n')).toContain('another working directory');
    expect(await readStatus(first, 'other', 0)).toBeUndefined();
    // Its own daemon now serves the second install's next enable natively.
    await writeSettings(second, 'other', 1, { publicSettings: { source: { script: 'echo again' } } });
    await enable(second, 'other', 1);
    expect(await readEnableLines(second, 'other', 1)).toEqual([expect.objectContaining({ client: 'native' })]);
    await waitForStatus(second, 'other', 1, isTerminalReport, 20_000);
  });

  it('an enable from this package root for another layout (RUNCOMMAND_HANDLER_ENVIRONMENT) is left to node, which serves that layout', async () => {
    const first = await withDaemon();
    const second = await installed();
    const result = await runCommand(first, 'enable', {
      name: 'elsewhere',
      seq: 0,
      extra: { ...fast, RUNCOMMAND_HANDLER_ENVIRONMENT: join(second.baseDir, 'HandlerEnvironment.json') },
    });
    expect(result.exitCode, result.stderr).toBe(0);
    expect(await readStatus(second, 'elsewhere', 0)).toBeDefined();
    expect(await readStatus(first, 'elsewhere', 0)).toBeUndefined();
    expect(await readEnableLines(second, 'elsewhere', 0)).toEqual([expect.objectContaining(startedByNode)]);
    await waitUntil(async () => (await readLeftToNode(first)).join('\n').includes('another install'), 10_000, 'the first daemon logging the refusal');
  });

  it('an invalid ConfigSequenceNumber gets node\u2019s error and exit code, with a daemon running', async () => {
    const layout = await withDaemon();
    const result = await runCommand(layout, 'enable', { name: 'bad', extra: { ...fast, ConfigSequenceNumber: '1x' } });
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toBe('enable: ConfigSequenceNumber is not a non-negative integer\n');
    await waitUntil(async () => (await readLeftToNode(layout)).join('\n').includes('ConfigSequenceNumber is not a non-negative integer'), 10_000, 'the daemon logging the refusal');
  });
});
