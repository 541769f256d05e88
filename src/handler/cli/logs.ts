// `logs NAME [--follow] [--stderr]`: the current run's output, from its local file.
import { open } from 'node:fs/promises';
import { toRunFilePath } from '../../runner/run-directory.js';
import { isTerminal } from '../../runner/run-state.js';
import { sleep } from '../../util/time.js';
import type { HandlerContext } from '../infra/context.js';

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
  const { store } = context;
  const current = await store.currentRun(name);
  if (current.kind !== 'run') throw new Error(current.kind === 'none' ? `no run for run command ${name}` : `the record of run command ${name} ${current.reason}`);
  const path = toRunFilePath(current.runDir, options.stream);
  let offset = await copyFrom(path, 0);
  while (options.follow) {
    const journal = await store.readJournal(current.record.runId);
    if (journal.kind !== 'present' || isTerminal(journal.value.state)) break;
    await sleep(200);
    offset = await copyFrom(path, offset);
  }
  if (options.follow) await copyFrom(path, offset);
  return 0;
}
