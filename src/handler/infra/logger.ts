// The handler's log: winston JSON lines in logFolder, rotated daily, behind the redaction layer.
// Never log a secret or a byte of script output; URLs go through toLoggableUrl.
import { appendFile, mkdir, rename, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Redactor } from './redact.js';

export type LogMeta = Record<string, string | number | boolean | undefined>;

export interface Log {
  debug(message: string, meta?: LogMeta): void;
  info(message: string, meta?: LogMeta): void;
  warn(message: string, meta?: LogMeta): void;
  error(message: string, meta?: LogMeta): void;
}

function redactMeta(redactor: Redactor, meta: LogMeta | undefined): LogMeta {
  const out: LogMeta = {};
  for (const [key, value] of Object.entries(meta ?? {})) out[key] = typeof value === 'string' ? redactor.redact(value) : value;
  return out;
}

// The daemon's logger: `handler-<date>.log` files with `handler.log` pointing at today's.
export async function makeDaemonLog(logFolder: string, redactor: Redactor, options: { console?: boolean; level?: string } = {}): Promise<Log & { close(): Promise<void> }> {
  await mkdir(logFolder, { recursive: true });
  const winston = (await import('winston')).default;
  const { default: DailyRotateFile } = await import('winston-daily-rotate-file');
  const transport = new DailyRotateFile({
    dirname: logFolder,
    filename: 'handler-%DATE%.log',
    datePattern: 'YYYY-MM-DD',
    maxFiles: '14d',
    maxSize: '50m',
    createSymlink: true,
    symlinkName: 'handler.log',
    auditFile: join(logFolder, '.handler-audit.json'),
  });
  const transports = options.console ? [transport, new winston.transports.Console()] : [transport];
  const logger = winston.createLogger({
    level: options.level ?? 'info',
    format: winston.format.combine(winston.format.timestamp(), winston.format.json()),
    defaultMeta: { pid: process.pid },
    transports,
  });
  const write = (lvl: string) => (message: string, meta?: LogMeta) => logger.log(lvl, redactor.redact(message), redactMeta(redactor, meta));
  return {
    debug: write('debug'),
    info: write('info'),
    warn: write('warn'),
    error: write('error'),
    close: () => new Promise<void>((resolve) => {
      logger.on('finish', () => resolve());
      logger.end();
      setTimeout(resolve, 500).unref();
    }),
  };
}

const commandLogLimit = 1024 * 1024;

// The lifecycle commands' logger: one small append per line to `commands.log` (fast to load,
// since `enable` runs on every goal state); rotated once at 1 MiB.
export function makeCommandLog(logFolder: string, command: string): Log & { flush(): Promise<void> } {
  const path = join(logFolder, 'commands.log');
  let chain: Promise<void> = mkdir(logFolder, { recursive: true }).then(() => undefined, () => undefined);
  const write = (level: string) => (message: string, meta?: LogMeta) => {
    const line = `${JSON.stringify({ timestamp: new Date().toISOString(), level, command, pid: process.pid, message, ...meta })}\n`;
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
