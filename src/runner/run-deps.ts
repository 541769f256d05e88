// What a run needs from outside (its dependencies, RunDeps): the platform's process layer, RunAs and
// script traits, the journal store, the clock, the grace period, and what its scripts' environment
// and downloads start from. The daemon and the lifecycle commands build it (handler/daemon/run-deps.ts).
import type { TimerClock } from '../util/time.js';
import type { JournalStore } from './journal.js';
import type { RunnerPlatform } from './platform-contract.js';
import type { ScriptSourceDeps } from './prepare-script.js';

export interface RunDeps {
  // The platform's process layer, RunAs and script traits.
  readonly platform: RunnerPlatform;
  // Where journals are persisted (the run store).
  readonly journals: JournalStore;
  readonly clock: TimerClock;
  readonly graceMs: number;
  // Per-stream output cap handed to the wrapper (issue #6); unset: no cap.
  readonly maxOutputBytes?: number;
  readonly bootId: string;
  readonly baseEnv: Readonly<Record<string, string>>;
  // The agent's AZURE_GUEST_AGENT_* variables as of the latest enable (run-command.md §4).
  readonly agentEnv?: () => Readonly<Record<string, string>>;
  // Where RunAs runs get their working directories (run-as-work-dir.linux.ts).
  readonly workRoot: string;
  // Masks the run's secrets in anything it persists (messages built from errors).
  readonly redact: (text: string) => string;
  // How scripts are downloaded and which PowerShell runs them (the platform gives the script traits).
  readonly sources?: Omit<ScriptSourceDeps, 'scripts'>;
}
