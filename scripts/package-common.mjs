// What the Linux zip (scripts/package.mjs) and the Windows zip (scripts/package-windows.mjs) share:
// the argument rules, the staged package.json, the symlink check, the zip writer and its figures
// (the esbuild bundle of the handler is scripts/bundle.mjs).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const buildDir = path.join(root, 'build');

// Throws so that stage dirs are still removed on the way out.
export function fail(message) {
  throw new Error(message);
}

// The agent parses the version out of the directory name with \d+(\.\d+)*: refuse anything else.
export function checkVersion(version) {
  if (version !== undefined && !/^\d+(\.\d+){1,3}$/.test(version)) fail(`--version must look like X.Y.Z, got ${version}`);
  return version;
}

// Reads argv: `--version X` / `--version=X`, and the boolean `flags` given (name → option key).
export function parseArgs(argv, flags) {
  const options = { version: undefined };
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i];
    if (arg === '--version') options.version = argv[(i += 1)];
    else if (arg.startsWith('--version=')) options.version = arg.slice('--version='.length);
    else if (Object.hasOwn(flags, arg)) options[flags[arg].key] = flags[arg].value;
    else fail(`unknown argument ${arg}`);
  }
  checkVersion(options.version);
  return options;
}

export function readRepoVersion() {
  return JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).version;
}

// The command catalogue (src/runner/sources/catalogue.ts reads it from dist/runner/commands/):
// catalogue.json whole, and the scripts of the commands of `platform` only (a command is looked up
// for the platform before its script is read, so the others' scripts are never used there).
export function copyCatalogue(stage, platform) {
  const from = path.join(root, 'dist', 'runner', 'commands');
  const to = path.join(stage, 'dist', 'runner', 'commands');
  const cataloguePath = path.join(from, 'catalogue.json');
  if (!fs.existsSync(cataloguePath)) fail('dist/runner/commands/catalogue.json is missing: run `npm run build`');
  const catalogue = JSON.parse(fs.readFileSync(cataloguePath, 'utf8'));
  fs.mkdirSync(to, { recursive: true });
  fs.copyFileSync(cataloguePath, path.join(to, 'catalogue.json'));
  for (const command of catalogue) {
    if (command.script === undefined || !command.platforms?.includes(platform)) continue;
    const source = path.join(from, command.script);
    if (!source.startsWith(from + path.sep)) fail(`catalogue.json: script outside the catalogue: ${command.script}`);
    if (!fs.existsSync(source)) fail(`catalogue.json names ${command.script} for ${platform}, but it is not in dist/runner/commands`);
    fs.mkdirSync(path.dirname(path.join(to, command.script)), { recursive: true });
    fs.copyFileSync(source, path.join(to, command.script));
  }
}

export function writeStagedPackageJson(stage, version) {
  const manifest = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
  manifest.version = version;
  fs.writeFileSync(path.join(stage, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
}

// Throws on any symlink in the stage (the agents' unzip keeps none: ours would be a build bug).
export function validateNoSymlinks(dir) {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isSymbolicLink()) fail(`symlink in package: ${path.relative(dir, full)}`);
    if (entry.isDirectory()) validateNoSymlinks(full);
  }
}

// Files (not directories) under dir, and their total size.
export function countFiles(dir) {
  let files = 0;
  let bytes = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    files += 1;
    bytes += fs.statSync(path.join(entry.parentPath, entry.name)).size;
  }
  return { files, bytes };
}

// Zips the stage (deflate, level 9) into a temp name and renames it, so a reader never sees a
// half-written zip. Returns the zip's size and the stage's file count and unpacked size.
export function writeZip(stage, zipPath, stored = []) {
  const temp = `${zipPath}.${process.pid}.tmp`;
  fs.rmSync(temp, { force: true });
  try {
    // `stored` entries in a second pass: zip 3.0's -n (store these suffixes) does not hold at -9.
    const passes = [['-r', '-9', temp, '.', ...(stored.length > 0 ? ['-x', ...stored] : [])]];
    if (stored.length > 0) passes.push(['-0', temp, ...stored]);
    for (const args of passes) {
      const result = spawnSync('zip', ['-X', '-q', ...args], { cwd: stage, stdio: ['ignore', 'inherit', 'inherit'] });
      if (result.error) fail(`zip: ${result.error.message}`);
      if (result.status !== 0) fail(`zip exited with ${result.status}`);
    }
    fs.renameSync(temp, zipPath);
  } finally {
    fs.rmSync(temp, { force: true });
  }
  const { files, bytes } = countFiles(stage);
  return { zipBytes: fs.statSync(zipPath).size, files, unpackedBytes: bytes };
}

// One line for the log and the record: `12.3 MiB (12.9 MB), 42 files, 40.1 MiB unpacked`.
export function describeZip(figures) {
  const mib = (bytes) => `${(bytes / 1048576).toFixed(1)} MiB`;
  return `${mib(figures.zipBytes)} (${(figures.zipBytes / 1e6).toFixed(1)} MB), ${figures.files} files, ${mib(figures.unpackedBytes)} unpacked`;
}

// Records the figures next to the zip (`<zip>.json`), for the footprint report.
export function recordZipFigures(zipPath, figures) {
  const record = { zip: path.basename(zipPath), ...figures };
  fs.writeFileSync(`${zipPath}.json`, `${JSON.stringify(record, null, 2)}\n`);
}
