// @module-tag faults
// Hardening #5: a run never starts twice. The long-lived launcher (`rch-exec --launcher`) can hold
// a launch request in its pipe while the daemon that sent it is killed; the restarted daemon must
// not launch the run a second time when that launcher later gets to the request (run-command.md §8).
import { execFileSync } from 'node:child_process';
import { readFile, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanupLayout, isTerminalReport, makeAgentLayout, runCommand, waitForStatus, writeSettings, type AgentLayout } from '../helpers/agent.js';
import { findProcesses } from '../helpers/daemon-harness.js';
import { waitUntil } from '../helpers/scan.js';

let layout: AgentLayout;
const extra = { RUNCOMMAND_HANDLER_STATUS_INTERVAL_MS: '300', RUNCOMMAND_HANDLER_KILL_GRACE_MS: '1000' };
const stopped: number[] = [];

afterEach(async () => {
  for (const pid of stopped.splice(0)) signal(pid, 'SIGCONT');
  await cleanupLayout(layout);
});

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch {
    // already gone
  }
}

async function submit(name: string, script: string): Promise<void> {
  await writeSettings(layout, name, 0, { publicSettings: { source: { script } } });
  expect((await runCommand(layout, 'enable', { name, seq: 0, extra })).exitCode).toBe(0);
}

async function runDirOf(name: string): Promise<string> {
  const state = join(layout.libDir, 'runcommand-handler');
  const record = JSON.parse(await readFile(join(state, 'records', `${name}.json`), 'utf8')) as { runId: string };
  return join(state, 'runs', record.runId);
}

// Bytes queued for process `pid` on its stdin (node's stdio pipes are socket pairs): `ss` reports the
// receive queue of the socket /proc/<pid>/fd/0 points to. How the test knows the request sits in
// the stopped launcher, unread.
async function queuedOnStdin(pid: number): Promise<number> {
  const inode = /^socket:\[(\d+)\]$/.exec(await readlink(`/proc/${pid}/fd/0`).catch(() => ''))?.[1];
  if (inode === undefined) return 0;
  for (const line of execFileSync('ss', ['-xn'], { encoding: 'utf8' }).split('\n')) {
    const fields = line.trim().split(/\s+/);
    if (fields[0] === 'u_str' && fields[5] === inode) return Number(fields[2]);
  }
  return 0;
}

async function isAlive(pid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  return stat !== '' && state !== 'Z' && state !== 'X';
}

describe('a launch held up across a daemon kill', () => {
  // Budget: ≈ 10 s on 2 CPUs (install, two enables, a restart).
  it('runs once: the restarted daemon fences the request the stalled launcher still holds, which never starts the script', async () => {
    layout = await makeAgentLayout();
    expect((await runCommand(layout, 'install', { extra })).exitCode).toBe(0);
    await submit('warm', 'echo warm');
    await waitForStatus(layout, 'warm', 0, isTerminalReport);
    const [launcher] = await findProcesses(`${layout.baseDir}/dist/native/rch-exec\0--launcher`);
    expect(launcher).toBeDefined();
    process.kill(launcher!, 'SIGSTOP');
    stopped.push(launcher!);

    const marker = join(layout.root, 'once.count');
    await submit('once', `echo run >> ${marker}; echo out`);
    await waitUntil(async () => (await queuedOnStdin(launcher!)) > 0, 30_000, 'the launch request to wait in the stopped launcher');
    for (const pid of await findProcesses(`${layout.baseDir}/dist/cli.js`)) process.kill(pid, 'SIGKILL');
    expect((await runCommand(layout, 'enable', { name: 'once', seq: 0, extra })).exitCode).toBe(0);
    const report = await waitForStatus(layout, 'once', 0, isTerminalReport);
    expect(report.instanceView).toMatchObject({ executionState: 'Succeeded', exitCode: 0, output: 'out\n', error: '' });

    // The old launcher now gets to the request it held; then it reads EOF and exits.
    process.kill(launcher!, 'SIGCONT');
    stopped.splice(0);
    const runDir = await runDirOf('once');
    await waitUntil(async () => !(await isAlive(launcher!)) && (await findProcesses(runDir)).length === 0, 30_000, 'the old launcher and every wrapper of the run to end');
    expect(await readFile(marker, 'utf8')).toBe('run\n');
    expect(await readFile(join(runDir, 'stdout'), 'utf8')).toBe('out\n');
    expect(await readFile(join(runDir, 'stderr'), 'utf8')).toBe('');
    const after = await waitForStatus(layout, 'once', 0, isTerminalReport);
    expect(after.instanceView).toMatchObject({ executionState: 'Succeeded', output: 'out\n' });
    expect((await readdir(runDir)).filter((file) => file.startsWith('rch-launch-'))).toHaveLength(2);
  }, 120_000);
});
