// An in-process daemon on a temp layout laid out like /var/lib/waagent, with real processes,
// real files and real openssl: for tests of the daemon's decisions without packaging.
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
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
import { toAgentJson } from '../../src/handler/cli/submit.js';
import { encryptToCertificate } from '../../src/handler/cli/local-layout.js';
import { systemClock } from '../../src/util/time.js';
import { makeCertificate, type TestCertificate } from './certificates.js';

export interface Harness {
  readonly root: string;
  readonly context: HandlerContext;
  readonly paths: HandlerPaths;
  readonly options: Options;
  readonly lines: string[];
  daemon: Daemon;
  certificate?: TestCertificate;
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
  const harness: Harness = { root, context, paths, options, lines: [], daemon: undefined as unknown as Daemon };
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

// Writes `<name>.<seq>.settings` the way the agent does (one line, nulls, encrypted protected settings).
export async function writeSettings(harness: Harness, name: string, seq: number, publicSettings: unknown, protectedSettings?: unknown): Promise<string> {
  let protectedText: string | null = null;
  let thumbprint: string | null = null;
  if (protectedSettings !== undefined) {
    harness.certificate ??= await makeCertificate(harness.paths.libDir);
    protectedText = await encryptToCertificate(JSON.stringify(protectedSettings), harness.certificate.crtPath);
    thumbprint = harness.certificate.thumbprint;
  }
  const path = join(harness.paths.configFolder, `${name}.${seq}.settings`);
  const handlerSettings = { publicSettings, protectedSettings: protectedText, protectedSettingsCertThumbprint: thumbprint };
  await writeFile(path, toAgentJson({ runtimeSettings: [{ handlerSettings }] }));
  return path;
}

export interface ParsedStatus {
  readonly status: string;
  readonly view: { executionState: string; executionMessage: string; output: string; error: string; exitCode: number; startTime: string; endTime: string };
}

// Reads a status file; undefined when absent.
export async function readStatus(harness: Harness, name: string, seq: number): Promise<ParsedStatus | undefined> {
  const text = await readFile(join(harness.paths.statusFolder, `${name}.${seq}.status`), 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  const [entry] = JSON.parse(text) as [{ status: { status: string; formattedMessage: { message: string } } }];
  return { status: entry.status.status, view: JSON.parse(entry.status.formattedMessage.message) as ParsedStatus['view'] };
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
