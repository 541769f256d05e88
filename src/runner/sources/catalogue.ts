// The built-in commands for `source.commandId` (run-command.md §3): src/runner/commands/ holds
// catalogue.json (each command's platforms, shell and script file) and the scripts; the build
// copies it to dist/runner/commands/, which the package ships.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SettingsError } from '../../errors.js';
import { packageRoot } from '../../util/package-root.js';
import * as z from '../../util/schema.js';
import type { PlatformName } from '../platform-contract.js';

// The copy the build makes (also under vitest), at the same place in the package.
export const catalogueDir = join(packageRoot, 'dist', 'runner', 'commands');

const commandSchema = z.object({
  id: z.string().check(z.regex(/^[A-Za-z][A-Za-z0-9]*$/)),
  platforms: z.array(z.enum(['linux', 'windows'])).check(z.minLength(1)),
  shell: z.enum(['bash', 'powershell']),
  // Relative to catalogueDir; absent: the command runs source.script.
  script: z.optional(z.string().check(z.regex(/^(linux|windows)\/[A-Za-z0-9]+\.(sh|ps1)$/))),
  description: z.string().check(z.minLength(1)),
  parameters: z.optional(z.array(z.object({ name: z.string(), required: z.boolean(), defaultValue: z.optional(z.string()) }))),
});

export type CatalogueCommand = z.infer<typeof commandSchema>;

let cached: Promise<readonly CatalogueCommand[]> | undefined;

// The catalogue as shipped (read once per process).
export function readCatalogue(dir: string = catalogueDir): Promise<readonly CatalogueCommand[]> {
  if (dir !== catalogueDir) return loadCatalogue(dir);
  cached ??= loadCatalogue(dir);
  cached.catch(() => (cached = undefined));
  return cached;
}

async function loadCatalogue(dir: string): Promise<readonly CatalogueCommand[]> {
  const text = await readFile(`${dir}/catalogue.json`, 'utf8');
  return Object.freeze(z.array(commandSchema).parse(JSON.parse(text)));
}

// The ids available on `platform`, in catalogue order.
export function listCommandIds(catalogue: readonly CatalogueCommand[], platform: PlatformName): string[] {
  return catalogue.filter((command) => command.platforms.includes(platform)).map((command) => command.id);
}

// The command `id` names (ignoring case, like Azure) on `platform`; a SettingsError listing the
// ids available on this platform when there is none.
export function findCommand(catalogue: readonly CatalogueCommand[], id: string, platform: PlatformName): CatalogueCommand {
  const command = catalogue.find((entry) => entry.id.toLowerCase() === id.toLowerCase());
  if (command?.platforms.includes(platform)) return command;
  const shown = id.replace(/[^\x20-\x7e]/g, '?').slice(0, 64);
  const why = command === undefined ? 'is not a built-in command' : `is a ${command.platforms.join('/')} command`;
  throw new SettingsError('source.commandId', `'${shown}' ${why}; available on ${platform}: ${listCommandIds(catalogue, platform).join(', ')}`);
}
