#!/usr/bin/env node
// Builds the extension zip from an already-built tree (`npm run package` builds first): the
// handler bundled by esbuild from src/ (dist/cli.js plus lazily loaded chunks under dist/chunks/,
// with source maps; no node_modules), the native wrapper and the Linux command catalogue from
// dist/, the shim, the manifest, package.json and a stripped copy of this node.
// Usage: node scripts/package.mjs [--force] [--version X.Y.Z] [--no-strip]
// The zip's absolute path is the last line of stdout; progress goes to stderr.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const buildDir = path.join(root, 'build');

function log(message) {
  process.stderr.write(`package: ${message}\n`);
}

// Throws so that the stage dir is still removed on the way out.
function fail(message) {
  throw new Error(message);
}

// Reads --force and --version from argv.
function parseArgs(argv) {
  const options = { force: false, version: undefined, strip: true };
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i];
    if (arg === '--force') options.force = true;
    else if (arg === '--no-strip') options.strip = false;
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
  const inputs = ['src', 'dist', 'bin', 'package-lock.json', 'package.json', 'HandlerManifest.json', 'scripts/package.mjs'];
  const newestInput = Math.max(
    ...inputs.map((input) => readNewestMtime(path.join(root, input))),
    fs.statSync(process.execPath).mtimeMs,
  );
  return zip.mtimeMs > newestInput;
}

// zod re-exports every locale (`z.locales`, `z.core.locales`: ~360 KB, which `z` carries as one
// object, so the bundler cannot drop them); the handler uses only the default English messages.
// This swaps zod's locales index for one that exports `en` alone: less to load on each `enable`.
const zodEnglishOnly = {
  name: 'zod-english-only',
  setup(build) {
    build.onResolve({ filter: /^\.\.\/locales\/index\.js$/ }, (args) => {
      if (!/[\\/]node_modules[\\/]zod[\\/]v4[\\/](classic|core|mini)[\\/][^\\/]+\.js$/.test(args.importer)) return undefined;
      return { path: path.join(path.dirname(args.importer), '..', 'locales', 'index.js'), namespace: 'zod-english-only' };
    });
    build.onLoad({ filter: /.*/, namespace: 'zod-english-only' }, (args) => ({
      contents: `export { default as en } from ${JSON.stringify(path.join(path.dirname(args.path), 'en.js'))};\n`,
      resolveDir: path.dirname(args.path),
    }));
  },
};

// `enable` is an entry of its own (src/handler/commands/enable-main.ts): the CLI's import of it stays
// an import of the file bundleEnable writes, at the path tsc gives it, so that the command the agent
// runs on every goal state loads one file with only what it needs (none of the shared chunks,
// which hold zod's whole core for the daemon's settings schema).
const enableApart = {
  name: 'enable-apart',
  setup(build) {
    build.onResolve({ filter: /^\.\/handler\/commands\/enable-main\.js$/ }, (args) => (args.importer === path.join(root, 'src', 'cli.ts') ? { path: args.path, external: true } : undefined));
  },
};

// This zip is Linux's: the Windows platform value (src/platform/select.ts chooses it on win32
// only) is left out of it, with its process layer, RunAs, decryption and node:crypto.
const linuxOnly = {
  name: 'linux-only',
  setup(build) {
    build.onResolve({ filter: /^\.\/windows\.js$/ }, (args) => (args.importer === path.join(root, 'src', 'platform', 'select.ts') ? { path: args.path, namespace: 'linux-zip' } : undefined));
    build.onLoad({ filter: /.*/, namespace: 'linux-zip' }, () => ({ contents: 'export const windowsPlatform = undefined;\n', loader: 'js' }));
  },
};

// In enable's file every dynamic import of a module (not of a Node builtin) is a stub that throws
// if ever loaded: enable never decrypts, never logs through winston and never streams, and without
// code splitting those imports would be inlined, execa, winston and all.
const enableOnly = {
  name: 'enable-only',
  setup(build) {
    build.onResolve({ filter: /.*/ }, (args) => (args.kind === 'dynamic-import' && !args.path.startsWith('node:') ? { path: args.path, namespace: 'not-in-enable' } : undefined));
    build.onLoad({ filter: /.*/, namespace: 'not-in-enable' }, (args) => ({
      contents: `throw new Error(${JSON.stringify(`${args.path} is not in the enable bundle (scripts/package.mjs)`)});\n`,
      loader: 'js',
    }));
  },
};

// What both bundles share: ESM for node 20, a `require` for the CommonJS dependencies' builtins,
// linked source maps, whitespace and syntax minified (identifiers stay: stack frames keep names).
const bundleOptions = {
  absWorkingDir: root,
  // Laid out as if in the tree's dist/ (then written to the stage), so that the maps name the
  // sources as ../src/... from dist/: `<base dir>/src/handler/daemon.ts:12:5` in a stack trace.
  outdir: path.join(root, 'dist'),
  write: false,
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  sourcemap: 'linked',
  sourcesContent: false,
  banner: { js: "import { createRequire as __rchCreateRequire } from 'node:module'; const require = __rchCreateRequire(import.meta.url);" },
  minifyWhitespace: true,
  minifySyntax: true,
  logLevel: 'warning',
  metafile: true,
};

