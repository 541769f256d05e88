// Fences launches so that a run never starts twice (hardening #5, run-command.md §8). A launch
// request can outlive the daemon that sent it (held in the long-lived launcher's pipe, or a wrapper
// spawned just before a kill -9), so a restarted daemon cannot tell "never launched" from "launch
// still on its way" by looking for process.json. Each launch therefore carries a nonce, journaled
// before the request leaves; the wrapper claims `rch-launch-<nonce>` (a file, O_CREAT|O_EXCL) before
// it starts the script, and recovery takes the same name first (a directory). Exactly one of them
// creates it: the wrapper (the launch runs or ran: follow it) or recovery (it never will: launch
// afresh, with a new nonce). A directory there is an earlier recovery's fence, so a daemon killed
// again between its fence and the next launch's journal still reads "never launched".
import { randomBytes } from 'node:crypto';
import { lstat, mkdir } from 'node:fs/promises';
import { readProcessIdentity, type ProcessIdentity } from './process-contract.js';
import { toLaunchClaimPath } from './run-directory.js';

// What recovery found of a journaled launch.
export type FencedLaunch =
  // No wrapper claimed it, and none ever can now: the script never started.
  | { kind: 'fenced' }
  // A wrapper claimed it and reported the script: follow it.
  | { kind: 'started'; identity: ProcessIdentity }
  // A wrapper claimed it but never reported the script (killed or stalled in between), or the
  // claim could not be taken: whether the script runs is unknown, so it is never started again.
  | { kind: 'unknown'; reason: string };

export interface FenceOptions {
  // How long a claimed launch has to write process.json (the wrapper does so right after the claim).
  readonly waitMs?: number;
  readonly pollMs?: number;
}

const defaultWaitMs = 10_000;

// A fresh launch nonce: 128 random bits in hex (the wrapper accepts only hex, so it is a safe name).
export function newLaunchNonce(): string {
  return randomBytes(16).toString('hex');
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
  const waitMs = options.waitMs ?? defaultWaitMs;
  const identity = await waitForIdentity(runDir, waitMs, options.pollMs ?? 25);
  if (identity !== undefined) return { kind: 'started', identity };
  return { kind: 'unknown', reason: `its wrapper claimed the launch but did not report the script process within ${waitMs / 1000} s` };
}

async function waitForIdentity(runDir: string, waitMs: number, pollMs: number): Promise<ProcessIdentity | undefined> {
  const deadline = performance.now() + waitMs;
  for (;;) {
    const identity = await readProcessIdentity(runDir);
    if (identity !== undefined || performance.now() >= deadline) return identity;
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
}
