// A guest-agent simulator (shared/spec/protocol.md): installs the packaged extension into a temp
// lib dir, writes settings, runs the handler's commands with the agent's environment, session,
// capture and time limits, validates status files, and plays the agent's removal and update
// sequences. The e2e suite drives the real package through it.
import { copyFile, cp, readdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { toAgentJson } from './agent-json.js';
import { isInstalled, makeAgentLayout, removeBaseDir, type AgentLayout } from './agent-layout.js';
import { killProcessesUnder, runAgentProcess, type AgentProcessResult } from './agent-process.js';
import { toStatusPath } from './agent-status.js';
import { findCurrentSettings, listSettingsFiles, rewriteSettings, SINGLE_CONFIG } from './agent-settings.js';

export { decryptWithCertificate, encryptForCertificate, makeCertificate } from './agent-certificates.js';
export type { AgentCertificate, ProtectedSettingsCipher } from './agent-certificates.js';
export { HANDLER_NAME, isInstalled, makeAgentLayout, removeBaseDir } from './agent-layout.js';
export type { AgentLayout, LayoutOptions } from './agent-layout.js';
export { killProcessesUnder } from './agent-process.js';
export type { AgentProcessResult } from './agent-process.js';
export { findCurrentSettings, listSettingsFiles, SINGLE_CONFIG, toSettingsPath, writeSettings } from './agent-settings.js';
export type { SettingsFile, SettingsOptions } from './agent-settings.js';
export { InvalidStatusError, isTerminalReport, readStatus, toStatusPath, validateStatus, waitForStatus } from './agent-status.js';
export type { ExecutionState, InstanceView, StatusReport, StatusValue, TopStatus } from './agent-status.js';
export { toAgentJson } from './agent-json.js';

export type HandlerCommand = 'install' | 'enable' | 'disable' | 'uninstall' | 'update';

// The agent's time limits (protocol.md §4).
export const AGENT_TIME_LIMITS_MS: Readonly<Record<HandlerCommand, number>> = {
  install: 900_000,
  enable: 300_000,
  disable: 900_000,
  update: 900_000,
  uninstall: 300_000,
};

export interface CommandEnv {
  // Run command name: sets ConfigExtensionName (multi-config); SINGLE_CONFIG ('') sets none.
  name?: string;
  // ConfigSequenceNumber; the agent uses 0 when a command concerns no run command.
  seq?: number;
  // Added last, e.g. VERSION for update or a test-only override.
  extra?: Record<string, string>;
}

export interface RunCommandOptions {
  // Shortens the agent's time limit (tests of the limit itself).
  timeLimitMs?: number;
}

export type CommandResult = AgentProcessResult;

const SUPPORTED_FEATURES = [{ Key: 'ExtensionTelemetryPipeline', Value: '1.0' }];

async function readManifestCommand(layout: AgentLayout, command: HandlerCommand): Promise<string> {
  const manifest = JSON.parse(await readFile(path.join(layout.baseDir, 'HandlerManifest.json'), 'utf8')) as unknown;
  const line: unknown = (manifest as Array<{ handlerManifest?: Record<string, unknown> }>)[0]?.handlerManifest?.[`${command}Command`];
  if (typeof line !== 'string' || line.trim() === '') throw new Error(`HandlerManifest.json has no ${command}Command`);
  return line;
}

// The variables the agent adds on top of its own environment (protocol.md §4).
export function toAgentEnv(layout: AgentLayout, command: HandlerCommand, env: CommandEnv = {}): Record<string, string> {
  const vars: Record<string, string> = {
    AZURE_GUEST_AGENT_EXTENSION_PATH: layout.host?.toAgentPath(layout.baseDir) ?? layout.baseDir,
    AZURE_GUEST_AGENT_EXTENSION_VERSION: layout.version,
    AZURE_GUEST_AGENT_WIRE_PROTOCOL_ADDRESS: '168.63.129.16',
    ConfigSequenceNumber: String(env.seq ?? 0),
    AZURE_GUEST_AGENT_EXTENSION_SUPPORTED_FEATURES: toAgentJson(SUPPORTED_FEATURES),
  };
  if (env.name !== undefined && env.name !== SINGLE_CONFIG) vars.ConfigExtensionName = env.name;
  if (command === 'install' || command === 'enable') vars.AZURE_GUEST_AGENT_UNINSTALL_CMD_EXIT_CODE = 'NOT_RUN';
  return { ...vars, ...env.extra };
}

// The test process's environment minus what vitest adds, which the agent's would not have.
function toBaseEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const key of Object.keys(env)) if (key.startsWith('VITEST')) delete env[key];
  if (env.NODE_ENV === 'test') delete env.NODE_ENV;
  if (env.TEST === 'true') delete env.TEST;
  return env;
}

// Runs one handler command as the agent does: the manifest's command line, leading `/` stripped,
// joined onto the base dir, through /bin/sh -c, cwd = base dir, in a new session. Another
// platform's agent (layout.host) says itself how it starts the line.
export async function runCommand(
  layout: AgentLayout,
  command: HandlerCommand,
  env: CommandEnv = {},
  options: RunCommandOptions = {},
): Promise<CommandResult> {
  const line = await readManifestCommand(layout, command);
  const { host } = layout;
  return runAgentProcess({
    commandLine: path.join(layout.baseDir, line.replace(/^\/+/, '')),
    ...(host ? { argv: host.toArgv(layout, line) } : {}),
    cwd: layout.baseDir,
    env: { ...toBaseEnv(), ...host?.env, ...toAgentEnv(layout, command, env) },
    timeLimitMs: options.timeLimitMs ?? AGENT_TIME_LIMITS_MS[command],
  });
}

