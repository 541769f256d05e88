// Shared steps of the blob streaming tests that drive the packaged handler: install, submit a run
// command, find its run directory, and search every file under a root for secrets.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect } from 'vitest';
import { makeAgentLayout, runCommand, waitForStatus, writeSettings, type AgentLayout, type StatusReport } from './agent.js';

export const terminalStates = ['Succeeded', 'Failed', 'TimedOut', 'Canceled'];

// Installs the packaged handler into a fresh agent layout.
export async function installHandler(extra: Record<string, string>): Promise<AgentLayout> {
  const layout = await makeAgentLayout();
  expect((await runCommand(layout, 'install', { extra })).exitCode).toBe(0);
  return layout;
}

// Writes the settings and runs `enable` as the agent does.
export async function submitRunCommand(layout: AgentLayout, name: string, settings: { publicSettings: object; protectedSettings?: object }, extra: Record<string, string>): Promise<void> {
  await writeSettings(layout, name, 0, settings);
  expect((await runCommand(layout, 'enable', { name, seq: 0, extra })).exitCode).toBe(0);
}

// Waits for a terminal status of `<name>.0`.
export function waitForTerminal(layout: AgentLayout, name: string, timeoutMs = 60_000): Promise<StatusReport> {
  return waitForStatus(layout, name, 0, (report) => terminalStates.includes(report.instanceView.executionState), timeoutMs);
}

// The run directory of the current run of `name` (where `stdout`, `stderr` and the journal live).
export async function toRunDir(layout: AgentLayout, name: string): Promise<string> {
  const state = join(layout.libDir, 'runcommand-handler');
  const record = JSON.parse(await readFile(join(state, 'records', `${name}.json`), 'utf8')) as { runId: string };
  return join(state, 'runs', record.runId);
}

// Files the handler wrote under `root` that contain any needle: its runtime (no run data) and the
// agent's own settings files (a public SAS URL is in them by design) are left out.
export async function filesContaining(root: string, needles: readonly string[]): Promise<string[]> {
  const hits: string[] = [];
  for (const entry of await readdir(root, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    if (path.includes('/node_modules/') || path.endsWith('/bin/node') || path.endsWith('.settings')) continue;
    const bytes = await readFile(path).catch(() => Buffer.alloc(0));
    const found = needles.filter((needle) => needle.length > 0 && bytes.includes(needle));
    if (found.length > 0) hits.push(`${path}: ${found.map((needle) => needle.slice(0, 12)).join(', ')}`);
  }
  return hits;
}
