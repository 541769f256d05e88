// Exactly-once records: which sequence number of each run command was accepted, written before
// its script starts (run-command.md §2). A `disable` marks the record instead of deleting it, so
// an update (whose agent sequence disables every run command) can restore it.
import { readdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { isValidName } from '../config/run-command.js';
import { readJsonFile, writeFileAtomic } from '../util/atomic-file.js';

const recordSchema = z.object({
  name: z.string(),
  seq: z.number().int(),
  runId: z.string(),
  // Epoch ms when `disable` forgot this run command; absent while it is live.
  disabledAt: z.number().optional(),
});

export type SequenceRecord = z.infer<typeof recordSchema>;

// Who asks for a settings file to be considered.
export type Origin = 'enable' | 'watch' | 'reconcile';

function recordPath(recordsDir: string, name: string): string {
  return join(recordsDir, `${name}.json`);
}

// Reads a run command's record; undefined when there is none (or it is unreadable).
export async function readRecord(recordsDir: string, name: string): Promise<SequenceRecord | undefined> {
  try {
    const parsed = recordSchema.safeParse(await readJsonFile(recordPath(recordsDir, name)));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

// Persists a run command's record (fsynced: exactly-once depends on it).
export async function writeRecord(recordsDir: string, record: SequenceRecord): Promise<void> {
  await writeFileAtomic(recordPath(recordsDir, record.name), JSON.stringify(record));
}

// Deletes a run command's record; idempotent.
export async function removeRecord(recordsDir: string, name: string): Promise<void> {
  await unlink(recordPath(recordsDir, name)).catch(() => undefined);
}

// Every record on disk.
export async function listRecords(recordsDir: string): Promise<SequenceRecord[]> {
  const entries = await readdir(recordsDir).catch(() => [] as string[]);
  const names = entries.filter((entry) => entry.endsWith('.json')).map((entry) => entry.slice(0, -'.json'.length));
  const records = await Promise.all(names.filter(isValidName).map((name) => readRecord(recordsDir, name)));
  return records.filter((record): record is SequenceRecord => record !== undefined);
}

// Whether settings (seq, mtime) for a name with this record must run: a newer seq runs; an
// older or equal one never does; after a disable, an explicit enable or a file written since runs.
export function shouldRun(record: SequenceRecord | undefined, seq: number, mtimeMs: number, origin: Origin): boolean {
  if (record === undefined) return true;
  if (record.disabledAt !== undefined) return origin === 'enable' || mtimeMs > record.disabledAt;
  return seq > record.seq;
}