// Deleting one run command (protocol.md §8): settings rewritten once more, `disable` for that
// name (its failure ignored, as the agent does), then its settings, status and state files go.
// SINGLE_CONFIG: the same for `<seq>.settings` and `<seq>.status` (the agent's own HandlerState stays).
export async function removeRunCommand(layout: AgentLayout, name: string): Promise<CommandResult | undefined> {
  const current = await findCurrentSettings(layout, name);
  if (current) await rewriteSettings(current.path);
  const result = current ? await runCommand(layout, 'disable', { name, seq: current.seq }) : undefined;
  const settings = (await listSettingsFiles(layout)).filter((file) => file.name === name);
  const doomed = [
    ...settings.map((file) => file.path),
    ...(await readdir(layout.statusFolder).catch(() => []))
      .filter((entry) => entry === path.basename(toStatusPath(layout, name, Number(entry.split('.').at(-2)))))
      .map((entry) => path.join(layout.statusFolder, entry)),
    ...(name === SINGLE_CONFIG ? [] : [path.join(layout.configFolder, `${name}.HandlerState`)]),
  ];
  await Promise.all(doomed.map((file) => rm(file, { force: true })));
  return result;
}

// Each run command's current settings file, by name.
async function listCurrentRunCommands(layout: AgentLayout): Promise<Array<{ name: string; seq: number; path: string }>> {
  const names = [...new Set((await listSettingsFiles(layout)).map((file) => file.name))].sort();
  const current = await Promise.all(names.map((name) => findCurrentSettings(layout, name)));
  return current.filter((file) => file !== undefined);
}

// Removing the handler (protocol.md §8): `disable` per run command, then `uninstall`, then the
// base dir goes. The agent stops at a failing disable; so does this, returning what ran.
export async function removeHandler(layout: AgentLayout): Promise<CommandResult[]> {
  const results: CommandResult[] = [];
  for (const { name, seq } of await listCurrentRunCommands(layout)) {
    const result = await runCommand(layout, 'disable', { name, seq });
    results.push(result);
    if (result.exitCode !== 0) return results;
  }
  results.push(await runCommand(layout, 'uninstall'));
  await removeBaseDir(layout);
  return results;
}

export interface UpdateResult {
  readonly layout: AgentLayout;
  // Every command run, in order, labelled like `old disable a`, `new update`.
  readonly steps: Array<{ step: string; result: CommandResult }>;
}

// A version update with updateMode UpdateWithInstall (protocol.md §8): old disable per run command,
// mrseq and status/* copied, new update, old uninstall, old dir deleted, new install, new enable per
// run command. Stops where the agent does: after a failed update or install.
export async function updateHandler(from: AgentLayout, options: { zip: string; version: string }): Promise<UpdateResult> {
  const to = await makeAgentLayout({ ...options, alongside: from });
  const steps: UpdateResult['steps'] = [];
  const run = async (step: string, layout: AgentLayout, command: HandlerCommand, env: CommandEnv): Promise<number> => {
    const result = await runCommand(layout, command, env);
    steps.push({ step, result });
    return result.exitCode;
  };
  const runCommands = await listCurrentRunCommands(from);
  await Promise.all(runCommands.map((file) => copyFile(file.path, path.join(to.configFolder, path.basename(file.path)))));
  const disableCodes: Array<{ extensionName: string; exitCode: string }> = [];
  for (const { name, seq } of runCommands) {
    disableCodes.push({ extensionName: name, exitCode: String(await run(`old disable ${name}`, from, 'disable', { name, seq })) });
  }
  await copyUpdateState(from, to);
  const updated = await run('new update', to, 'update', {
    extra: {
      VERSION: to.version,
      AZURE_GUEST_AGENT_UPDATING_FROM_VERSION: from.version,
      AZURE_GUEST_AGENT_DISABLE_CMD_EXIT_CODES_MULTIPLE_EXTENSIONS: toAgentJson(disableCodes),
    },
  });
  if (updated !== 0) return { layout: to, steps };
  const uninstalled = String(await run('old uninstall', from, 'uninstall', {}));
  await removeBaseDir(from);
  const extra = { AZURE_GUEST_AGENT_UNINSTALL_CMD_EXIT_CODE: uninstalled };
  if ((await run('new install', to, 'install', { extra })) !== 0) return { layout: to, steps };
  for (const { name, seq } of runCommands) await run(`new enable ${name}`, to, 'enable', { name, seq, extra });
  return { layout: to, steps };
}

// What the agent carries from the old version's dir to the new one: mrseq and status/*.
async function copyUpdateState(from: AgentLayout, to: AgentLayout): Promise<void> {
  await copyFile(path.join(from.baseDir, 'mrseq'), path.join(to.baseDir, 'mrseq')).catch(() => undefined);
  await cp(from.statusFolder, to.statusFolder, { recursive: true, force: true });
}

// Test teardown: `uninstall` (errors ignored), then every process under the root is killed and
// the root removed.
export async function cleanupLayout(layout: AgentLayout): Promise<void> {
  if (await isInstalled(layout)) {
    await runCommand(layout, 'uninstall', {}, { timeLimitMs: 60_000 }).catch(() => undefined);
  }
  await killProcessesUnder(layout.root, layout.host ? [layout.host.toAgentPath(layout.root)] : []);
  await rm(layout.root, { recursive: true, force: true });
}
