// Fences launches so that a run never starts twice (hardening #5, run-command.md §8). A launch
// request can outlive the daemon that sent it (held in the long-lived launcher's pipe, or a wrapper
// spawned just before a kill -9), so a restarted daemon cannot tell "never launched" from "launch
// still on its way" by looking for process.json. Each launch therefore carries a nonce, journaled
// before the request leaves; the wrapper claims `rch-launch-<nonce>` (a file, O_CREAT|O_EXCL) before
// it starts the script, and recovery takes the same name first (a directory). Exactly one of them
// creates it: the wrapper (the launch runs or ran: follow it) or recovery (it never will: launch
// afresh, with a new nonce). A directory there is an earlier recovery's fence, so a daemon killed
// again between its fence and the next launch's journal still reads "never launched". The wrapper's
// claim names it (pid and start time), so a claim whose wrapper is starved or stopped before it
// reports the script is followed as long as that wrapper lives, never given up as unknown while the
// script may yet start; only a wrapper gone without a report leaves the outcome unknown.
import { lstat, mkdir, readFile } from 'node:fs/promises';
import { randomBytesOf } from '../util/random.js';
import * as z from '../util/schema.js';
import { processIdentitySchema, readProcessIdentity, type ProcessIdentity } from './process-contract.js';
import { toLaunchClaimPath } from './run-directory.js';

// What recovery found of a journaled launch.
export type FencedLaunch =
  // No wrapper claimed it, and none ever can now: the script never started.
  | { kind: 'fenced' }
  // A wrapper claimed it and reported the script: follow it.
  | { kind: 'started'; identity: ProcessIdentity }
  // A wrapper claimed it but never reported the script (it ended in between, or could not be told
  // apart and did not report in time), or the claim could not be taken: whether the script runs is
  // unknown, so it is never started again.
  | { kind: 'unknown'; reason: string }
  // A wrapper claimed it, has not reported the script yet and still lives (starved, stopped):
  // `reported` settles, started or unknown, once it reports or ends.
  | { kind: 'claimed'; wrapperPid: number; reported: Promise<FencedLaunch> };

export interface FenceOptions {
  // How long a claim is waited for inline: a holder that still lives then is followed in the
  // background (`claimed`); a claim whose holder cannot be checked (no `isAlive`, or a claim without
  // its holder: the Windows wrapper's) is unknown then. The wrapper reports right after its claim.
  readonly waitMs?: number;
  readonly pollMs?: number;
  // True while that very process (pid, start time: proof against pid reuse) runs.
  readonly isAlive?: (pid: number, startTime: string) => boolean;
}

const defaultWaitMs = 10_000;
// How often a claim's live holder is checked once it is followed in the background.
const backgroundPollMs = 250;

// A fresh launch nonce: 128 random bits in hex (the wrapper accepts only hex, so it is a safe name).
export function newLaunchNonce(): string {
  return randomBytesOf(16).toString('hex');
}

// Takes the claim of the launch journaled with `nonce` before any wrapper does, or finds who has it.
export async function fenceLaunch(runDir: string, nonce: string, options: FenceOptions = {}): Promise<FencedLaunch> {
  const path = toLaunchClaimPath(runDir, nonce);
  try {
    await mkdir(path, { mode: 0o700 });
    return { kind: 'fenced' };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'EEXIST') return { kind: 'unknown', reason: `its launch could not be fenced (${code ?? String(error)})` };
  }
  if ((await lstat(path)).isDirectory()) return { kind: 'fenced' };
  return followClaim(runDir, nonce, options);
}

// The wrapper holding a launch's claim, as it wrote it there (rch-exec.c, claim_launch): its pid and
// start time, in process.json's format. Undefined for a claim without them (the Windows wrapper's).
const claimHolderSchema = z.pick(processIdentitySchema, { wrapperPid: true, wrapperStartTime: true });
export async function readClaimHolder(runDir: string, nonce: string): Promise<{ wrapperPid: number; wrapperStartTime: string } | undefined> {
  const text = await readFile(toLaunchClaimPath(runDir, nonce), 'utf8').catch(() => '');
  try {
    const parsed = claimHolderSchema.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

// Follows the wrapper holding a launch's claim (a file) until it reports the script: as long as it
// lives when it can be checked, else for the bounded wait.
export async function followClaim(runDir: string, nonce: string, options: FenceOptions = {}): Promise<FencedLaunch> {
  const waitMs = options.waitMs ?? defaultWaitMs;
  const deadline = performance.now() + waitMs;
  const holder = await readClaimHolder(runDir, nonce);
  for (;;) {
    // Liveness before the read: a wrapper gone before it without process.json never wrote one.
    const alive = holder === undefined || options.isAlive === undefined ? undefined : options.isAlive(holder.wrapperPid, holder.wrapperStartTime);
    const identity = await readProcessIdentity(runDir);
    if (identity !== undefined) return { kind: 'started', identity };
    if (alive === false) return { kind: 'unknown', reason: `its wrapper (pid ${holder?.wrapperPid}) claimed the launch but ended before it reported the script process` };
    if (performance.now() >= deadline) {
      if (alive === undefined) return { kind: 'unknown', reason: `its wrapper claimed the launch but did not report the script process within ${waitMs / 1000} s` };
      const reported = followClaim(runDir, nonce, { ...options, waitMs: Infinity, pollMs: Math.max(options.pollMs ?? 0, backgroundPollMs) });
      return { kind: 'claimed', wrapperPid: holder?.wrapperPid ?? 0, reported };
    }
    await new Promise((resolve) => setTimeout(resolve, options.pollMs ?? 25));
  }
}

// The script's identity once the wrapper holding the launch's claim reports it, however long that
// wrapper lives first; undefined when the claim names no wrapper or it ended without reporting.
// (The daemon's direct spawn, when a launcher died after forking this launch's wrapper: process.linux.ts.)
export async function waitForClaimHolder(runDir: string, nonce: string, isAlive: (pid: number, startTime: string) => boolean): Promise<ProcessIdentity | undefined> {
  if ((await readClaimHolder(runDir, nonce)) === undefined) return undefined;
  let found = await followClaim(runDir, nonce, { isAlive });
  if (found.kind === 'claimed') found = await found.reported;
  return found.kind === 'started' ? found.identity : undefined;
}
