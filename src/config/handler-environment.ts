// HandlerEnvironment.json (protocol.md §3): where the agent wants logs, settings and status.
// The agent may be writing it while we read it, so a failed read is retried a few times.

import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { errorCodes, HandlerError, toErrorMessage } from '../errors.js';
import * as z from '../util/schema.js';

export const handlerEnvironmentFileName = 'HandlerEnvironment.json';

export interface HandlerEnvironment {
  readonly name?: string;
  readonly version?: string;
  readonly logFolder: string;
  readonly configFolder: string;
  readonly statusFolder: string;
  readonly heartbeatFile?: string;
  readonly eventsFolder?: string;
}

export interface ReadHandlerEnvironmentOptions {
  readonly attempts?: number;
  readonly sleep?: (ms: number) => Promise<void>;
}

// Optional strings: null and '' (the Windows agent's empty extras) mean absent.
const optionalText = z.pipe(
  z.nullish(z.string()),
  z.transform((value: string | null | undefined) => (value === null || value === '' ? undefined : value)),
);
const folder = z
  .string({ error: (issue) => (issue.input == null ? 'is required' : 'must be a string') })
  .check(z.minLength(1, { error: 'must not be empty' }));
// `"version": 1.0` is a number in the agent's file; keep the familiar "1.0" spelling.
const version = z.pipe(
  z.nullish(z.union([z.string(), z.number()])),
  z.transform((value: string | number | null | undefined) => (typeof value === 'number' ? (Number.isInteger(value) ? value.toFixed(1) : String(value)) : (value ?? undefined))),
);

const fileSchema = z
  .array(
    z.object({
      name: optionalText,
      version,
      handlerEnvironment: z.object({
        logFolder: folder,
        configFolder: folder,
        statusFolder: folder,
        heartbeatFile: optionalText,
        eventsFolder: optionalText,
        eventsFolder_preview: optionalText,
      }),
    }),
    { error: 'must be a JSON array of one object' },
  )
  .check(z.length(1, { error: 'must be a JSON array of exactly one object' }));

// First HandlerEnvironment.json among candidates, each a file path or a directory holding one.
export async function findHandlerEnvironment(candidates: string[]): Promise<string | undefined> {
  for (const candidate of candidates) {
    const stats = await stat(candidate).catch(() => undefined);
    if (stats?.isFile()) return candidate;
    if (stats?.isDirectory()) {
      const path = join(candidate, handlerEnvironmentFileName);
      if ((await stat(path).catch(() => undefined))?.isFile()) return path;
    }
  }
  return undefined;
}

// Reads and validates HandlerEnvironment.json, retrying with backoff while it stays unreadable.
export async function readHandlerEnvironment(path: string, options: ReadHandlerEnvironmentOptions = {}): Promise<HandlerEnvironment> {
  const attempts = Math.max(1, options.attempts ?? 5);
  const sleep = options.sleep ?? ((ms: number) => delay(ms));
  let lastError: unknown;
  for (let attempt = 1; attempt <= attempts; attempt += 1) {
    try {
      return parseHandlerEnvironment(await readFile(path, 'utf8'));
    } catch (error) {
      lastError = error;
      if (attempt < attempts) await sleep(100 * 2 ** (attempt - 1));
    }
  }
  throw new HandlerError(errorCodes.general, `${path} is missing or invalid after ${attempts} attempts: ${toErrorMessage(lastError)}`, {
    cause: lastError,
  });
}

// Parses the text of HandlerEnvironment.json (BOM tolerated) into a HandlerEnvironment.
export function parseHandlerEnvironment(text: string): HandlerEnvironment {
  const json: unknown = JSON.parse(text.startsWith('\uFEFF') ? text.slice(1) : text);
  const result = fileSchema.safeParse(json);
  if (!result.success) {
    const issue = result.error.issues[0];
    const field = (issue?.path ?? []).map((segment) => (typeof segment === 'number' ? `[${segment}]` : `.${String(segment)}`)).join('');
    throw new Error(`${field === '' ? 'the file' : field.replace(/^\./, '')}: ${issue?.message ?? 'is invalid'}`);
  }
  const [entry] = result.data;
  if (entry === undefined) throw new Error('must be a JSON array of exactly one object');
  const environment = entry.handlerEnvironment;
  const eventsFolder = environment.eventsFolder ?? environment.eventsFolder_preview;
  return {
    ...(entry.name === undefined ? {} : { name: entry.name }),
    ...(entry.version === undefined ? {} : { version: entry.version }),
    logFolder: environment.logFolder,
    configFolder: environment.configFolder,
    statusFolder: environment.statusFolder,
    ...(environment.heartbeatFile === undefined ? {} : { heartbeatFile: environment.heartbeatFile }),
    ...(eventsFolder === undefined ? {} : { eventsFolder }),
  };
}
