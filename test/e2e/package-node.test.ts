// The package's node ships xz-compressed (bin/node.xz, scripts/pack-node.mjs) and the first
// handler command unpacks it (bin/runcommand-handler, src/native/rch-unpack.c): once, under a lock,
// verified against the sha256 the shim carries, never leaving a half-written bin/node.
import { execa } from 'execa';
import { createHash } from 'node:crypto';
import { readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { cleanupLayout, makeAgentLayout, runCommand, type AgentLayout } from '../helpers/agent.js';

const layouts: AgentLayout[] = [];

afterAll(async () => {
  for (const layout of layouts) await cleanupLayout(layout);
});

// A fresh install as the agent's unzip leaves it: node still packed.
async function packedLayout(): Promise<AgentLayout> {
  const layout = await makeAgentLayout({ packedNode: true });
  layouts.push(layout);
  return layout;
}

const binDir = (layout: AgentLayout) => join(layout.baseDir, 'bin');
const runShim = (layout: AgentLayout, ...args: string[]) =>
  execa('/bin/sh', [join(binDir(layout), 'runcommand-handler'), ...args], { cwd: layout.baseDir, reject: false });

async function shimSha256(layout: AgentLayout): Promise<string> {
  const match = /^node_sha256=([0-9a-f]{64})$/m.exec(await readFile(join(binDir(layout), 'runcommand-handler'), 'utf8'));
  if (!match?.[1]) throw new Error('the packaged shim carries no node_sha256');
  return match[1];
}

// bin/ holds the whole verified node, and neither the packed copy nor a temp file is left.
async function expectUnpacked(layout: AgentLayout): Promise<void> {
  const node = await readFile(join(binDir(layout), 'node'));
  expect(createHash('sha256').update(node).digest('hex')).toBe(await shimSha256(layout));
  expect((await readdir(binDir(layout))).sort()).toEqual(['node', 'runcommand-handler']);
}

// Swaps bin/node.xz for other bytes through a new file: the layout's files are hard links to an
// extraction other tests share.
async function replacePacked(layout: AgentLayout, bytes: Buffer): Promise<void> {
  const packed = join(binDir(layout), 'node.xz');
  await writeFile(`${packed}.new`, bytes);
  await rename(`${packed}.new`, packed);
}

async function expectRefused(layout: AgentLayout, cause: RegExp): Promise<void> {
  for (let attempt = 0; attempt < 2; attempt += 1) {
    const result = await runShim(layout, 'help');
    expect(result.exitCode).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(cause);
    expect((await readdir(binDir(layout))).sort()).toEqual(['node.xz', 'runcommand-handler']);
  }
}

describe('the packaged node', () => {
  it('is an xz stream stored in a zip of deflate and stored entries only, ≤ 30 MB and fewer than 50 files', async () => {
    const zip = inject('packageZip');
    const { stdout } = await execa('unzip', ['-v', zip]);
    const entries = [...stdout.matchAll(/^\s*\d+\s+(\S+)\s+\d+\s+-?\d+%\s+\S+\s+\S+\s+[0-9a-f]{8}\s+(\S+)$/gm)].map(([, method, name]) => ({ method, name }));
    const files = entries.filter((entry) => !entry.name?.endsWith('/'));
    expect(files.map((file) => file.name)).toEqual(expect.arrayContaining(['bin/node.xz', 'bin/runcommand-handler', 'dist/native/rch-unpack']));
    expect(files.map((file) => file.name)).not.toContain('bin/node');
    for (const entry of entries) expect(entry.method, entry.name).toMatch(/^(Stored|Defl:[NXFS])$/);
    expect(entries.find((entry) => entry.name === 'bin/node.xz')?.method).toBe('Stored');
    expect(files.length).toBeLessThan(50);
    expect((await readFile(zip)).length).toBeLessThanOrEqual(30e6);
  });

  it('is unpacked by the first command (install) and then used as is', async () => {
    const layout = await packedLayout();
    const install = await runCommand(layout, 'install');
    expect(install.exitCode, install.stderr).toBe(0);
    await expectUnpacked(layout);
    const again = await runShim(layout, 'help');
    expect(again.exitCode, again.stderr).toBe(0);
    await expectUnpacked(layout);
  }, 120_000);

  it('two concurrent first commands both succeed on one unpacked node', async () => {
    const layout = await packedLayout();
    const results = await Promise.all([runShim(layout, 'help'), runShim(layout, 'help'), runShim(layout, 'help')]);
    for (const result of results) {
      expect(result.exitCode, result.stderr).toBe(0);
      expect(result.stdout).toContain('usage: runcommand-handler');
    }
    await expectUnpacked(layout);
  }, 120_000);

  it('refuses a corrupt xz stream with a clear error, every time, and leaves no bin/node', async () => {
    const layout = await packedLayout();
    const bytes = await readFile(join(binDir(layout), 'node.xz'));
    const middle = Math.floor(bytes.length / 2);
    bytes[middle] = (bytes[middle] ?? 0) ^ 0x55;
    await replacePacked(layout, bytes);
    await expectRefused(layout, /^rch-unpack: .*\/bin\/node\.xz is corrupt \(corrupt xz data\): reinstall the extension\n?$/);
  }, 120_000);

  it('refuses a well-formed xz stream of other bytes: its sha256 is not the one the shim carries', async () => {
    const layout = await packedLayout();
    const { stdout } = await execa('xz', ['--stdout'], { input: 'not node', encoding: 'buffer' });
    await replacePacked(layout, Buffer.from(stdout));
    const actual = createHash('sha256').update('not node').digest('hex');
    await expectRefused(layout, new RegExp(`unpacks to a file with sha256 ${actual}, not the expected ${await shimSha256(layout)}: the package is corrupt; reinstall the extension`));
  }, 60_000);
});
