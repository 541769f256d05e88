#!/usr/bin/env node
// Builds the extension zip from an already-built tree (`npm run package` builds first).
// Usage: node scripts/package.mjs [--force] [--version X.Y.Z]
// The zip's absolute path is the last line of stdout; progress goes to stderr.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const buildDir = path.join(root, 'build');
const nodeModules = path.join(root, 'node_modules');

function log(message) {
  process.stderr.write(`package: ${message}\n`);
}

// Throws so that the stage dir is still removed on the way out.
function fail(message) {
  throw new Error(message);
}

// Reads --force and --version from argv.
function parseArgs(argv) {
  const options = { force: false, version: undefined };
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i];
    if (arg === '--force') options.force = true;
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

// Newest mtime of a file or of anything under a directory (directories count: a deleted file
// changes its directory's mtime).
function readNewestMtime(target) {
  const stat = fs.lstatSync(target, { throwIfNoEntry: false });
  if (!stat) return 0;
  let newest = stat.mtimeMs;
  if (stat.isDirectory()) {
    for (const entry of fs.readdirSync(target)) {
      newest = Math.max(newest, readNewestMtime(path.join(target, entry)));
    }
  }
  return newest;
}

// True when the zip exists and is newer than every input that ends up in it.
function isZipUpToDate(zipPath) {
  const zip = fs.statSync(zipPath, { throwIfNoEntry: false });
  if (!zip) return false;
  const inputs = ['dist', 'bin', 'package-lock.json', 'package.json', 'HandlerManifest.json', 'scripts/package.mjs'];
  const newestInput = Math.max(
    ...inputs.map((input) => readNewestMtime(path.join(root, input))),
    fs.statSync(process.execPath).mtimeMs,
  );
  return zip.mtimeMs > newestInput;
}

// Absolute paths of the production dependencies, from the local tree only (no network).
function listProductionPackages() {
  const result = spawnSync('npm', ['ls', '--omit=dev', '--all', '--parseable'], {
    cwd: root,
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  if (result.status !== 0) fail(`npm ls failed (${result.status}):\n${result.stderr}`);
  const paths = new Set(result.stdout.split('\n').map((line) => line.trim()).filter(Boolean));
  paths.delete(root);
  for (const packagePath of paths) {
    if (!packagePath.startsWith(nodeModules + path.sep)) {
      fail(`dependency outside node_modules (linked package?): ${packagePath}`);
    }
  }
  return [...paths].sort();
}

// Copies one package without its nested node_modules (npm ls lists those separately, so only
// production packages are shipped) and without .bin dirs.
function copyPackage(packagePath, stage) {
  const nested = path.join(packagePath, 'node_modules');
  fs.cpSync(packagePath, path.join(stage, path.relative(root, packagePath)), {
    recursive: true,
    verbatimSymlinks: true,
    filter: (source) => source !== nested && path.basename(source) !== '.bin',
  });
}

// The agent's unzip keeps no symlinks (protocol.md §2): drop those dependencies carry.
function removeLinksAndBinDirs(dir) {
  let removed = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isSymbolicLink() || (entry.isDirectory() && entry.name === '.bin')) {
      fs.rmSync(full, { recursive: true, force: true });
      removed += 1;
    } else if (entry.isDirectory()) {
      removed += removeLinksAndBinDirs(full);
    }
  }
  return removed;
}

// Throws on any symlink left in the stage (ours, in dist/ or bin/, are a build bug).
function validateNoSymlinks(dir) {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isSymbolicLink()) fail(`symlink in package: ${path.relative(dir, full)}`);
    if (entry.isDirectory()) validateNoSymlinks(full);
  }
}

function writeStagedPackageJson(stage, version) {
  const manifest = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
  manifest.version = version;
  fs.writeFileSync(path.join(stage, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
}

// Lays out everything the zip contains under `stage`.
function populateStage(stage, version) {
  fs.copyFileSync(path.join(root, 'HandlerManifest.json'), path.join(stage, 'HandlerManifest.json'));
  fs.mkdirSync(path.join(stage, 'bin'));
  fs.copyFileSync(path.join(root, 'bin', 'runcommand-handler'), path.join(stage, 'bin', 'runcommand-handler'));
  fs.copyFileSync(process.execPath, path.join(stage, 'bin', 'node'));
  for (const name of fs.readdirSync(path.join(stage, 'bin'))) {
    fs.chmodSync(path.join(stage, 'bin', name), 0o755);
  }
  fs.cpSync(path.join(root, 'dist'), path.join(stage, 'dist'), { recursive: true, verbatimSymlinks: true });
  writeStagedPackageJson(stage, version);
  const packages = listProductionPackages();
  for (const packagePath of packages) copyPackage(packagePath, stage);
  const removed = fs.existsSync(path.join(stage, 'node_modules'))
    ? removeLinksAndBinDirs(path.join(stage, 'node_modules'))
    : 0;
  log(`${packages.length} production packages staged, ${removed} symlinks/.bin dirs removed`);
  validateNoSymlinks(stage);
}

// Zips the stage into a temp name and renames it, so a reader never sees a half-written zip.
function writeZip(stage, zipPath) {
  const temp = `${zipPath}.${process.pid}.tmp`;
  fs.rmSync(temp, { force: true });
  const result = spawnSync('zip', ['-r', '-X', '-q', temp, '.'], { cwd: stage, stdio: ['ignore', 'inherit', 'inherit'] });
  if (result.error) fail(`zip: ${result.error.message}`);
  if (result.status !== 0) fail(`zip exited with ${result.status}`);
  fs.renameSync(temp, zipPath);
}

function main() {
  const options = parseArgs(process.argv.slice(2));
  if (!fs.existsSync(path.join(root, 'dist', 'cli.js'))) fail('dist/cli.js is missing: run `npm run build` first');
  const manifest = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
  const version = options.version ?? manifest.version;
  const zipPath = path.join(buildDir, `runcommand-handler-${version}.zip`);
  if (!options.force && isZipUpToDate(zipPath)) {
    log(`up to date, reusing ${path.relative(root, zipPath)}`);
  } else {
    fs.mkdirSync(path.join(buildDir, 'stage'), { recursive: true });
    // A private stage dir: two versions may be packaged at once by parallel test files.
    const stage = fs.mkdtempSync(path.join(buildDir, 'stage', `${version}-`));
    try {
      populateStage(stage, version);
      writeZip(stage, zipPath);
    } finally {
      fs.rmSync(stage, { recursive: true, force: true });
    }
    log(`wrote ${path.relative(root, zipPath)} (${(fs.statSync(zipPath).size / 1048576).toFixed(1)} MiB)`);
  }
  process.stdout.write(`${zipPath}\n`);
}

try {
  main();
} catch (error) {
  log(`error: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
}
