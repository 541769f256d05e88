#!/usr/bin/env node
// Builds the extension zip from an already-built tree (`npm run package` builds first): the
// handler bundled by esbuild from src/ (dist/cli.js plus lazily loaded chunks under dist/chunks/,
// with source maps; no node_modules), the native wrapper and the Linux command catalogue from
// dist/, the shim, the manifest, package.json and a stripped copy of this node, xz-compressed
// (bin/node.xz, unpacked by the shim's first command with dist/native/rch-unpack: pack-node.mjs).
// Usage: node scripts/package.mjs [--force] [--version X.Y.Z] [--no-strip]
// The zip's absolute path is the last line of stdout; progress goes to stderr.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { bundle } from './bundle.mjs';
import {
  buildDir,
  copyCatalogue,
  describeZip,
  fail,
  parseArgs,
  readRepoVersion,
  recordZipFigures,
  root,
  validateNoSymlinks,
  writeStagedPackageJson,
  writeZip,
} from './package-common.mjs';
import { packNode, stampShim } from './pack-node.mjs';

function log(message) {
  process.stderr.write(`package: ${message}\n`);
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
  const inputs = ['src', 'dist', 'bin', 'package-lock.json', 'package.json', 'HandlerManifest.json', 'scripts/package.mjs', 'scripts/package-common.mjs', 'scripts/bundle.mjs', 'scripts/pack-node.mjs'];
  const newestInput = Math.max(
    ...inputs.map((input) => readNewestMtime(path.join(root, input))),
    fs.statSync(process.execPath).mtimeMs,
  );
  return zip.mtimeMs > newestInput;
}

// Copies an executable (this node, the wrapper) without its symbol table and debug info when
// `strip` is there (the dynamic symbols that native addons link against stay), else as is.
function copyExecutable(source, target, strip) {
  if (strip) {
    const result = spawnSync('strip', ['--strip-all', '-o', target, source], { stdio: ['ignore', 'inherit', 'inherit'] });
    if (!result.error && result.status === 0) return;
    log(`strip ${source} failed (${result.error?.message ?? `exit ${result.status}`}): shipping it unstripped`);
  }
  fs.copyFileSync(source, target);
}

// Lays out everything the zip contains under `stage`.
async function populateStage(stage, version, options) {
  if (!fs.existsSync(path.join(root, 'dist', 'native', 'rch-unpack'))) fail('dist/native/rch-unpack is missing: install liblzma-dev, then `npm run build`');
  fs.copyFileSync(path.join(root, 'HandlerManifest.json'), path.join(stage, 'HandlerManifest.json'));
  fs.mkdirSync(path.join(stage, 'bin'));
  fs.copyFileSync(path.join(root, 'bin', 'runcommand-handler'), path.join(stage, 'bin', 'runcommand-handler'));
  copyExecutable(process.execPath, path.join(stage, 'bin', 'node'), options.strip);
  stampShim(path.join(stage, 'bin', 'runcommand-handler'), packNode(stage, path.join(buildDir, 'cache'), log));
  for (const name of fs.readdirSync(path.join(stage, 'bin'))) {
    fs.chmodSync(path.join(stage, 'bin', name), 0o755);
  }
  await bundle(stage, log, 'linux');
  fs.mkdirSync(path.join(stage, 'dist', 'native'));
  // The Linux helpers: the run wrapper, the protected-settings decryptor, the node unpacker and
  // the `enable` client (never the Windows .exe).
  for (const helper of ['rch-exec', 'rch-crypto', 'rch-unpack', 'rch-enable']) {
    copyExecutable(path.join(root, 'dist', 'native', helper), path.join(stage, 'dist', 'native', helper), options.strip);
    fs.chmodSync(path.join(stage, 'dist', 'native', helper), 0o755);
  }
  copyCatalogue(stage, 'linux');
  writeStagedPackageJson(stage, version);
  validateNoSymlinks(stage);
}

async function main() {
  const options = parseArgs(process.argv.slice(2), {
    '--force': { key: 'force', value: true },
    '--no-strip': { key: 'strip', value: false },
  });
  options.strip ??= true;
  if (!fs.existsSync(path.join(root, 'dist', 'cli.js'))) fail('dist/cli.js is missing: run `npm run build` first');
  const version = options.version ?? readRepoVersion();
  const zipPath = path.join(buildDir, `runcommand-handler-${version}.zip`);
  if (!options.force && isZipUpToDate(zipPath)) {
    log(`up to date, reusing ${path.relative(root, zipPath)}`);
  } else {
    fs.mkdirSync(path.join(buildDir, 'stage'), { recursive: true });
    // A private stage dir: two versions may be packaged at once by parallel test files.
    const stage = fs.mkdtempSync(path.join(buildDir, 'stage', `${version}-`));
    try {
      await populateStage(stage, version, options);
      // bin/node.xz is stored: deflate cannot shrink xz data.
      const figures = writeZip(stage, zipPath, ['bin/node.xz']);
      recordZipFigures(zipPath, figures);
      log(`wrote ${path.relative(root, zipPath)}: ${describeZip(figures)}`);
    } finally {
      fs.rmSync(stage, { recursive: true, force: true });
    }
  }
  process.stdout.write(`${zipPath}\n`);
}

try {
  await main();
} catch (error) {
  log(`error: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
}
