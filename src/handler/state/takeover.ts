// Taking over from Microsoft's handler (run-command.md §8): when this handler replaces it — an update
// of the same extension, or a first start on a VM where it ran — its install directory, a sibling
// of ours in the agent's lib dir, still holds `<name>.mrseq` (the last sequence number it processed
// for each run command) and its status files in `status/`. Every run it already ran counts as done:
// a sequence number at or below its mrseq never runs here, and its status is carried over. Its
// single configuration (an agent without multi-config) keeps `.mrseq` (an empty name).
import { readdir, readFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { isValidName, singleConfigName } from '../../config/run-command.js';
import { writeFileAtomic } from '../../util/atomic-file.js';
import { isTerminalStatusFile, toStatusPath } from '../agent/status-file.js';

// What Microsoft's handler ran for one run command.
export interface ForeignRun {
  // The last sequence number it processed.
  readonly seq: number;
  // Its install directory's status folder.
  readonly statusFolder: string;
}

// `<Publisher.Type>-<version>`, the agent's name for an install directory (protocol.md §1).
const installDir = /^(.+)-(\d+(?:\.\d+)*)$/;

// The runs of the other installs of this extension next to ours (`configFolder` is `<base>/config`),
// by run command name; the highest mrseq wins when several installs remain.
export async function readForeignRuns(configFolder: string): Promise<ReadonlyMap<string, ForeignRun>> {
  const ours = dirname(configFolder);
  const handler = installDir.exec(basename(ours))?.[1];
  const runs = new Map<string, ForeignRun>();
  if (handler === undefined) return runs;
  const libDir = dirname(ours);
  for (const entry of await readdir(libDir).catch(() => [] as string[])) {
    const dir = join(libDir, entry);
    if (dir === ours || installDir.exec(entry)?.[1] !== handler) continue;
    for (const [name, seq] of await readSequenceFiles(dir)) {
      if ((runs.get(name)?.seq ?? -1) < seq) runs.set(name, { seq, statusFolder: join(dir, 'status') });
    }
  }
  return runs;
}

// Every valid `<name>.mrseq` (and the single configuration's `.mrseq`) of an install directory:
// name → sequence number.
async function readSequenceFiles(dir: string): Promise<Array<[string, number]>> {
  const found: Array<[string, number]> = [];
  for (const file of await readdir(dir).catch(() => [] as string[])) {
    if (!file.endsWith('.mrseq')) continue;
    const stem = file.slice(0, -'.mrseq'.length);
    const name = stem === '' ? singleConfigName : stem;
    const text = await readFile(join(dir, file), 'utf8').catch(() => '');
    if ((stem === '' || isValidName(name)) && /^\s*\d{1,15}\s*$/.test(text)) found.push([name, Number(text.trim())]);
  }
  return found;
}

// Carries Microsoft's status file of (name, seq) into our status folder, unless ours already reports
// an end (an update copied it); our own Pending one (written by enable) is replaced. True when Microsoft's
// handler had one. Replaced atomically (not copyFile, which truncates then writes): the agent reads
// the status file at any moment and must never see half of it.
export async function carryForeignStatus(run: ForeignRun, name: string, seq: number, statusFolder: string): Promise<boolean> {
  if (await isTerminalStatusFile(statusFolder, name, seq)) return true;
  const text = await readFile(toStatusPath(run.statusFolder, name, seq)).catch(() => undefined);
  if (text === undefined) return false;
  await writeFileAtomic(toStatusPath(statusFolder, name, seq), text, { mode: 0o644, sync: false });
  return true;
}