// Writes a build's output files under stage/dist; returns the bytes of JS written.
function writeOutputs(stage, result) {
  if (result.errors.length > 0) fail('esbuild failed');
  for (const file of result.outputFiles) {
    const target = path.join(stage, 'dist', path.relative(path.join(root, 'dist'), file.path));
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.writeFileSync(target, file.contents);
  }
  const outputs = Object.entries(result.metafile.outputs).filter(([file]) => file.endsWith('.js'));
  return { files: outputs.length, bytes: outputs.reduce((sum, [, output]) => sum + output.bytes, 0) };
}

// Bundles src/cli.ts into stage/dist: dist/cli.js (the path the shim and the daemon's argv use)
// and chunks for what the code imports dynamically (per-command modules, winston, the storage
// SDK), each with a linked source map (the daemon turns source maps on: src/cli.ts); and `enable`'s
// entry, dist/handler/commands/enable-main.js, in one file. Node builtins stay imports; the
// CommonJS dependencies get a `require` for theirs.
async function bundle(stage) {
  const main = writeOutputs(stage, await esbuild.build({
    ...bundleOptions,
    entryPoints: { cli: 'src/cli.ts' },
    chunkNames: 'chunks/[name]-[hash]',
    splitting: true,
    plugins: [zodEnglishOnly, linuxOnly, enableApart],
  }));
  const enable = writeOutputs(stage, await esbuild.build({
    ...bundleOptions,
    entryPoints: { 'handler/commands/enable-main': 'src/handler/commands/enable-main.ts' },
    splitting: false,
    plugins: [zodEnglishOnly, linuxOnly, enableOnly],
  }));
  log(`bundled ${main.files + enable.files} files, ${((main.bytes + enable.bytes) / 1048576).toFixed(1)} MiB of JS (enable: ${(enable.bytes / 1024).toFixed(0)} KiB)`);
}

// The command catalogue (src/runner/sources/catalogue.ts reads it from dist/runner/commands/):
// catalogue.json and the scripts of the Linux commands; the Windows scripts stay out of this zip.
function copyCatalogue(stage) {
  const from = path.join(root, 'dist', 'runner', 'commands');
  const to = path.join(stage, 'dist', 'runner', 'commands');
  const catalogue = JSON.parse(fs.readFileSync(path.join(from, 'catalogue.json'), 'utf8'));
  fs.mkdirSync(to, { recursive: true });
  fs.copyFileSync(path.join(from, 'catalogue.json'), path.join(to, 'catalogue.json'));
  for (const command of catalogue) {
    if (command.script === undefined || !command.platforms.includes('linux')) continue;
    fs.mkdirSync(path.dirname(path.join(to, command.script)), { recursive: true });
    fs.copyFileSync(path.join(from, command.script), path.join(to, command.script));
  }
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
async function populateStage(stage, version, options) {
  fs.copyFileSync(path.join(root, 'HandlerManifest.json'), path.join(stage, 'HandlerManifest.json'));
  fs.mkdirSync(path.join(stage, 'bin'));
  fs.copyFileSync(path.join(root, 'bin', 'runcommand-handler'), path.join(stage, 'bin', 'runcommand-handler'));
  copyExecutable(process.execPath, path.join(stage, 'bin', 'node'), options.strip);
  for (const name of fs.readdirSync(path.join(stage, 'bin'))) {
    fs.chmodSync(path.join(stage, 'bin', name), 0o755);
  }
  await bundle(stage);
  fs.mkdirSync(path.join(stage, 'dist', 'native'));
  // The Linux helpers: the run wrapper and the protected-settings decryptor (never the Windows .exe).
  for (const helper of ['rch-exec', 'rch-crypto']) {
    copyExecutable(path.join(root, 'dist', 'native', helper), path.join(stage, 'dist', 'native', helper), options.strip);
    fs.chmodSync(path.join(stage, 'dist', 'native', helper), 0o755);
  }
  copyCatalogue(stage);
  writeStagedPackageJson(stage, version);
  validateNoSymlinks(stage);
}

// Zips the stage into a temp name and renames it, so a reader never sees a half-written zip.
function writeZip(stage, zipPath) {
  const temp = `${zipPath}.${process.pid}.tmp`;
  fs.rmSync(temp, { force: true });
  const result = spawnSync('zip', ['-r', '-9', '-X', '-q', temp, '.'], { cwd: stage, stdio: ['ignore', 'inherit', 'inherit'] });
  if (result.error) fail(`zip: ${result.error.message}`);
  if (result.status !== 0) fail(`zip exited with ${result.status}`);
  fs.renameSync(temp, zipPath);
}

async function main() {
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
      await populateStage(stage, version, options);
      writeZip(stage, zipPath);
    } finally {
      fs.rmSync(stage, { recursive: true, force: true });
    }
    log(`wrote ${path.relative(root, zipPath)} (${(fs.statSync(zipPath).size / 1e6).toFixed(1)} MB)`);
  }
  process.stdout.write(`${zipPath}\n`);
}

try {
  await main();
} catch (error) {
  log(`error: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
}
