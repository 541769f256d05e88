// The crash-safe run journal: one JSON file per run, rewritten atomically on every transition,
// so a restarted daemon knows every run's state, process identity and deadline.
import { join } from 'node:path';
import { z } from 'zod';
import { readJsonFile, writeFileAtomic } from '../util/atomic-file.js';
import { runStates, type RunState } from './run-state.js';

const processIdentitySchema = z.object({
  wrapperPid: z.number().int(),
  pid: z.number().int(),
  pgid: z.number().int(),
  startTime: z.string(),
  wrapperStartTime: z.string(),
});

const journalSchema = z.object({
  version: z.literal(1),
  runId: z.string(),
  name: z.string(),
  seq: z.number().int(),
  state: z.enum(runStates),
  message: z.string(),
  exitCode: z.number().int(),
  // RFC 3339 UTC to the second, '' while unknown.
  startTime: z.string(),
  endTime: z.string(),
  bootId: z.string(),
  settingsFile: z.string(),
  timeoutInSeconds: z.number().int(),
  asyncExecution: z.boolean(),
  treatFailureAsDeploymentFailure: z.boolean(),
  // The handler itself failed (invalid settings, download, …): top-level status is `error`.
  handlerFailure: z.boolean(),
  process: processIdentitySchema.optional(),
  // Epoch milliseconds at which the run times out.
  deadline: z.number().optional(),
  // Why termination was requested, written before the signal is sent.
  stopRequest: z.object({ kind: z.enum(['timed-out', 'canceled']), reason: z.string() }).optional(),
  // Bytes of each output file known to be in its append blob (issue 4); present when the run streams.
  uploads: z.object({ stdout: z.number().int().nonnegative().optional(), stderr: z.number().int().nonnegative().optional() }).optional(),
});

export type RunJournal = z.infer<typeof journalSchema>;

const journalFile = 'journal.json';

// Persists a run's journal atomically (fsynced: it is what recovery trusts).
export async function writeJournal(runDir: string, journal: RunJournal): Promise<void> {
  await writeFileAtomic(join(runDir, journalFile), JSON.stringify(journal));
}

// Reads a run's journal; undefined when absent or unreadable (a run dir being created).
export async function readJournal(runDir: string): Promise<RunJournal | undefined> {
  try {
    const parsed = journalSchema.safeParse(await readJsonFile(join(runDir, journalFile)));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

// True when the journal says the run still needs the daemon.
export function isActiveJournal(journal: RunJournal): boolean {
  const active: readonly RunState[] = ['Pending', 'Running'];
  return active.includes(journal.state);
}
