// The handler's logs: the Log interface, and the lifecycle commands' small log (the daemon's,
// winston's JSON lines, is daemon-log.ts). Never log a secret or a byte of script output; URLs go
// through toLoggableUrl.
import { appendFile, mkdir, rename, stat } from 'node:fs/promises';
import { join } from 'node:path';

export type LogMeta = Record<string, string | number | boolean | undefined>;

export interface Log {
  debug(message: string, meta?: LogMeta): void;
  info(message: string, meta?: LogMeta): void;
  warn(message: string, meta?: LogMeta): void;
  error(message: string, meta?: LogMeta): void;
}

const commandLogLimit = 1024 * 1024;

// The lifecycle commands' logger: one small append per line to `commands.log` (fast to load,
// since `enable` runs on every goal state); rotated once at 1 MiB. `pid`: the command's process
// (the daemon logs the native client's enable under the client's pid).
export function makeCommandLog(logFolder: string, command: string, pid = process.pid): Log & { flush(): Promise<void> } {
  const path = join(logFolder, 'commands.log');
  let chain: Promise<void> = mkdir(logFolder, { recursive: true }).then(() => undefined, () => undefined);
  const write = (level: string) => (message: string, meta?: LogMeta) => {
    const line = `${JSON.stringify({ timestamp: new Date().toISOString(), level, command, pid, message, ...meta })}\n`;
    chain = chain.then(() => appendFile(path, line, { mode: 0o644 })).catch(() => undefined);
  };
  return {
    debug: () => undefined,
    info: write('info'),
    warn: write('warn'),
    error: write('error'),
    flush: async () => {
      await chain;
      const size = await stat(path).then((s) => s.size, () => 0);
      if (size > commandLogLimit) await rename(path, `${path}.1`).catch(() => undefined);
    },
  };
}
