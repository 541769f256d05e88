// An in-process daemon on a temp layout laid out like /var/lib/waagent, with real processes,
// real files and real openssl: for tests of the daemon's decisions without packaging.
import { mkdir, mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { HandlerPaths } from '../../src/config/handler-paths.js';
import { parseOptions, type Options } from '../../src/config/options.js';
import { Daemon } from '../../src/handler/daemon/daemon.js';
import { makeHandlerContext, type HandlerContext } from '../../src/handler/infra/context.js';
import type { Log, LogMeta } from '../../src/handler/infra/logger.js';
import { Redactor } from '../../src/handler/infra/redact.js';
import { linuxPlatform } from '../../src/platform/linux.js';
import { makeRunDeps } from '../../src/handler/daemon/run-deps.js';
import { systemClock } from '../../src/util/time.js';
import { writeSettings as writeAgentSettings, type SettingsLayout } from './agent-settings.js';
import { readStatus as readAgentStatus, type InstanceView } from './agent-status.js';

export interface Harness {
  readonly root: string;
  readonly context: HandlerContext;
  readonly paths: HandlerPaths;
  readonly options: Options;
  readonly lines: string[];
  daemon: Daemon;
  // The layout as the agent simulator's settings writer sees it (its certificate made on first use).
  readonly agent: SettingsLayout;
}

// A log that keeps its lines in memory (they are checked for secrets).
export function makeMemoryLog(lines: string[], redactor: Redactor): Log {
  const write = (level: string) => (message: string, meta?: LogMeta) => {
    lines.push(redactor.redact(JSON.stringify({ level, message, ...meta })));
  };
  return { debug: write('debug'), info: write('info'), warn: write('warn'), error: write('error') };
}

// Makes a temp agent layout and a daemon on it (not started).
export async function makeHarness(env: Record<string, string> = {}): Promise<Harness> {
  const root = await mkdtemp(join(tmpdir(), 'rch-daemon-'));
  const base = join(root, 'waagent', 'Microsoft.CPlat.Core.RunCommandHandlerLinux-1.0.0');
  const environment = { configFolder: join(base, 'config'), statusFolder: join(base, 'status'), logFolder: join(root, 'log') };
  await mkdir(environment.configFolder, { recursive: true });
  const options = parseOptions({ RUNCOMMAND_HANDLER_STATUS_INTERVAL_MS: '200', RUNCOMMAND_HANDLER_KILL_GRACE_MS: '1000', ...env });
  const paths = linuxPlatform.makeHandlerPaths(join(base, 'HandlerEnvironment.json'), environment, options);
  const context = makeHandlerContext({ paths, options, version: 'test', platform: linuxPlatform });
  const agent: SettingsLayout = { configFolder: paths.configFolder, libDir: paths.libDir, certificate: undefined };
  const harness: Harness = { root, context, paths, options, lines: [], daemon: undefined as unknown as Daemon, agent };
  harness.daemon = makeDaemon(harness);
  return harness;
}

// A fresh daemon for the harness (e.g. after the previous one stopped).
export function makeDaemon(harness: Harness): Daemon {
  const redactor = new Redactor();
  return new Daemon({
    context: harness.context,
    log: makeMemoryLog(harness.lines, redactor),
    redactor,
    clock: systemClock,
    runDeps: makeRunDeps(harness.context, { PATH: process.env['PATH'] ?? '' }, (text) => redactor.redact(text)),
  });
}

// Writes `<name>.<seq>.settings` the way the agent does (the agent simulator's own writer: one line,
// nulls, protected settings encrypted to a certificate made in the lib dir on first use).
export async function writeSettings(harness: Harness, name: string, seq: number, publicSettings: unknown, protectedSettings?: object): Promise<string> {
  return writeAgentSettings(harness.agent, name, seq, { publicSettings, ...(protectedSettings === undefined ? {} : { protectedSettings }) });
}

export interface ParsedStatus {
  readonly status: string;
  readonly view: InstanceView;
}

// Reads a status file as the agent does (validated); undefined when absent.
export async function readStatus(harness: Harness, name: string, seq: number): Promise<ParsedStatus | undefined> {
  const report = await readAgentStatus(harness.paths, name, seq);
  return report === undefined ? undefined : { status: report.topStatus.status.status, view: report.instanceView };
}

// Polls `probe` until it returns a value that satisfies `done`; throws with the last value on timeout.
export async function waitFor<T>(probe: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last = await probe();
  while (!done(last)) {
    if (Date.now() > deadline) throw new Error(`timed out waiting; last value: ${JSON.stringify(last)}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
    last = await probe();
  }
  return last;
}

// Waits for a status whose executionState is terminal.
export function waitForTerminal(harness: Harness, name: string, seq: number, timeoutMs?: number): Promise<ParsedStatus> {
  const terminal = ['Succeeded', 'Failed', 'TimedOut', 'Canceled'];
  return waitFor(() => readStatus(harness, name, seq), (s) => s !== undefined && terminal.includes(s.view.executionState), timeoutMs) as Promise<ParsedStatus>;
}

// Pids of live processes whose command line contains `marker`.
export async function findProcesses(marker: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.includes(marker)) pids.push(Number(entry));
  }
  return pids;
}

// Stops the daemon (canceling its runs) and removes the layout.
export async function disposeHarness(harness: Harness): Promise<void> {
  await harness.daemon.stop(true).catch(() => undefined);
  await rm(harness.root, { recursive: true, force: true });
}
