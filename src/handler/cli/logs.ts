// `logs NAME [--follow] [--stderr]`: the current run's output, from its local file.
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { isTerminal } from '../../runner/run-state.js';
import { readJournal } from '../../runner/journal.js';
import { sleep } from '../../util/time.js';
import type { HandlerContext } from '../context.js';
import { toRunDir } from '../paths.js';
import { readRecord } from '../sequence-records.js';

async function copyFrom(path: string, offset: number): Promise<number> {
  const handle = await open(path, 'r').catch(() => undefined);
  if (!handle) return offset;
  try {
    const buffer = Buffer.alloc(64 * 1024);
    let position = offset;
    for (;;) {
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, position);
      if (bytesRead === 0) return position;
      process.stdout.write(buffer.subarray(0, bytesRead));
      position += bytesRead;
    }
  } finally {
    await handle.close();
  }
}

// Prints the output of NAME's current run; with `follow`, until the run is terminal.
export async function runLogs(context: HandlerContext, name: string | undefined, options: { follow: boolean; stream: 'stdout' | 'stderr' }): Promise<number> {
  if (name === undefined) throw new Error('logs needs a NAME');
  const record = await readRecord(context.paths.recordsDir, name);
  if (record === undefined) throw new Error(`no run for run command ${name}`);
  const runDir = toRunDir(context.paths, record.runId);
  const path = join(runDir, options.stream);
  let offset = await copyFrom(path, 0);
  while (options.follow) {
    const journal = await readJournal(runDir);
    if (journal === undefined || isTerminal(journal.state)) break;
    await sleep(200);
    offset = await copyFrom(path, offset);
  }
  if (options.follow) await copyFrom(path, offset);
  return 0;
}
