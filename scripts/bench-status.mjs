// Shared by the bench scripts: the instance view of a run's status file once it is terminal.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

// The instance view of `<name>.<seq>.status` when its run has ended; undefined before.
export async function terminalStatus(statusFolder, name, seq = 0) {
  const text = await readFile(join(statusFolder, `${name}.${seq}.status`), 'utf8').catch(() => undefined);
  if (!text) return undefined;
  try {
    const view = JSON.parse(JSON.parse(text)[0].status.formattedMessage.message);
    return ['Succeeded', 'Failed', 'TimedOut', 'Canceled'].includes(view.executionState) ? view : undefined;
  } catch {
    return undefined;
  }
}
