// Compiles the run wrappers:
// - src/runner/native/rch-exec.c to dist/native/rch-exec with the system C compiler: statically
//   linked where libc.a is available (so the packaged binary runs on any distro), dynamically
//   otherwise;
// - src/runner/native/rch-exec-win.c to dist/native/rch-exec.exe with mingw-w64, only when
//   x86_64-w64-mingw32-gcc (or $MINGW_CC) is on PATH: without it the Linux build is all there is.
// Skips a compile when the binary is newer than its source.
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

function modifiedAt(path) {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return undefined;
  }
}

function fail(message) {
  console.error(`build-native: ${message}`);
  process.exit(1);
}

function isUpToDate(source, output) {
  const builtAt = modifiedAt(output);
  return builtAt !== undefined && builtAt >= (modifiedAt(source) ?? Infinity);
}

function hasCompiler(compiler) {
  const probe = spawnSync(compiler, ['--version'], { stdio: 'ignore' });
  return !probe.error && probe.status === 0;
}

// Compiles to a temp name and renames, so a concurrent reader never sees a half-written binary.
// Each entry of linkVariants is tried in turn until one links.
function compile(compiler, flags, linkVariants, source, output) {
  mkdirSync(dirname(output), { recursive: true });
  const temp = `${output}.${process.pid}.tmp`;
  let result;
  for (const link of linkVariants) {
    result = spawnSync(compiler, [...flags, ...link, '-o', temp, source], { encoding: 'utf8' });
    if (!result.error && result.status === 0) break;
  }
  if (result.error || result.status !== 0) {
    rmSync(temp, { force: true });
    fail(`compiling ${source} failed:\n${result.stderr || result.error?.message || ''}`);
  }
  chmodSync(temp, 0o755);
  renameSync(temp, output);
}

function buildLinux() {
  const source = join(root, 'src/runner/native/rch-exec.c');
  const output = join(root, 'dist/native/rch-exec');
  if (isUpToDate(source, output)) return;
  const compiler = process.env.CC || 'cc';
  if (!hasCompiler(compiler)) {
    fail(`no C compiler found ('${compiler}'); install one (e.g. apt-get install gcc) or set CC`);
  }
  const flags = ['-std=c11', '-D_GNU_SOURCE', '-O2', '-Wall', '-Wextra', '-Werror'];
  compile(compiler, flags, [['-static'], []], source, output);
}

// Optional: the Windows wrapper (docs/windows-wrapper.md) is built where the cross compiler is
// installed (scripts/install-windows-toolchain.sh) and silently left out elsewhere.
function buildWindows() {
  const source = join(root, 'src/runner/native/rch-exec-win.c');
  const output = join(root, 'dist/native/rch-exec.exe');
  const compiler = process.env.MINGW_CC || 'x86_64-w64-mingw32-gcc';
  if (isUpToDate(source, output) || !hasCompiler(compiler)) return;
  compile(compiler, ['-O2', '-Wall', '-Wextra', '-Werror', '-municode'], [[]], source, output);
}

buildLinux();
buildWindows();
