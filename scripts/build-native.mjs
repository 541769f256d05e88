// Compiles the native helpers with the system C compiler, each skipped when its binary is newer than
// its source:
// - the run wrapper (src/runner/native/rch-exec.c) to dist/native/rch-exec: statically linked where
//   libc.a is available (so the packaged binary runs on any distro), dynamically otherwise;
// - the protected-settings decryptor (rch-crypto.c) to dist/native/rch-crypto: always dynamically
//   linked, because it dlopens libcrypto and a static glibc program can only dlopen with the exact
//   glibc it was built with (glibc before 2.34 needs -ldl). Where it cannot run (no libcrypto, an
//   older glibc) the daemon falls back to `openssl cms`.
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const compiler = process.env.CC || 'cc';
const flags = ['-std=c11', '-D_GNU_SOURCE', '-O2', '-Wall', '-Wextra', '-Werror'];
const targets = [
  { source: 'src/runner/native/rch-exec.c', output: 'dist/native/rch-exec', links: [['-static'], []] },
  { source: 'src/runner/native/rch-crypto.c', output: 'dist/native/rch-crypto', links: [[], ['-ldl']] },
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

// Compiles `source` with the first link options that work, to a temp name then renamed, so a
// concurrent reader never sees a half-written binary.
function build({ source, output, links }) {
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

const stale = targets
  .map((target) => ({ ...target, source: join(root, target.source), output: join(root, target.output) }))
  .filter(({ source, output }) => (modifiedAt(output) ?? -Infinity) < (modifiedAt(source) ?? Infinity));
if (stale.length === 0) process.exit(0);

const probe = spawnSync(compiler, ['--version'], { stdio: 'ignore' });
if (probe.error || probe.status !== 0) {
  fail(`no C compiler found ('${compiler}'); install one (e.g. apt-get install gcc) or set CC`);
}
for (const target of stale) build(target);
