// Compiles the run wrapper (src/runner/native/rch-exec.c) to dist/native/rch-exec with the system C
// compiler: statically linked where libc.a is available (so the packaged binary runs on any distro),
// dynamically otherwise. Skips the compile when the binary is newer than the source.
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const source = join(root, 'src/runner/native/rch-exec.c');
const output = join(root, 'dist/native/rch-exec');
const compiler = process.env.CC || 'cc';
const flags = ['-std=c11', '-D_GNU_SOURCE', '-O2', '-Wall', '-Wextra', '-Werror'];

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

const builtAt = modifiedAt(output);
if (builtAt !== undefined && builtAt >= (modifiedAt(source) ?? Infinity)) process.exit(0);

const probe = spawnSync(compiler, ['--version'], { stdio: 'ignore' });
if (probe.error || probe.status !== 0) {
  fail(`no C compiler found ('${compiler}'); install one (e.g. apt-get install gcc) or set CC`);
}

// Compile to a temp name and rename, so a concurrent reader never sees a half-written binary.
mkdirSync(dirname(output), { recursive: true });
const temp = `${output}.${process.pid}.tmp`;
let result;
for (const link of [['-static'], []]) {
  result = spawnSync(compiler, [...flags, ...link, '-o', temp, source], { encoding: 'utf8' });
  if (!result.error && result.status === 0) break;
}
if (result.error || result.status !== 0) {
  rmSync(temp, { force: true });
  fail(`compiling ${source} failed:\n${result.stderr || result.error?.message || ''}`);
}
chmodSync(temp, 0o755);
renameSync(temp, output);
