// Per-step timestamps of the dispatch path (settings file seen → script started), for the bench's
// `--profile` (issue 16: where do the milliseconds above the floor go). On only when the daemon's
// environment has RCH_DISPATCH_PROFILE=<file>: it then appends one JSON line per launched run to
// that file. Off — always, outside the bench — every call is one test of a constant.
import { appendFileSync } from 'node:fs';

const target = process.env['RCH_DISPATCH_PROFILE'];
const enabled = target !== undefined && target !== '';
const runs = new Map<string, Record<string, number>>();

// True while profiling (callers skip building keys they would only mark with).
export const profilingDispatch = enabled;

// Epoch milliseconds with sub-millisecond resolution (comparable with a script's $EPOCHREALTIME).
// The global `performance` (node:perf_hooks) is touched only when profiling: it loads modules of
// its own, and this module is loaded before the daemon can answer the `enable` that started it.
function toEpochMs(): number {
  return globalThis.performance.timeOrigin + globalThis.performance.now();
}

// Records that run `key` (`<name>.<seq>`, or `wrapper:<pid>` before the run is known) reached `step`
// now, or at `atMs` (a time another process measured); the first time a step is reached counts.
export function markStep(key: string, step: string, atMs?: number): void {
  if (!enabled) return;
  let marks = runs.get(key);
  if (marks === undefined) runs.set(key, (marks = {}));
  marks[step] ??= atMs ?? toEpochMs();
}

// Moves the marks recorded under `from` (the wrapper's pid) to run `key`.
export function mergeSteps(key: string, from: string): void {
  if (!enabled) return;
  const marks = runs.get(from);
  runs.delete(from);
  for (const [step, atMs] of Object.entries(marks ?? {})) markStep(key, step, atMs);
}

// Appends run `key`'s marks to the profile file and forgets them.
export function flushSteps(key: string): void {
  if (!enabled || target === undefined) return;
  const marks = runs.get(key);
  runs.delete(key);
  if (marks !== undefined) appendFileSync(target, `${JSON.stringify({ key, marks })}\n`);
}
