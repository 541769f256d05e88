// `enable` as its own entry: the agent runs it for every run command and on every goal state, so
// the package bundles this module apart, without code splitting (scripts/package.mjs), and the
// command loads one file holding only what it needs.
import { runCommandRow, type CommandRow } from './command-runner.js';
import { runEnable } from './enable.js';

export const enableRow: CommandRow = { run: runEnable, neverFails: false };

// Runs `enable`; returns its exit code.
export function runEnableCommand(explicit: string | undefined, env: NodeJS.ProcessEnv): Promise<number> {
  return runCommandRow('enable', enableRow, explicit, env);
}
