// Shared by the bench scripts: the per-step dispatch profile (`bench.mjs --profile`, issue 16) and
// CPU time of process trees, which a shared machine's load distorts far less than wall-clock time.
import { readdir, readFile } from 'node:fs/promises';

// The steps of the dispatch path: the bench's rename, the daemon's marks (RCH_DISPATCH_PROFILE, see
// src/util/dispatch-profile.ts), the launcher's and the wrapper's (rch-exec.c), the script's first
// instruction. Each step is measured from the mark before it in time (the order of the daemon's
// steps changes with the code), and the table lists them by when they happen.
export const dispatchSteps = {
  renamed: 'settings file renamed in (bench)',
  event: 'watcher event',
  consider: 'per-name queue → decision starts',
  recorded: 'exactly-once record written (fsync)',
  pruned: 'older settings files removed',
  runDir: 'run directory made',
  read: 'settings read + parsed',
  decrypted: 'protected settings decrypted (rch-crypto)',
  parsed: 'run command validated',
  journaled: 'journal: Pending (fsync)',
  execute: 'scheduler → execute',
  attempt: 'journal: launch attempt',
  prepared: 'script file written, launch built',
  received: 'launcher got the request',
  forked: 'launcher forked the wrapper',
  wrapper: 'wrapper running',
  reserved: 'exit record reserved',
  exec: 'script spawned (posix_spawn of bash)',
  first: "script's first instruction",
};

const median = (values) => (values.length === 0 ? undefined : [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]);

// Median ms per step (and of the whole path) over the runs of `profileText` (the daemon's JSON lines),
// given each run's rename and first-instruction times (epoch ms) by key `<name>.<seq>`.
export function summarizeDispatchProfile(profileText, benchTimes) {
  const deltas = new Map();
  const offsets = new Map();
  const totals = [];
  for (const line of profileText.split('\n')) {
    if (line.trim() === '') continue;
    const { key, marks } = JSON.parse(line);
    const times = benchTimes.get(key);
    if (!times) continue;
    const steps = Object.entries({ ...marks, renamed: times.renamed, first: times.first })
      .filter(([step, at]) => step in dispatchSteps && at <= times.first)
      .sort((a, b) => a[1] - b[1]);
    for (let i = 1; i < steps.length; i += 1) {
      const [step, at] = steps[i];
      if (!deltas.has(step)) deltas.set(step, []), offsets.set(step, []);
      deltas.get(step).push(at - steps[i - 1][1]);
      offsets.get(step).push(at - times.renamed);
    }
    totals.push(times.first - times.renamed);
  }
  const steps = [...deltas.keys()]
    .map((step) => ({ step, what: dispatchSteps[step], medianMs: median(deltas.get(step)), atMs: median(offsets.get(step)), runs: deltas.get(step).length }))
    .sort((a, b) => a.atMs - b.atMs);
  return { runs: totals.length, medianTotalMs: median(totals), steps };
}

// The summary as a table for the terminal.
export function formatDispatchProfile(profile) {
  const round = (value) => (value === undefined ? '—' : value.toFixed(2));
  const rows = profile.steps.map(({ step, what, medianMs, atMs }) => `  ${step.padEnd(10)} ${round(medianMs).padStart(7)} ms  (at ${round(atMs).padStart(6)})  ${what}`);
  const sum = profile.steps.reduce((total, { medianMs }) => total + (medianMs ?? 0), 0);
  return [`dispatch profile: median ms per step (from the step before it) over ${profile.runs} runs`, ...rows, `  ${'sum'.padEnd(10)} ${round(sum).padStart(7)} ms  (median of the whole path: ${round(profile.medianTotalMs)} ms)`].join('\n');
}

// proc(5) stat fields from field 3 (state) on: index i is field i + 3.
async function readStatFields(pid) {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  return stat === undefined ? undefined : stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

const ticksToMs = (ticks) => (ticks * 1000) / 100;

// CPU ms used so far by `pid` itself and by each of its direct children with the children they
// reaped (the daemon; its launcher with every wrapper and script it reaped; its rch-crypto helper),
// keyed by command name; `total` sums them.
export async function treeCpuMs(pid) {
  const own = await readStatFields(pid);
  const parts = { daemon: own === undefined ? 0 : ticksToMs(Number(own[11]) + Number(own[12]) + Number(own[13]) + Number(own[14])) };
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const fields = await readStatFields(entry);
    if (fields?.[1] !== String(pid)) continue;
    const comm = (await readFile(`/proc/${entry}/comm`, 'utf8').catch(() => '?')).trim();
    parts[comm] = (parts[comm] ?? 0) + ticksToMs(Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14]));
  }
  return { ...parts, total: Object.values(parts).reduce((sum, value) => sum + value, 0) };
}

// What `treeCpuMs` found between two readings, per run, as text ("daemon 3.1, rch-exec 4.2 ms/run").
export function describeCpuPerRun(before, after, runs) {
  const names = Object.keys(after).filter((name) => name !== 'total');
  const per = (name) => ((after[name] ?? 0) - (before[name] ?? 0)) / runs;
  return `CPU ms/run: ${names.map((name) => `${name} ${per(name).toFixed(2)}`).join(', ')}; total ${per('total').toFixed(2)}`;
}

// CPU ms used so far by this process's reaped children (the bench's own direct baseline).
export async function reapedChildrenCpuMs() {
  const fields = await readStatFields('self');
  return ticksToMs(Number(fields[13]) + Number(fields[14]));
}
