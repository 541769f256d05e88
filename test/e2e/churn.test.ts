// Many run commands at once through the packaged handler: the concurrency limit holds, and 100 run
// commands with random cancels, timeouts, deletions and new sequence numbers all end terminal
// with no process left behind (targets.md, reliability).
import { execa } from 'execa';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  cleanupLayout, makeAgentLayout, removeRunCommand, runCommand, waitForStatus, writeSettings, type AgentLayout, isTerminalReport } from '../helpers/agent.js';
import { findProcesses } from '../helpers/daemon-harness.js';
import { makeGate } from '../helpers/gate.js';
import { waitUntil } from '../helpers/scan.js';

let layout: AgentLayout;
const terminal = isTerminalReport;

afterEach(async () => {
  await cleanupLayout(layout);
});

async function install(extra: Record<string, string>): Promise<void> {
  layout = await makeAgentLayout();
  expect((await runCommand(layout, 'install', { extra })).exitCode).toBe(0);
}

// A small deterministic generator, so a failure can be replayed.
function makeRandom(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    return state / 2 ** 31;
  };
}

describe('many run commands', () => {
  it('runs independent run commands in parallel up to the concurrency limit; the next one waits', async () => {
    const extra = { RUNCOMMAND_HANDLER_CONCURRENCY: '4', RUNCOMMAND_HANDLER_STATUS_INTERVAL_MS: '300' };
    await install(extra);
    const gate = await makeGate();
    const times = join(layout.root, 'times');
    const names = ['p0', 'p1', 'p2', 'p3', 'p4'];
    for (const [index, name] of names.entries()) {
      await writeSettings(layout, name, 0, { publicSettings: { source: { script: `echo "${name} start $(date +%s%N)" >> ${times}; ${gate.wait}; echo "${name} end $(date +%s%N)" >> ${times}` } } });
      await runCommand(layout, 'enable', { name, seq: 0, extra });
      // The daemon considers run commands of different names concurrently: which of two enabled
      // a moment apart takes a slot first is not enable's order. Each of the first four holds its
      // slot on the gate before the next is enabled, so the fifth is the one left to queue.
      if (index < 4) await waitForStatus(layout, name, 0, (r) => r.instanceView.executionState === 'Running');
    }
    const queued = await waitForStatus(layout, 'p4', 0, (r) => r.instanceView.executionMessage.startsWith('Queued'));
    expect(queued.instanceView.executionState).toBe('Pending');
    await gate.open();
    for (const name of names) await waitForStatus(layout, name, 0, terminal);
    const events = (await readFile(times, 'utf8')).trim().split('\n').map((line) => line.split(' '));
    const at = (name: string, kind: string) => Number(events.find(([n, k]) => n === name && k === kind)?.[2]) / 1e6;
    let overlap = 0;
    let peak = 0;
    for (const [, kind] of events.sort((a, b) => Number(a[2]) - Number(b[2]))) peak = Math.max(peak, (overlap += kind === 'start' ? 1 : -1));
    console.info(`parallel overlap: ${peak} of ${names.length} runs at once with a limit of 4`);
    expect(peak).toBe(4);
    const firstEnd = Math.min(...names.slice(0, 4).map((name) => at(name, 'end')));
    expect(at('p4', 'start')).toBeGreaterThanOrEqual(firstEnd);
  });

  // Budget: ≈ 45 s on 2 CPUs (≈ 230 handler commands); every verdict comes from what was done to
  // each run, never from how long a script happened to run: scripts wait on a gate that opens once
  // every action is done, and an action waits until the daemon has accepted the run it aims at.
  it('100 run commands with random cancels, timeouts, deletions and new sequence numbers all end terminal, with no orphan', async () => {
    const extra = { RUNCOMMAND_HANDLER_CONCURRENCY: '30', RUNCOMMAND_HANDLER_STATUS_INTERVAL_MS: '500', RUNCOMMAND_HANDLER_KILL_GRACE_MS: '500' };
    await install(extra);
    const gate = await makeGate();
    const marker = `rch-churn-${process.pid}-${Date.now()}`;
    const random = makeRandom(20261126);
    // action 0: none (Succeeded), 1: timeout (TimedOut), 2: cancel (Canceled), 3: delete (no status), 4: new seq (Canceled, then Succeeded).
    const plan = Array.from({ length: 100 }, (_, index) => ({ name: `churn${index}`, action: Math.floor(random() * 5) }));
    // Runs that wait on the gate keep their slot until it opens; the others must still get one.
    expect(plan.filter((p) => p.action === 0).length).toBeLessThan(Number(extra.RUNCOMMAND_HANDLER_CONCURRENCY));
    // Each process carries `<marker>:<name>:` in its command line, so a leftover names its run.
    const tag = (name: string): string => `${marker}:${name}:`;
    const gated = (name: string): string => `sh -c '${gate.wait}; : ${tag(name)}' & ${gate.wait} # ${tag(name)}\nwait\n`;
    // A timed-out script must still run at its deadline: it never waits on the gate.
    const endless = (name: string): string => `sh -c 'sleep 600; : ${tag(name)}' & sleep 600 # ${tag(name)}\nwait\n`;
    const cli = join(layout.baseDir, 'bin', 'runcommand-handler');
    const environment = join(layout.baseDir, 'HandlerEnvironment.json');
    const act = async ({ name, action }: (typeof plan)[number]): Promise<void> => {
      await waitUntil(() => isAccepted(name, 0), 30_000, `the daemon to accept ${name}`);
      if (action === 2) {
        const result = await execa(cli, ['cancel', name, '--handler-environment', environment], { reject: false });
        expect(result.stdout, result.stderr).toBe(`canceled ${name}`);
      }
      if (action === 3) await removeRunCommand(layout, name);
      if (action === 4) {
        await writeSettings(layout, name, 1, { publicSettings: { source: { script: `echo second # ${marker}` } } });
        await runCommand(layout, 'enable', { name, seq: 1, extra });
      }
    };
    for (const [index, { name, action }] of plan.entries()) {
      await writeSettings(layout, name, 0, { publicSettings: { source: { script: action === 1 ? endless(name) : gated(name) }, ...(action === 1 ? { timeoutInSeconds: 1 } : {}) } });
      await runCommand(layout, 'enable', { name, seq: 0, extra });
      const earlier = plan[index - 3];
      if (earlier) await act(earlier);
    }
    for (const item of plan.slice(-3)) await act(item);
    // Before the gate opens, every run that was timed out, canceled, deleted or superseded has
    // ended, and none of its processes is left (a gated leftover would not end by itself).
    for (const { name, action } of plan) if ([1, 2, 4].includes(action)) await waitForStatus(layout, name, 0, terminal, 60_000);
    const stopped = plan.filter((p) => p.action !== 0).map((p) => tag(p.name));
    const survivors = (await findProcessCommandLines(marker)).filter((line) => stopped.some((t) => line.includes(t)));
    expect(survivors).toEqual([]);
    await gate.open();
    const states = new Map<string, number>();
    for (const { name, action } of plan) {
      const seqs = action === 3 ? [] : action === 4 ? [0, 1] : [0];
      for (const seq of seqs) {
        const report = await waitForStatus(layout, name, seq, terminal, 60_000);
        states.set(report.instanceView.executionState, (states.get(report.instanceView.executionState) ?? 0) + 1);
      }
    }
    console.info(`churn: ${plan.length} run commands, final states ${JSON.stringify(Object.fromEntries(states))}`);
    const deleted = new Set(plan.filter((p) => p.action === 3).map((p) => p.name));
    const leftovers = (await readdir(layout.statusFolder)).filter((file) => deleted.has(file.split('.')[0] ?? ''));
    expect(leftovers).toEqual([]);
    const count = (...actions: number[]): number => plan.filter((p) => actions.includes(p.action)).length;
    expect(Object.fromEntries(states)).toEqual({ Succeeded: count(0, 4), TimedOut: count(1), Canceled: count(2, 4) });
    // A run is terminal only once its wrapper has swept its tree.
    const orphans = await findProcesses(marker);
    console.info(`churn: ${orphans.length} orphan processes`);
    expect(orphans).toEqual([]);
  }, 300_000);
});

// True once the daemon has accepted (name, seq): its exactly-once record names a run whose journal exists.
async function isAccepted(name: string, seq: number): Promise<boolean> {
  const state = join(layout.libDir, 'runcommand-handler');
  const record = await readFile(join(state, 'records', `${name}.json`), 'utf8').then((text) => JSON.parse(text) as { seq: number; runId: string }, () => undefined);
  if (record?.seq !== seq) return false;
  return readFile(join(state, 'runs', record.runId, 'journal.json')).then(() => true, () => false);
}

// The command lines of live processes that contain `text`.
async function findProcessCommandLines(text: string): Promise<string[]> {
  const lines: string[] = [];
  for (const pid of await findProcesses(text)) {
    const line = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (line.includes(text)) lines.push(line.replaceAll('\0', ' '));
  }
  return lines;
}
