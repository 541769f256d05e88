// The guest agent's on-disk layout for one handler version (protocol.md §1, §3): the package
// unzipped into `<lib>/<Publisher.Type>-<version>/`, HandlerEnvironment.json, config/ status/ and
// the log folder, all under a private temp root.
import { chmod, lstat, mkdir, mkdtemp, readdir, readlink, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { inject } from 'vitest';
import type { AgentCertificate } from './agent-certificates.js';
import { PythonFloat, toAgentJson } from './agent-json.js';

export const HANDLER_NAME = 'Microsoft.CPlat.Core.RunCommandHandlerLinux';

export interface AgentLayout {
  // Private temp root; everything below lives under it.
  readonly root: string;
  // Plays /var/lib/waagent.
  readonly libDir: string;
  // `<libDir>/<Publisher.Type>-<version>`.
  readonly baseDir: string;
  readonly configFolder: string;
  readonly statusFolder: string;
  // Plays /var/log/azure/<Publisher.Type>; shared by every version, kept on uninstall.
  readonly logFolder: string;
  readonly eventsFolder: string;
  readonly version: string;
  // The certificate protected settings are encrypted to (see makeCertificate).
  certificate: AgentCertificate | undefined;
  // The agent of another platform (the Windows agent under Wine); absent for the Linux agent.
  readonly host?: AgentHost;
}

// How the agent of another platform runs a handler command: the program and arguments for a
// manifest command line, what it adds to the environment, and how it spells a path of the layout
// in what it hands the handler (the Windows agent run under Wine: test/windows/agent-windows.ts).
export interface AgentHost {
  toArgv(layout: AgentLayout, commandLine: string): string[];
  toAgentPath(linuxPath: string): string;
  readonly env: NodeJS.ProcessEnv;
}

export interface LayoutOptions {
  // Defaults to the version in the zip's name, else 1.0.0.
  version?: string;
  // Defaults to the zip made by the global setup.
  zip?: string;
  // Install next to another version, in the same lib dir (version updates).
  alongside?: AgentLayout;
  // Leave bin/node.xz packed, as the agent's unzip leaves it (the first command unpacks it). By
  // default the one extraction every layout links to has run that first command already.
  packedNode?: boolean;
}

function resolveZip(zip: string | undefined): string {
  const resolved = zip ?? inject('packageZip');
  if (!resolved) throw new Error('no package zip: dist/cli.js could not be built (see the global setup warning)');
  return resolved;
}

// Installs the package like the agent: unzip, normalize modes, write HandlerEnvironment.json.
export async function makeAgentLayout(options: LayoutOptions = {}): Promise<AgentLayout> {
  const zip = resolveZip(options.zip);
  const version = options.version ?? /-(\d+(?:\.\d+)*)\.zip$/.exec(zip)?.[1] ?? '1.0.0';
  const root = options.alongside?.root ?? (await mkdtemp(path.join(os.tmpdir(), 'rch-agent-')));
  const libDir = path.join(root, 'lib', 'waagent');
  const baseDir = path.join(libDir, `${HANDLER_NAME}-${version}`);
  const logFolder = path.join(root, 'log', 'azure', HANDLER_NAME);
  const layout: AgentLayout = {
    root,
    libDir,
    baseDir,
    configFolder: path.join(baseDir, 'config'),
    statusFolder: path.join(baseDir, 'status'),
    logFolder,
    eventsFolder: path.join(logFolder, 'events'),
    version,
    certificate: options.alongside?.certificate,
  };
  if (await stat(baseDir).catch(() => undefined)) throw new Error(`${baseDir} already exists`);
  await mkdir(libDir, { recursive: true });
  // Hard links to one extraction per zip: unzipping and unpacking node for every test costs seconds.
  await execa('cp', ['-al', await extractOnce(zip, options.packedNode ?? false), baseDir]);
  await mkdir(layout.configFolder, { recursive: true, mode: 0o700 });
  await mkdir(layout.statusFolder, { recursive: true, mode: 0o700 });
  await mkdir(layout.eventsFolder, { recursive: true, mode: 0o700 });
  await writeHandlerEnvironment(layout);
  return layout;
}

const extractions = new Map<string, Promise<string>>();

// Extracts (and normalizes) a zip once per process into a temp dir; returns that dir. When it
// ships bin/node.xz and not `packed`, then runs the shim once (`help`), which unpacks it as the
// agent's first command would: hard links to one unpacked node, not an unpack (≈ 2.7 s CPU) per test.
export function extractOnce(zip: string, packed = false): Promise<string> {
  const key = `${packed ? 'packed' : 'unpacked'}:${zip}`;
  let extraction = extractions.get(key);
  if (extraction === undefined) {
    extraction = (async () => {
      const top = await mkdtemp(path.join(os.tmpdir(), 'rch-unzipped-'));
      process.once('exit', () => rmSync(top, { recursive: true, force: true }));
      const dir = path.join(top, 'package');
      await execa('unzip', ['-q', zip, '-d', dir]);
      await normalizeExtractedTree(dir);
      const hasPackedNode = await stat(path.join(dir, 'bin', 'node.xz')).then(() => true, () => false);
      if (hasPackedNode && !packed) await execa('/bin/sh', [path.join(dir, 'bin', 'runcommand-handler'), 'help'], { cwd: dir });
      return dir;
    })();
    extractions.set(key, extraction);
  }
  return extraction;
}

// The agent extracts with Python's zipfile, which restores neither modes nor symlinks, then adds
// the user-execute bit to every file (protocol.md §2): files end up 0744, a symlink a plain file
// holding its target. `unzip` restores both, so undo that.
async function normalizeExtractedTree(dir: string): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isSymbolicLink()) {
      const target = await readlink(full);
      await unlink(full);
      await writeFile(full, target);
      await chmod(full, 0o744);
    } else if (entry.isDirectory()) {
      await chmod(full, 0o755);
      await normalizeExtractedTree(full);
    } else {
      await chmod(full, 0o744);
    }
  }
}

// HandlerEnvironment.json exactly as protocol.md §3 shows it, serialized like the agent (json.dumps).
async function writeHandlerEnvironment(layout: AgentLayout): Promise<void> {
  const environment = [
    {
      name: HANDLER_NAME,
      version: new PythonFloat(1),
      handlerEnvironment: {
        logFolder: layout.logFolder,
        configFolder: layout.configFolder,
        statusFolder: layout.statusFolder,
        heartbeatFile: path.join(layout.baseDir, 'heartbeat.log'),
        eventsFolder: layout.eventsFolder,
        eventsFolder_preview: layout.eventsFolder,
      },
    },
  ];
  await writeFile(path.join(layout.baseDir, 'HandlerEnvironment.json'), toAgentJson(environment));
}

// True when the layout's base dir still exists (the agent deletes it after uninstall).
export async function isInstalled(layout: AgentLayout): Promise<boolean> {
  return (await lstat(layout.baseDir).catch(() => undefined))?.isDirectory() ?? false;
}

// Deletes the base dir as the agent does after uninstall; the log folder stays (protocol.md §1).
export async function removeBaseDir(layout: AgentLayout): Promise<void> {
  await rm(layout.baseDir, { recursive: true, force: true });
}
