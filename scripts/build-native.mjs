// Compiles the native helpers, each skipped when its binary is newer than its source:
// - the run wrapper (src/runner/native/rch-exec.c) to dist/native/rch-exec with the system C
//   compiler: statically linked where libc.a is available (so the packaged binary runs on any
//   distro), dynamically otherwise;
// - the protected-settings decryptor (rch-crypto.c) to dist/native/rch-crypto: always dynamically
//   linked, because it dlopens libcrypto and a static glibc program can only dlopen with the exact
//   glibc it was built with (glibc before 2.34 needs -ldl). Where it cannot run (no libcrypto, an
//   older glibc) the daemon falls back to `openssl cms`;
// - the Windows wrapper (rch-exec-win.c) to dist/native/rch-exec.exe with mingw-w64, only when
//   x86_64-w64-mingw32-gcc (or $MINGW_CC) is on PATH: without it the Linux build is all there is.
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const linuxFlags = ['-std=c11', '-D_GNU_SOURCE', '-O2', '-Wall', '-Wextra', '-Werror'];
const linuxCompiler = process.env.CC || 'cc';
const windowsCompiler = process.env.MINGW_CC || 'x86_64-w64-mingw32-gcc';
const targets = [
  { source: 'src/runner/native/rch-exec.c', output: 'dist/native/rch-exec', compiler: linuxCompiler, flags: linuxFlags, links: [['-static'], []], required: true },
  { source: 'src/runner/native/rch-crypto.c', output: 'dist/native/rch-crypto', compiler: linuxCompiler, flags: linuxFlags, links: [[], ['-ldl']], required: true },
  // Optional: the Windows wrapper (docs/windows-wrapper.md) needs scripts/install-windows-toolchain.sh.
  { source: 'src/runner/native/rch-exec-win.c', output: 'dist/native/rch-exec.exe', compiler: windowsCompiler, flags: ['-O2', '-Wall', '-Wextra', '-Werror', '-municode'], links: [[]], required: false },
];

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

function hasCompiler(compiler) {
  const probe = spawnSync(compiler, ['--version'], { stdio: 'ignore' });
  return !probe.error && probe.status === 0;
}

// Compiles `source` with the first link options that work, to a temp name then renamed, so a
// concurrent reader never sees a half-written binary.
function build({ source, output, compiler, flags, links }) {
  mkdirSync(dirname(output), { recursive: true });
  const temp = `${output}.${process.pid}.tmp`;
  let result;
  for (const link of links) {
    result = spawnSync(compiler, [...flags, '-o', temp, source, ...link], { encoding: 'utf8' });
    if (!result.error && result.status === 0) break;
  }
  if (result.error || result.status !== 0) {
    rmSync(temp, { force: true });
    fail(`compiling ${source} failed:\n${result.stderr || result.error?.message || ''}`);
  }
  chmodSync(temp, 0o755);
  renameSync(temp, output);
}

for (const target of targets) {
  const source = join(root, target.source);
  const output = join(root, target.output);
  if ((modifiedAt(output) ?? -Infinity) >= (modifiedAt(source) ?? Infinity)) continue;
  if (!hasCompiler(target.compiler)) {
    if (!target.required) continue;
    fail(`no C compiler found ('${target.compiler}'); install one (e.g. apt-get install gcc) or set CC`);
  }
  build({ ...target, source, output });
}
