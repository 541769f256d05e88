// RunAs through the packaged handler (run-command.md §4; issue 5): the script runs as a real local
// user with its uid, groups and environment from the user database, a timeout kills its whole tree,
// unknown and expired users fail clearly, and one RunAs run cannot read another run's files.
import { chmod, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  cleanupLayout, killProcessesUnder, makeAgentLayout, runCommand, waitForStatus, writeSettings, type AgentLayout, type SettingsOptions, type StatusReport, isTerminalReport } from '../helpers/agent.js';
import { findProcesses } from '../helpers/daemon-harness.js';
import { listModes, readProcessUid, waitUntil } from '../helpers/scan.js';
import { makeTestGroup, makeTestUser, removeTestUsers, type TestUser } from '../helpers/users.js';

let layout: AgentLayout;
let workTop = '';
let extra: Record<string, string> = {};
let alice: TestUser | undefined;
let bob: TestUser | undefined;
let expired: TestUser | undefined;
let group = '';
const terminal = isTerminalReport;
const workRoot = (): string => join(workTop, 'work');
const stateDir = (): string => join(layout.libDir, 'runcommand-handler');

beforeAll(async () => {
  workTop = await mkdtemp(join(tmpdir(), 'rch-work-'));
  await chmod(workTop, 0o711);
  group = await makeTestGroup('sup');
  alice = await makeTestUser('al', { groups: [group], home: join(workTop, 'homes', 'alice') });
  bob = await makeTestUser('bo');
  expired = await makeTestUser('xp', { expireDate: '2002-03-04' });
  extra = {
    RUNCOMMAND_HANDLER_WORK_DIR: workRoot(),
    RUNCOMMAND_HANDLER_KILL_GRACE_MS: '1000',
    RUNCOMMAND_HANDLER_STATUS_INTERVAL_MS: '300',
    RUNCOMMAND_HANDLER_SETTINGS_SETTLE_MS: '300',
  };
  layout = await makeAgentLayout();
  expect((await runCommand(layout, 'install', { extra })).exitCode).toBe(0);
});

afterAll(async () => {
  await cleanupLayout(layout);
  await killProcessesUnder(workTop);
  await removeTestUsers([alice, bob, expired], [group]);
  await rm(workTop, { recursive: true, force: true });
});

async function submit(name: string, settings: SettingsOptions): Promise<void> {
  await writeSettings(layout, name, 0, settings);
  expect((await runCommand(layout, 'enable', { name, seq: 0, extra })).exitCode).toBe(0);
}

async function runToEnd(name: string, settings: SettingsOptions, timeoutMs?: number): Promise<StatusReport> {
  await submit(name, settings);
  return waitForStatus(layout, name, 0, terminal, timeoutMs);
}

// The working directory of the run whose id starts with `name.`, once it exists.
async function findWorkDir(name: string): Promise<string> {
  let found = '';
  await waitUntil(async () => {
    found = (await readdir(workRoot()).catch(() => [] as string[])).find((entry) => entry.startsWith(`${name}.0.`)) ?? '';
    return found !== '';
  }, 15_000, `the working directory of ${name}`);
  return join(workRoot(), found);
}

