// The layout of a run's own directory: the one place its file names are spelled. The run store, the
// runner, the status and blob code and the operator's CLI take them from here, and the native
// wrappers from the C header scripts/build-native.mjs generates from this file (runFiles only).
import { join } from 'node:path';

export const runFiles = {
  // The script's output: the source of truth for the status tails, the blobs and `logs`.
  stdout: 'stdout',
  stderr: 'stderr',
  // The run's crash-safe journal (the run store writes it).
  journal: 'journal.json',
  // Written by the wrapper once the script runs: its process identity.
  process: 'process.json',
  // Written by the wrapper once the script and every descendant are gone: how it ended.
  exitStatus: 'exit-status.json',
  // Windows: the daemon asks the wrapper to end the run's tree by creating it.
  terminateRequest: 'terminate-request',
  // Prefix of a launch's claim, `rch-launch-<nonce>` (launch-fence.ts): the wrapper creates it (a
  // file, O_EXCL) before it starts the script; a restarted daemon takes the name first (a
  // directory) to fence a launch it cannot see. Under `rch-`, so no download can take the name.
  launchClaim: 'rch-launch-',
} as const;

export type RunFile = keyof typeof runFiles;

// File names a download may never take in a run's (or a RunAs working) directory: the handler's
// own files, their temporary names, and every `rch-*` helper it writes (bootstrap, launchers).
export function isReservedFileName(name: string): boolean {
  const lower = name.toLowerCase();
  const own: readonly string[] = Object.values(runFiles);
  return own.includes(lower) || own.some((file) => lower.startsWith(`.${file}.`)) || lower.startsWith(`${runFiles.journal}`) || lower.startsWith('rch-');
}

// The path of the claim of the launch journaled with `nonce` (hex, from newLaunchNonce).
export function toLaunchClaimPath(runDir: string, nonce: string): string {
  return join(runDir, `${runFiles.launchClaim}${nonce}`);
}

// The path of one of the run's files.
export function toRunFilePath(runDir: string, file: RunFile): string {
  return join(runDir, runFiles[file]);
}
