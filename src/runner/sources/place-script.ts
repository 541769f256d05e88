// Puts a run command's script into its directory (run-command.md §3): the inline text, the
// scriptUri download or the built-in command's file, and says which shell runs it.
import { chmod, readFile } from 'node:fs/promises';
import { extname, join } from 'node:path';
import type { RunCommand } from '../../config/run-command.js';
import { errorCodes, HandlerError, SettingsError, toErrorMessage } from '../../errors.js';
import type { ScriptTraits } from '../platform-contract.js';
import { catalogueDir as shippedCatalogueDir, findCommand, readCatalogue } from './catalogue.js';
import { downloadScript, type DownloadDeps, type TakenNames } from './downloads.js';
import { writeScriptFile } from '../script-file.js';

export type ScriptShell = 'bash' | 'powershell';

export interface PlacedScript {
  readonly path: string;
  readonly shell: ScriptShell;
  // The script's first bytes when they are known without reading the file back (text it was written from).
  readonly head?: string;
}

export interface PlaceScriptDeps {
  readonly scripts: ScriptTraits;
  readonly download: DownloadDeps;
  readonly catalogueDir?: string;
}

async function placeText(dir: string, taken: TakenNames, text: string, shell: ScriptShell, deps: PlaceScriptDeps): Promise<PlacedScript> {
  const name = shell === 'powershell' ? 'script.ps1' : 'script.sh';
  taken.claim(name, 'source.script', errorCodes.saveScript);
  return { path: await writeScriptFile(dir, name, text, shell === 'powershell' && deps.scripts.powerShellNeedsUtf8Help), shell, head: text.slice(0, 2) };
}

async function placeCommand(command: RunCommand & { source: { kind: 'commandId' } }, dir: string, taken: TakenNames, deps: PlaceScriptDeps): Promise<PlacedScript> {
  const { source } = command;
  const catalogueDir = deps.catalogueDir ?? shippedCatalogueDir;
  const entry = findCommand(await readCatalogue(catalogueDir), source.commandId, deps.scripts.catalogue);
  if (entry.script === undefined) {
    if (source.script === undefined) throw new SettingsError('source.script', `is required with source.commandId ${entry.id}`);
    return placeText(dir, taken, source.script, entry.shell, deps);
  }
  const name = `${entry.id}${extname(entry.script)}`;
  taken.claim(name, `source.commandId ${entry.id}`, errorCodes.saveScript);
  const path = join(dir, name);
  try {
    const text = await readFile(join(catalogueDir, entry.script), 'utf8');
    await writeScriptFile(dir, name, text, entry.shell === 'powershell' && deps.scripts.powerShellNeedsUtf8Help);
  } catch (error) {
    if (error instanceof HandlerError) throw error;
    throw new HandlerError(errorCodes.saveScript, `could not copy the built-in command ${entry.id}: ${toErrorMessage(error)}`, { cause: error });
  }
  return { path, shell: entry.shell };
}

async function placeDownload(command: RunCommand & { source: { kind: 'scriptUri' } }, dir: string, taken: TakenNames, deps: PlaceScriptDeps): Promise<PlacedScript> {
  const { scriptUri, sasToken, managedIdentity } = command.source;
  const file = { uri: scriptUri, ...(sasToken === undefined ? {} : { sasToken }), ...(managedIdentity === undefined ? {} : { managedIdentity }) };
  const path = await downloadScript(file, dir, taken, deps.download);
  const isPowerShell = extname(path).toLowerCase() === '.ps1';
  if (deps.scripts.uriScriptsMustBePowerShell && !isPowerShell) {
    throw new HandlerError(errorCodes.startExecution, `source.scriptUri: only PowerShell (.ps1) scripts run on Windows, got '${extname(path) || 'no extension'}'`, { blame: 'user' });
  }
  await chmod(path, 0o700);
  return { path, shell: isPowerShell ? 'powershell' : 'bash' };
}

// Places the script of `command` in `dir` and names its shell.
export function placeScript(command: RunCommand, dir: string, taken: TakenNames, deps: PlaceScriptDeps): Promise<PlacedScript> {
  const { source } = command;
  switch (source.kind) {
    case 'script':
      return placeText(dir, taken, source.script, deps.scripts.inlineShell, deps);
    case 'scriptUri':
      return placeDownload({ ...command, source }, dir, taken, deps);
    case 'commandId':
      return placeCommand({ ...command, source }, dir, taken, deps);
    case 'none':
      // Run ends such a run before preparing anything; reaching here is a handler fault.
      return Promise.reject(new HandlerError(errorCodes.invalidSettings, 'there is no script to run (installAsService without a source)'));
  }
}