describe('RunAs', () => {
  it('runs the script as the user: its uid, its supplementary group, HOME from the user database, named parameters, its own 0700 cwd', async () => {
    const script = [
      'id -un', 'id -Gn', 'echo "HOME=$HOME"', 'echo "USER=$USER LOGNAME=$LOGNAME SHELL=$SHELL"', 'echo "PATH=$PATH"',
      'echo "GREETING=$GREETING ARG=$1"', 'stat -c "%U %a" . "$0"', 'echo "AGENT=$AZURE_GUEST_AGENT_EXTENSION_PATH NAME=$ConfigExtensionName SEQ=$ConfigSequenceNumber"',
    ].join('\n');
    const report = await runToEnd('whoami', {
      publicSettings: { source: { script }, runAsUser: alice!.name, parameters: [{ name: 'GREETING', value: 'hello $(id)' }, { value: 'first arg' }] },
    });
    expect(report.instanceView).toMatchObject({ executionState: 'Succeeded', exitCode: 0, error: '' });
    const lines = report.instanceView.output.trim().split('\n');
    expect(lines[0]).toBe(alice!.name);
    expect(lines[1]?.split(' ')).toEqual(expect.arrayContaining([alice!.name, group]));
    expect(lines[2]).toBe(`HOME=${join(workTop, 'homes', 'alice')}`);
    expect(lines[3]).toBe(`USER=${alice!.name} LOGNAME=${alice!.name} SHELL=/bin/bash`);
    expect(lines[4]).toMatch(/^PATH=\/usr\/local\/bin:\/usr\/bin:\/bin/);
    expect(lines[5]).toBe('GREETING=hello $(id) ARG=first arg');
    expect(lines.slice(6, 8)).toEqual([`${alice!.name} 700`, `${alice!.name} 700`]);
    // Every script, RunAs ones too, sees its own name and sequence number and the agent's variables
    // (run-command.md §4, Compat); nothing else of the daemon's environment.
    expect(lines[8]).toBe(`AGENT=${layout.baseDir} NAME=whoami SEQ=0`);
    // The working directory goes when the run ends; the work root stays root's, 0711.
    await waitUntil(async () => (await readdir(workRoot())).length === 0, 10_000, 'the working directory to be removed');
    expect((await listModes(workRoot()))[0]).toMatchObject({ mode: 0o711, uid: 0 });
  });

  it('cannot read a root-only file', async () => {
    const secretFile = join(workTop, 'root-only.txt');
    await writeFile(secretFile, 'root eyes only', { mode: 0o600 });
    const report = await runToEnd('denied', { publicSettings: { source: { script: 'cat "$1"' }, runAsUser: alice!.name, parameters: [{ value: secretFile }] } });
    expect(report.instanceView).toMatchObject({ executionState: 'Failed', exitCode: 1, output: '' });
    expect(report.instanceView.error).toContain('Permission denied');
  });

  it('kills the whole RunAs process tree (setsid escapee included) on timeout and reports TimedOut', async () => {
    const marker = `rch-runas-timeout-${process.pid}-${Date.now()}`;
    await submit('timeout', {
      publicSettings: {
        source: { script: `sh -c "sleep 300; : ${marker}" &\nsetsid sh -c "sleep 300; : ${marker}" &\nsleep 300\n` },
        runAsUser: alice!.name,
        // Long enough for both processes to be seen before it fires, even at half speed.
        timeoutInSeconds: 5,
      },
    });
    await waitUntil(async () => (await findProcesses(marker)).length === 2, 10_000, 'both marked processes');
    for (const pid of await findProcesses(marker)) expect(await readProcessUid(pid)).toBe(alice!.uid);
    const report = await waitForStatus(layout, 'timeout', 0, terminal);
    expect(report.instanceView).toMatchObject({ executionState: 'TimedOut', exitCode: -1 });
    expect(await findProcesses(marker)).toEqual([]);
  });

  it('fails an unknown user with -102 and "Failed to lookup RunAs user"', async () => {
    const report = await runToEnd('unknown', { publicSettings: { source: { script: 'echo should not run' }, runAsUser: 'rch-no-such-user' } });
    // run-command.md §6 (12-01): a run that ended is top-level success, however it failed (Compat).
    expect(report.topStatus.status.status).toBe('success');
    expect(report.instanceView).toMatchObject({ executionState: 'Failed', exitCode: -102, output: '' });
    expect(report.instanceView.startTime).not.toBe('');
    expect(report.instanceView.executionMessage).toContain("Failed to lookup RunAs user 'rch-no-such-user'");
  });

  it('fails an expired account with -102 and a clear message', async () => {
    const report = await runToEnd('expired', { publicSettings: { source: { script: 'echo should not run' }, runAsUser: expired!.name } });
    expect(report.instanceView).toMatchObject({ executionState: 'Failed', exitCode: -102, output: '' });
    expect(report.instanceView.executionMessage).toContain(`RunAs user '${expired!.name}' cannot be used: the account expired on 2002-03-04`);
  });
});

