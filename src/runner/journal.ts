// The crash-safe run journal: the run's whole state, persisted (by the run store) before every
// change is announced, so a restarted daemon knows every run's state, process identity and deadline;
// its schema, and the journal of a newly accepted run (makeRunJournal).
import type { RunCommand } from '../config/run-command.js';
import * as z from '../util/schema.js';
import { toRfc3339 } from '../util/time.js';
import { processIdentitySchema } from './process-contract.js';
import { runStates, type RunState } from './run-state.js';

export const journalSchema = z.object({
  version: z.literal(1),
  runId: z.string(),
  name: z.string(),
  seq: z.int(),
  state: z.enum(runStates),
  message: z.string(),
  exitCode: z.int(),
  // RFC 3339 UTC to the second: when the run was accepted (run-command.md §6); '' only in journals
  // written before that rule.
  startTime: z.string(),
  // RFC 3339 UTC to the second: when the script was launched (absent until then); the events'
  // duration is measured from it.
  launchTime: z.optional(z.string()),
  endTime: z.string(),
  bootId: z.string(),
  settingsFile: z.string(),
  timeoutInSeconds: z.int(),
  asyncExecution: z.boolean(),
  treatFailureAsDeploymentFailure: z.boolean(),
  // The handler itself failed (invalid settings, download, …): the events report it as an Error
  // (the top-level status is `success` all the same, run-command.md §6).
  handlerFailure: z.boolean(),
  process: z.optional(processIdentitySchema),
  // When the run times out, on the monotonic clock of its boot (TimerClock.monotonicMs): a wall-clock
  // step (NTP, a VM resume) changes nothing; a different boot ends the run anyway.
  deadlineMonotonicMs: z.optional(z.number()),
  // Epoch milliseconds at which the run times out: written by earlier versions, still honoured.
  deadline: z.optional(z.number()),
  // Why termination was requested, written before the signal is sent.
  stopRequest: z.optional(z.object({ kind: z.enum(['timed-out', 'canceled']), reason: z.string() })),
  // Bytes of each output file known to be in its append blob (issue 4); present when the run streams.
  uploads: z.optional(z.object({ stdout: z.optional(z.int().check(z.nonnegative())), stderr: z.optional(z.int().check(z.nonnegative())) })),
  // How many times the launch work (preparation, blob creation, launch) was begun, persisted before
  // it begins: a run whose launch keeps killing the daemon is ended by recovery, not retried forever.
  launchAttempts: z.optional(z.int().check(z.nonnegative())),
  // The nonce of the latest launch request, persisted before the request is sent (hardening #5):
  // recovery fences it (launch-fence.ts) so the run never starts twice. Absent in earlier versions'
  // journals and until the first launch.
  launchNonce: z.optional(z.string().check(z.regex(/^[0-9a-f]{1,64}$/))),
});

// A run still Pending whose launch was begun this many times is not begun again (recovery.ts).
export const maxLaunchAttempts = 3;

export type RunJournal = z.infer<typeof journalSchema>;

// How a journal write must last. Durable (the default): fsynced, it survives a power loss — what
// recovery relies on to never start a script twice. `durable: false`: it survives the daemon's death
// (kill -9, a crash: the kernel keeps it) but perhaps not a power loss — for what only a restarted
// daemon of the same boot needs (the launch-attempt count) or what is rewritten anyway (a queue
// message); each such write costs no journal commit on the way to the launch (issue 16).
export interface JournalWriteOptions {
  readonly durable?: boolean;
}

// Where a run's journal goes (the run store in the daemon; memory in tests).
export interface JournalStore {
  writeJournal(journal: RunJournal, options?: JournalWriteOptions): Promise<void>;
}

// Builds the journal of a run that has just been accepted at `acceptedMs` (its startTime,
// run-command.md §6); `command` is absent (or only what could be read of it) when its settings
// were refused: the run will only ever fail.
export function makeRunJournal(
  identity: { name: string; seq: number; runId: string; settingsFile: string; bootId: string },
  acceptedMs: number,
  command?: Partial<Pick<RunCommand, 'timeoutInSeconds' | 'asyncExecution' | 'treatFailureAsDeploymentFailure'>>,
): RunJournal {
  const { name, seq, runId, settingsFile, bootId } = identity;
  return {
    version: 1,
    runId,
    name,
    seq,
    state: 'Pending',
    message: 'Execution pending',
    exitCode: 0,
    startTime: toRfc3339(acceptedMs),
    endTime: '',
    bootId,
    settingsFile,
    timeoutInSeconds: command?.timeoutInSeconds ?? 0,
    asyncExecution: command?.asyncExecution ?? false,
    treatFailureAsDeploymentFailure: command?.treatFailureAsDeploymentFailure ?? false,
    handlerFailure: false,
  };
}

// True when the journal says the run still needs the daemon.
export function isActiveJournal(journal: RunJournal): boolean {
  const active: readonly RunState[] = ['Pending', 'Running'];
  return active.includes(journal.state);
}
