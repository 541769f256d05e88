// The daemon's log: winston JSON lines in logFolder, rotated daily, behind the redaction layer.
// Loaded with the daemon's modules, after its control endpoint is up (daemon-command.ts).
// Never log a secret or a byte of script output; URLs go through toLoggableUrl.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import winston from 'winston';
import DailyRotateFile from 'winston-daily-rotate-file';
import type { Log, LogMeta } from './logger.js';
import type { Redactor } from './redact.js';

function redactMeta(redactor: Redactor, meta: LogMeta | undefined): LogMeta {
  const out: LogMeta = {};
  for (const [key, value] of Object.entries(meta ?? {})) out[key] = typeof value === 'string' ? redactor.redact(value) : value;
  return out;
}

// The daemon's logger: `handler-<date>.log` files with `handler.log` pointing at today's.
export async function makeDaemonLog(logFolder: string, redactor: Redactor, options: { console?: boolean; level?: string } = {}): Promise<Log & { close(): Promise<void> }> {
  await mkdir(logFolder, { recursive: true });
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