describe('isolation', () => {
  it("a RunAs user can neither list nor read another run's working directory, script, state or output", async () => {
    // With the layout root traversable, the state dir's own mode is what keeps a user out.
    await chmod(layout.root, 0o711);
    await submit('iso-a', {
      publicSettings: { source: { script: 'echo private-a > mine.txt\necho output-a\nwhile [ ! -e release ]; do sleep 0.1; done\ncat mine.txt\n' }, runAsUser: alice!.name },
    });
    const otherWork = await findWorkDir('iso-a');
    await waitUntil(async () => (await readdir(otherWork).catch(() => [] as string[])).includes('mine.txt'), 10_000, 'mine.txt');
    const runsDir = join(stateDir(), 'runs');
    const otherState = join(runsDir, (await readdir(runsDir)).find((entry) => entry.startsWith('iso-a.0.')) ?? 'missing');
    const probes = [
      `ls "${workRoot()}"`, `ls "${otherWork}"`, `cat "${otherWork}/mine.txt"`, `cat "${otherWork}/script.sh"`, `touch "${otherWork}/planted"`,
      `ls "${stateDir()}"`, `ls "${runsDir}"`, `ls "${otherState}"`, `cat "${otherState}/stdout"`, `cat "${otherState}/journal.json"`,
      `echo '{"exitCode":0}' > "${otherState}/exit-status.json"`,
    ];
    // Every target exists (root sees it), so a DENIED below is a permission refusal, not a wrong path.
    for (const path of [workRoot(), otherWork, join(otherWork, 'mine.txt'), join(otherWork, 'script.sh'), runsDir, join(otherState, 'stdout'), join(otherState, 'journal.json')]) {
      await expect(stat(path), path).resolves.toBeDefined();
    }
    const script = `for probe in ${probes.map((probe) => `'${probe.replaceAll("'", "'\\''")}'`).join(' ')}; do\n  if sh -c "$probe" >/dev/null 2>&1; then echo "ALLOWED $probe"; else echo "DENIED"; fi\ndone\n`;
    const b = await runToEnd('iso-b', { publicSettings: { source: { script }, runAsUser: bob!.name } });
    expect(b.instanceView.output.trim().split('\n')).toEqual(probes.map(() => 'DENIED'));
    await writeFile(join(otherWork, 'release'), '');
    const a = await waitForStatus(layout, 'iso-a', 0, terminal);
    expect(a.instanceView).toMatchObject({ executionState: 'Succeeded', output: 'output-a\nprivate-a\n' });
    await chmod(layout.root, 0o700);
  });

  it("keeps the handler's state root-only and nothing it wrote writable by others", async () => {
    for (const entry of await listModes(stateDir())) {
      expect(entry.uid, entry.path).toBe(0);
      if (entry.isDirectory) expect(entry.mode, entry.path).toBe(0o700);
      else expect(entry.mode & 0o077, entry.path).toBe(0);
    }
    for (const root of [layout.statusFolder, layout.logFolder, layout.configFolder]) {
      for (const entry of await listModes(root)) expect(entry.mode & 0o002, entry.path).toBe(0);
    }
    const log = await readFile(join(layout.logFolder, 'handler.log'), 'utf8');
    expect(log).toContain('Failed to lookup RunAs user');
  });

  it('removes the working directory even when the script locked directories in it (chmod 000)', async () => {
    const report = await runToEnd('locked', {
      publicSettings: { source: { script: 'mkdir -p a/b/c && echo x > a/b/c/f && mkdir e && chmod 000 a/b/c a/b a e && chmod 500 .' }, runAsUser: alice!.name },
    });
    expect(report.instanceView).toMatchObject({ executionState: 'Succeeded', exitCode: 0 });
    await waitUntil(async () => !(await readdir(workRoot())).some((entry) => entry.startsWith('locked.0.')), 10_000, 'the locked working directory to be removed');
    const log = await readFile(join(layout.logFolder, 'handler.log'), 'utf8');
    expect(log).not.toContain('could not remove the RunAs working directory');
  });

  it('removes the (empty) work root on uninstall', async () => {
    expect((await runCommand(layout, 'uninstall', { extra })).exitCode).toBe(0);
    await expect(stat(workRoot())).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
