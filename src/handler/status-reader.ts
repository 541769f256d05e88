// Reads status files back (operator CLI): the newest status of each run command.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { InstanceView, TopLevelStatus } from './status-file.js';

export interface StatusEntry {
  readonly name: string;
  readonly seq: number;
  readonly status: TopLevelStatus;
  readonly instanceView: InstanceView;
}

function parseStatusFile(name: string, seq: number, text: string): StatusEntry | undefined {
  try {
    const document = JSON.parse(text) as [{ status: { status: TopLevelStatus; formattedMessage: { message: string } } }];
    const status = document[0].status;
    return { name, seq, status: status.status, instanceView: JSON.parse(status.formattedMessage.message) as InstanceView };
  } catch {
    return undefined;
  }
}

// The highest-sequence status of every run command in `statusFolder`, sorted by name.
export async function readStatusEntries(statusFolder: string): Promise<StatusEntry[]> {
  const newest = new Map<string, number>();
  for (const file of await readdir(statusFolder).catch(() => [] as string[])) {
    const match = /^(.+)\.(\d+)\.status$/.exec(file);
    if (!match) continue;
    const [, name = '', seqText = ''] = match;
    if ((newest.get(name) ?? -1) < Number(seqText)) newest.set(name, Number(seqText));
  }
  const entries = await Promise.all(
    [...newest].map(async ([name, seq]) => {
      const text = await readFile(join(statusFolder, `${name}.${seq}.status`), 'utf8').catch(() => undefined);
      return text === undefined ? undefined : parseStatusFile(name, seq, text);
    }),
  );
  return entries.filter((entry): entry is StatusEntry => entry !== undefined).sort((a, b) => a.name.localeCompare(b.name));
}
