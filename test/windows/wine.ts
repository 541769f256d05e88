// Helpers of the Windows lane: running Windows programs under Wine from Linux and watching them.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readdirSync, readlinkSync, rmSync, symlinkSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';

// What the lane's global setup found; paths are Linux paths.
export interface WineLane {
  wine: string;
  wineserver: string;
  prefix: string;
  wrapper: string;
  probe: string;
  pwsh: string; // '' when scripts/build-pwsh-wine.sh has not been run
}

// The environment of every Wine process of the lane (shared/windows-under-wine.md, prefix recipe).
export function wineEnv(lane: WineLane): NodeJS.ProcessEnv {
  return { ...process.env, WINEPREFIX: lane.prefix, WINEDEBUG: '-all', WINEDLLOVERRIDES: 'winedbg.exe=d' };
}

// Wine's powershell.exe at the Windows PowerShell 5.1 path is a stub (it prints nothing and exits
// 0), and the handler decrypts protected settings with that path (protected-settings.windows.ts):
// the lane puts its pwsh.exe stand-in there. The folder gets a link to each file of the stand-in and
// powershell.exe links to pwsh.exe (the apphost finds its app by a name built into it, not by its
// own file name). Done on every run: a prefix update by Wine may bring the stub back.
export function installPowerShellStandIn(lane: WineLane): void {
  const folder = join(lane.prefix, 'drive_c/windows/system32/WindowsPowerShell/v1.0');
  const target = join(folder, 'powershell.exe');
  try {
    if (readlinkSync(target) === lane.pwsh) return;
  } catch {
    // the stub (a file) or nothing: replaced below
  }
  rmSync(folder, { recursive: true, force: true });
  mkdirSync(folder, { recursive: true });
  for (const name of readdirSync(dirname(lane.pwsh))) symlinkSync(join(dirname(lane.pwsh), name), join(folder, name));
  symlinkSync(lane.pwsh, target);
}

// Z: maps / in every Wine prefix.
export function toWindowsPath(linuxPath: string): string {
  return `Z:${linuxPath.replaceAll('/', '\\')}`;
}

export interface Exited {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface Started {
  child: ChildProcess;
  exited: Promise<Exited>;
  readStdout: () => Promise<string>;
}

let started = 0;

// Starts `wine <program> args...` in cwd. Its stdout and stderr go to files in cwd, not pipes: the
// Wine processes it starts may keep a pipe open long after it exits, so 'close' would never come.
export function startWine(lane: WineLane, program: string, args: readonly string[], cwd: string): Started {
  const base = join(cwd, `wine-${process.pid}-${(started += 1)}`);
  const out = openSync(`${base}.out`, 'w');
  const err = openSync(`${base}.err`, 'w');
  const child = spawn(lane.wine, [program, ...args], { cwd, env: wineEnv(lane), stdio: ['ignore', out, err] });
  closeSync(out);
  closeSync(err);
  const readStdout = async () => (await readText(`${base}.out`)) ?? '';
  const exited = new Promise<Exited>((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      void Promise.all([readStdout(), readText(`${base}.err`)]).then(([stdout, stderr]) => resolve({ code, signal, stdout, stderr: stderr ?? '' }));
    });
  });
  return { child, exited, readStdout };
}

// Starts rch-exec.exe on a run dir (Linux path) and a Windows program with its arguments.
export function startWrapper(lane: WineLane, cwd: string, runDir: string, command: readonly string[], options: { graceMs?: number; verbatim?: boolean; maxOutput?: number } = {}): Started {
  const cap = options.maxOutput === undefined ? [] : ['--max-output', String(options.maxOutput)];
  const flags = ['--grace-ms', String(options.graceMs ?? 2000), ...cap, ...(options.verbatim === true ? ['--verbatim-args'] : [])];
  return startWine(lane, lane.wrapper, [...flags, toWindowsPath(runDir), ...command], cwd);
}

// Polls probe until done says yes; fails with the last value after timeoutMs.
export async function waitFor<T>(probe: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last = await probe();
  while (!done(last)) {
    if (Date.now() > deadline) throw new Error(`timed out waiting; last value: ${JSON.stringify(last)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
    last = await probe();
  }
  return last;
}

export async function readText(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
}

// Waits for a JSON file that the wrapper writes atomically, and parses it.
export async function waitForJson(path: string, timeoutMs = 30_000): Promise<{ text: string; value: Record<string, unknown> }> {
  const text = await waitFor(() => readText(path), (value) => value !== undefined, timeoutMs);
  return { text: text ?? '', value: JSON.parse(text ?? '') as Record<string, unknown> };
}

export interface LinuxProcess {
  pid: number;
  stat: string;
  args: string;
}

// Live Linux processes whose command line holds token. Each Windows process is a Linux process
// under Wine, shown with its Windows command line; killed ones linger as zombies here (PID 1 does
// not reap them), so state Z does not count as alive.
export function listLiveProcesses(token: string): LinuxProcess[] {
  const out = execFileSync('ps', ['-eo', 'pid=,stat=,args='], { encoding: 'utf8' });
  return out
    .split('\n')
    .map((line) => /^\s*(\d+)\s+(\S+)\s+(.*)$/.exec(line))
    .filter((match): match is RegExpExecArray => match !== null)
    .map((match) => ({ pid: Number(match[1]), stat: match[2] ?? '', args: match[3] ?? '' }))
    .filter((entry) => entry.args.includes(token) && !entry.stat.startsWith('Z') && entry.pid !== process.pid);
}

// After a test: kills (by pid) whatever it left behind, so a failure cannot leak into the next test.
export function killLeftovers(token: string): void {
  for (const entry of listLiveProcesses(token)) {
    try {
      process.kill(entry.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}
