// Settings files as the agent writes them into configFolder (protocol.md §5, §6).
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { encryptForCertificate, makeCertificate, type ProtectedSettingsCipher } from './agent-certificates.js';
import { toAgentJson } from './agent-json.js';
import type { AgentLayout } from './agent-layout.js';

export interface SettingsOptions {
  // The object ARM sends; null/absent is written as null.
  publicSettings?: unknown;
  // Encrypted to the layout's certificate (made on first use).
  protectedSettings?: object;
  // Overrides the thumbprint written (null writes null); defaults to the certificate's when
  // protected settings are given, else null.
  thumbprint?: string | null;
  // Writes publicSettings as a JSON string, as some goal states carry it.
  publicAsString?: boolean;
  // Writes these exact bytes instead (half-written, invalid, non-UTF-8 files...).
  raw?: string | Buffer;
  cipher?: ProtectedSettingsCipher;
}

// What writing settings needs of a layout: the agent simulator's, or the daemon harness's.
export type SettingsLayout = Pick<AgentLayout, 'configFolder' | 'libDir'> & { certificate: AgentLayout['certificate'] };

// The name the simulator gives the single configuration of an agent without multi-config:
// `<seq>.settings`, `<seq>.status`, no ConfigExtensionName (protocol.md §4, §5, §7).
export const SINGLE_CONFIG = '';

export interface SettingsFile {
  readonly name: string;
  readonly seq: number;
  readonly path: string;
}

// Path of a run command's settings file: `<name>.<seq>.settings`, or `<seq>.settings` for SINGLE_CONFIG.
export function toSettingsPath(layout: Pick<AgentLayout, 'configFolder'>, name: string, seq: number): string {
  return path.join(layout.configFolder, name === SINGLE_CONFIG ? `${seq}.settings` : `${name}.${seq}.settings`);
}

async function toHandlerSettings(layout: SettingsLayout, options: SettingsOptions): Promise<object> {
  const publicSettings = options.publicSettings ?? null;
  let protectedSettings: string | null = null;
  let thumbprint: string | null = null;
  if (options.protectedSettings !== undefined) {
    const certificate = layout.certificate ?? (await makeCertificate(layout));
    protectedSettings = await encryptForCertificate(certificate, JSON.stringify(options.protectedSettings), options.cipher);
    thumbprint = certificate.thumbprint;
  }
  return {
    publicSettings: options.publicAsString && publicSettings !== null ? JSON.stringify(publicSettings) : publicSettings,
    protectedSettings,
    protectedSettingsCertThumbprint: options.thumbprint !== undefined ? options.thumbprint : thumbprint,
  };
}

// Writes `config/<name>.<seq>.settings` (or `config/<seq>.settings`) the way the agent does: in place (not atomically), one
// line of ASCII JSON with nulls rather than absent keys.
export async function writeSettings(
  layout: SettingsLayout,
  name: string,
  seq: number,
  options: SettingsOptions,
): Promise<string> {
  const file = toSettingsPath(layout, name, seq);
  if (options.raw !== undefined) {
    await writeFile(file, options.raw);
    return file;
  }
  const handlerSettings = await toHandlerSettings(layout, options);
  await writeFile(file, toAgentJson({ runtimeSettings: [{ handlerSettings }] }));
  return file;
}

// Every settings file in configFolder: multi-config ones, and single-config ones as SINGLE_CONFIG.
export async function listSettingsFiles(layout: AgentLayout): Promise<SettingsFile[]> {
  const files: SettingsFile[] = [];
  for (const entry of await readdir(layout.configFolder).catch(() => [])) {
    const match = /^(?:(.+)\.)?(\d+)\.settings$/.exec(entry);
    if (match?.[2] !== undefined) {
      files.push({ name: match[1] ?? SINGLE_CONFIG, seq: Number(match[2]), path: path.join(layout.configFolder, entry) });
    }
  }
  return files;
}

// The current settings file of a run command: newest mtime, highest sequence number on a tie
// (protocol.md §5).
export async function findCurrentSettings(layout: AgentLayout, name: string): Promise<SettingsFile | undefined> {
  let current: { file: SettingsFile; mtimeMs: number } | undefined;
  for (const file of await listSettingsFiles(layout)) {
    if (file.name !== name) continue;
    const { mtimeMs } = await stat(file.path);
    if (!current || mtimeMs > current.mtimeMs || (mtimeMs === current.mtimeMs && file.seq > current.file.seq)) {
      current = { file, mtimeMs };
    }
  }
  return current?.file;
}

// Rewrites a settings file with the same content, as the agent does on every goal state.
export async function rewriteSettings(file: string): Promise<void> {
  await writeFile(file, await readFile(file));
}
