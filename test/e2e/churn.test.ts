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
    const times = join(layout.root, 'times');
    const names = ['p0', 'p1', 'p2', 'p3', 'p4'];
    for (const name of names) {
      await writeSettings(layout, name, 0, { publicSettings: { source: { script: `echo "${name} start $(date +%s%N)" >> ${times}; sleep 2; echo "${name} end $(date +%s%N)" >> ${times}` } } });
      await runCommand(layout, 'enable', { name, seq: 0, extra });
    }
    for (const name of names) await waitForStatus(layout, name, 0, terminal);
    const events = (await readFile(times, 'utf8')).trim().split('\n').map((line) => line.split(' '));
    const at = (name: string, kind: string) => Number(events.find(([n, k]) => n === name && k === kind)?.[2]) / 1e6;
    let overlap = 0;
    let peak = 0;
    for (const [, kind] of events.sort((a, b) => Number(a[2]) - Number(b[2]))) peak = Math.max(peak, (overlap += kind === 'start' ? 1 : -1));
    console.info(`parallel overlap: ${peak} of ${names.length} runs at once with a limit of 4`);
    expect(peak).toBe(4);
    const firstEnd = Math.min(...names.slice(0, 4).map((name) => at(name, 'end')));
    expect(at('p4', 'start')).toBeGreaterThanOrEqual(firstEnd - 5);
  });

  it('100 run commands with random cancels, timeouts, deletions and new sequence numbers all end terminal, with no orphan', async () => {
    const extra = { RUNCOMMAND_HANDLER_STATUS_INTERVAL_MS: '500', RUNCOMMAND_HANDLER_KILL_GRACE_MS: '500' };
    await install(extra);
    const marker = `rch-churn-${process.pid}-${Date.now()}`;
    const random = makeRandom(20261126);
    const script = (seconds: number) => `sh -c 'sleep ${seconds}; : ${marker}' & sleep ${seconds} # ${marker}\nwait\n`;
    const plan = Array.from({ length: 100 }, (_, index) => ({ name: `churn${index}`, action: Math.floor(random() * 5), sleep: 2 + Math.floor(random() * 3) }));
    const cli = join(layout.baseDir, 'bin', 'runcommand-handler');
    const environment = join(layout.baseDir, 'HandlerEnvironment.json');
    const act = async ({ name, action }: (typeof plan)[number]): Promise<void> => {
      if (action === 2) await execa(cli, ['cancel', name, '--handler-environment', environment], { reject: false });
      if (action === 3) await removeRunCommand(layout, name);
      if (action === 4) {
        await writeSettings(layout, name, 1, { publicSettings: { source: { script: script(1) } } });
        await runCommand(layout, 'enable', { name, seq: 1, extra });
      }
    };
    // Each action hits a run started a few enables earlier, while its script still runs.
    for (const [index, { name, action, sleep }] of plan.entries()) {
      await writeSettings(layout, name, 0, { publicSettings: { source: { script: script(sleep) }, ...(action === 1 ? { timeoutInSeconds: 1 } : {}) } });
      await runCommand(layout, 'enable', { name, seq: 0, extra });
      const earlier = plan[index - 3];
      if (earlier) await act(earlier);
    }
    for (const item of plan.slice(-3)) await act(item);
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
    expect(states.get('TimedOut')).toBe(plan.filter((p) => p.action === 1).length);
    expect(states.get('Canceled')).toBe(plan.filter((p) => p.action === 2 || p.action === 4).length);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const orphans = await findProcesses(marker);
    console.info(`churn: ${orphans.length} orphan processes`);
    expect(orphans).toEqual([]);
  });
});
