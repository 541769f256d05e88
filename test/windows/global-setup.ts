// Prepares the Windows lane once per run: finds Wine, checks the mingw-built wrapper, readies the
// Wine prefix (scripts/make-wine-prefix.sh) with the pwsh.exe stand-in at the Windows PowerShell
// path, compiles the probe fixture, and keeps one wineserver and one desktop up for the whole run
// (`wineserver -p`, `probe.exe desktop`), killed at the end. Without Wine the lane is skipped; with
// Wine, any missing prerequisite fails the run: the lane installs nothing itself.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, mkdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestProject } from 'vitest/node';
import { installPowerShellStandIn, wineEnv, type WineLane } from './wine.js';

declare module 'vitest' {
  export interface ProvidedContext {
    // null when Wine is not installed: the lane's tests skip.
    wineLane: WineLane | null;
    // `npm run package:windows`, run once for the lane (null when rch-exec.exe is not built).
    windowsPackage: WindowsPackage | null;
  }
}

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface WindowsPackage {
  // The zip's path: the last line of stdout.
  zipPath: string;
  stdout: string;
  stderr: string;
  ms: number;
}

// `npm run package:windows` (a full `npm run build`, then the zip), once for the whole lane: the
// package test checks what it printed and made, the daemon test installs the zip, and the
// process-layer test needs the dist/ it builds. Needs the mingw-built wrapper.
function packageWindows(): WindowsPackage | null {
  if (!existsSync(path.join(root, 'dist/native/rch-exec.exe'))) return null;
  const started = Date.now();
  const result = spawnSync('npm', ['run', 'package:windows'], { cwd: root, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, timeout: 900_000 });
  if (result.error || result.status !== 0) throw new Error(`npm run package:windows failed: ${result.error?.message ?? `status ${result.status}`}\n${result.stderr}`);
  const zipPath = result.stdout.trimEnd().split('\n').at(-1) ?? '';
  console.warn(`windows lane: npm run package:windows took ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return { zipPath, stdout: result.stdout, stderr: result.stderr, ms: Date.now() - started };
}

function findExecutable(candidates: readonly string[]): string | undefined {
  const dirs = (process.env['PATH'] ?? '').split(':').filter(Boolean);
  for (const candidate of candidates) {
    const paths = candidate.includes('/') ? [candidate] : dirs.map((dir) => path.join(dir, candidate));
    for (const full of paths) {
      try {
        accessSync(full, constants.X_OK);
        return full;
      } catch {
        // next
      }
    }
  }
  return undefined;
}

function isNewer(file: string, than: string): boolean {
  return existsSync(file) && statSync(file).mtimeMs >= statSync(than).mtimeMs;
}

// The wrapper comes from `node scripts/build-native.mjs` (npm run test:windows runs it first).
function requireWrapper(): string {
  const wrapper = path.join(root, 'dist/native/rch-exec.exe');
  if (!isNewer(wrapper, path.join(root, 'src/runner/native/rch-exec-win.c'))) {
    throw new Error('dist/native/rch-exec.exe is missing or stale: run `node scripts/build-native.mjs` with x86_64-w64-mingw32-gcc on PATH (scripts/install-windows-toolchain.sh)');
  }
  return wrapper;
}

function compileProbe(): string {
  const source = path.join(root, 'test/windows/fixtures/probe.c');
  const output = path.join(root, '.cache/windows-lane/probe.exe');
  if (isNewer(output, source)) return output;
  const compiler = findExecutable([process.env['MINGW_CC'] ?? 'x86_64-w64-mingw32-gcc']);
  if (compiler === undefined) throw new Error('x86_64-w64-mingw32-gcc not found: run scripts/install-windows-toolchain.sh');
  mkdirSync(path.dirname(output), { recursive: true });
  execFileSync(compiler, ['-O2', '-Wall', '-Wextra', '-Werror', '-municode', '-o', output, source], { stdio: 'inherit' });
  return output;
}

function findPwsh(): string {
  const pwsh = process.env['RCH_PWSH_WINE'] ?? path.join(root, '.cache/pwsh-wine/pwsh.exe');
  return existsSync(pwsh) ? pwsh : '';
}

export default function setup(project: TestProject): (() => void) | undefined {
  const wine = findExecutable(['wine64', '/usr/lib/wine/wine64', 'wine']);
  if (wine === undefined) {
    console.warn('windows lane: wine64/wine not found, every test is skipped (scripts/install-windows-toolchain.sh installs it)');
    project.provide('wineLane', null);
    project.provide('windowsPackage', packageWindows());
    return undefined;
  }
  const wineserver = findExecutable(['wineserver', '/usr/lib/wine/wineserver']);
  if (wineserver === undefined) throw new Error(`${wine} is installed but wineserver is not`);
  const prefix = path.resolve(process.env['RCH_WINE_PREFIX'] ?? path.join(root, '.cache/wine-prefix'));
  const lane: WineLane = { wine, wineserver, prefix, wrapper: requireWrapper(), probe: compileProbe(), pwsh: findPwsh() };
  execFileSync('sh', [path.join(root, 'scripts/make-wine-prefix.sh'), prefix], { stdio: ['ignore', 'inherit', 'inherit'] });
  if (lane.pwsh !== '') installPowerShellStandIn(lane);
  // Before any test: it fetches and verifies node.exe (the process-layer tests use it from the
  // cache) and builds dist/ (which they import), whatever order the files run in.
  project.provide('windowsPackage', packageWindows());
  const server = spawnSync(wineserver, ['-p'], { env: wineEnv(lane), stdio: 'inherit', timeout: 30_000 });
  if (server.error || server.status !== 0) throw new Error(`wineserver -p failed: ${server.error?.message ?? `status ${server.status}`}`);
  // The first Windows process of a session starts Wine's own services (explorer, services, ...), which
  // inherit its Unix stdio and live as long as the wineserver: start them here, on /dev/null.
  const warm = spawnSync(wine, ['cmd.exe', '/d', '/c', 'exit 0'], { env: wineEnv(lane), stdio: 'ignore', timeout: 120_000 });
  if (warm.error || warm.status !== 0) throw new Error(`wine cannot start cmd.exe in ${prefix}: ${warm.error?.message ?? `status ${warm.status}`}`);
  // Wine starts explorer.exe /desktop when a process first needs the desktop (PowerShell does) and
  // ends it when the desktop has no user left; the explorer gets a copy of the std handles of the
  // process that needed it. Started by the handler's decryption PowerShell, it held that process's
  // stderr pipe, so the daemon never saw the pipe close and waited forever. A desktop user for the
  // whole run, on /dev/null, starts it first and keeps it (the wineserver -k below ends it).
  spawn(wine, [lane.probe, 'desktop'], { env: wineEnv(lane), stdio: 'ignore', detached: true }).unref();
  console.warn(`windows lane: ${wine}, prefix ${prefix}, pwsh ${lane.pwsh === '' ? 'not built (scripts/build-pwsh-wine.sh): its tests skip' : lane.pwsh}`);
  project.provide('wineLane', lane);
  return () => {
    spawnSync(wineserver, ['-k'], { env: wineEnv(lane), stdio: 'inherit', timeout: 30_000 });
  };
}
