import { readdir, readFile, stat, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { readHandlerEnvironment } from '../../../src/config/handler-environment.js';
import { decryptProtectedSettings } from '../../../src/config/protected-settings.js';
import {
  encryptToCertificate,
  ensureLocalLayout,
  findLocalCertificate,
  localHandlerName,
  toLocalLayout,
  toThumbprint,
} from '../../../src/handler/cli/local-layout.js';
import { makeCertificate } from '../../helpers/certificates.js';
import { useTempDir } from '../../helpers/temp-dir.js';

const tempDir = useTempDir('local-layout');

async function opensslThumbprint(crtPath: string): Promise<string> {
  const { stdout } = await execa('openssl', ['x509', '-in', crtPath, '-noout', '-fingerprint', '-sha1']);
  return stdout.slice(stdout.indexOf('=') + 1).replaceAll(':', '').trim().toUpperCase();
}

describe('toLocalLayout', () => {
  it('places the layout under <cwd>/.runcommand with an agent-like lib dir', () => {
    expect(toLocalLayout('/home/op/project')).toEqual({
      root: '/home/op/project/.runcommand',
      libDir: '/home/op/project/.runcommand/waagent',
      handlerEnvironmentPath: `/home/op/project/.runcommand/waagent/${localHandlerName}-local/HandlerEnvironment.json`,
    });
  });
});

describe('ensureLocalLayout', () => {
  it('is safe when several commands create the layout at once: every certificate found works', async () => {
    const layouts = await Promise.all(Array.from({ length: 4 }, () => ensureLocalLayout(tempDir())));
    const layout = layouts[0]!;
    await readHandlerEnvironment(layout.handlerEnvironmentPath);
    const certificate = await findLocalCertificate(layout.libDir);
    expect(certificate).toBeDefined();
    const encrypted = await encryptToCertificate('{"ok":true}', certificate!.crtPath);
    await expect(decryptProtectedSettings(encrypted, certificate!.thumbprint, layout.libDir)).resolves.toEqual({ ok: true });
    expect((await readdir(layout.libDir)).filter((file) => file.startsWith('.new-'))).toEqual([]);
  });

  it('writes HandlerEnvironment.json in the protocol’s shape and creates its folders', async () => {
    const layout = await ensureLocalLayout(tempDir());
    const base = join(tempDir(), '.runcommand', 'waagent', `${localHandlerName}-local`);
    const log = join(tempDir(), '.runcommand', 'log');
    expect(layout.handlerEnvironmentPath).toBe(join(base, 'HandlerEnvironment.json'));
    expect(JSON.parse(await readFile(layout.handlerEnvironmentPath, 'utf8'))).toEqual([
      {
        name: 'Microsoft.CPlat.Core.RunCommandHandlerLinux',
        version: 1,
        handlerEnvironment: {
          logFolder: log,
          configFolder: join(base, 'config'),
          statusFolder: join(base, 'status'),
          heartbeatFile: join(base, 'heartbeat.log'),
          eventsFolder: join(log, 'events'),
        },
      },
    ]);
    for (const dir of [join(base, 'config'), join(base, 'status'), join(log, 'events')]) expect((await stat(dir)).isDirectory()).toBe(true);
  });

  it('writes a HandlerEnvironment.json that the handler’s own reader accepts', async () => {
    const layout = await ensureLocalLayout(tempDir());
    const environment = await readHandlerEnvironment(layout.handlerEnvironmentPath);
    expect(environment.configFolder).toBe(join(layout.libDir, `${localHandlerName}-local`, 'config'));
    expect(environment.statusFolder).toBe(join(layout.libDir, `${localHandlerName}-local`, 'status'));
    expect(environment.logFolder).toBe(join(layout.root, 'log'));
  });

  it('creates one certificate and key named by the upper-case SHA-1 thumbprint', async () => {
    const layout = await ensureLocalLayout(tempDir());
    const files = (await readdir(layout.libDir)).filter((file) => file !== `${localHandlerName}-local`).sort();
    expect(files).toHaveLength(2);
    const [crt, prv] = files as [string, string];
    expect(crt).toMatch(/^[0-9A-F]{40}\.crt$/);
    expect(prv).toBe(crt.replace(/\.crt$/, '.prv'));
    expect(crt.slice(0, 40)).toBe(await opensslThumbprint(join(layout.libDir, crt)));
    expect(await findLocalCertificate(layout.libDir)).toEqual({ thumbprint: crt.slice(0, 40), crtPath: join(layout.libDir, crt) });
  });

  it('keeps the lib dir and the private key accessible to their owner only', async () => {
    const layout = await ensureLocalLayout(tempDir());
    expect((await stat(layout.libDir)).mode & 0o777).toBe(0o700);
    const certificate = await findLocalCertificate(layout.libDir);
    const prvPath = join(layout.libDir, `${certificate?.thumbprint ?? 'none'}.prv`);
    expect((await stat(prvPath)).mode & 0o077).toBe(0);
  });

  it('is idempotent: a second call keeps the same files and the same certificate', async () => {
    const first = await ensureLocalLayout(tempDir());
    const environmentText = await readFile(first.handlerEnvironmentPath, 'utf8');
    const certificate = await findLocalCertificate(first.libDir);
    const files = (await readdir(first.libDir)).sort();
    const second = await ensureLocalLayout(tempDir());
    expect(second).toEqual(first);
    expect(await readFile(second.handlerEnvironmentPath, 'utf8')).toBe(environmentText);
    expect(await findLocalCertificate(second.libDir)).toEqual(certificate);
    expect((await readdir(second.libDir)).sort()).toEqual(files);
  });

  it('never replaces a HandlerEnvironment.json the operator edited', async () => {
    const layout = toLocalLayout(tempDir());
    await mkdir(join(layout.libDir, `${localHandlerName}-local`), { recursive: true });
    await writeFile(layout.handlerEnvironmentPath, '[{"edited":true}]');
    await ensureLocalLayout(tempDir());
    expect(await readFile(layout.handlerEnvironmentPath, 'utf8')).toBe('[{"edited":true}]');
  });

  it('reuses a certificate already in the lib dir instead of making another', async () => {
    const layout = toLocalLayout(tempDir());
    await mkdir(layout.libDir, { recursive: true });
    const existing = await makeCertificate(layout.libDir);
    await ensureLocalLayout(tempDir());
    expect(await findLocalCertificate(layout.libDir)).toEqual({ thumbprint: existing.thumbprint, crtPath: existing.crtPath });
    expect((await readdir(layout.libDir)).filter((file) => file.endsWith('.crt'))).toEqual([`${existing.thumbprint}.crt`]);
  });
});

describe('findLocalCertificate', () => {
  it('finds nothing in a missing or empty directory, or among files not named by a thumbprint', async () => {
    expect(await findLocalCertificate(join(tempDir(), 'missing'))).toBeUndefined();
    expect(await findLocalCertificate(tempDir())).toBeUndefined();
    await writeFile(join(tempDir(), `${'a'.repeat(40)}.crt`), '');
    await writeFile(join(tempDir(), 'server.crt'), '');
    await writeFile(join(tempDir(), `${'A'.repeat(40)}.prv`), '');
    expect(await findLocalCertificate(tempDir())).toBeUndefined();
  });
});

describe('toThumbprint', () => {
  it('returns the upper-case hex SHA-1 fingerprint openssl reports', async () => {
    const certificate = await makeCertificate(tempDir());
    expect(toThumbprint(await readFile(certificate.crtPath, 'utf8'))).toBe(certificate.thumbprint);
    expect(certificate.thumbprint).toBe(await opensslThumbprint(certificate.crtPath));
  });
});

describe('encryptToCertificate', () => {
  it('produces base64 CMS that decryptProtectedSettings turns back into the same settings', async () => {
    const certificate = await makeCertificate(tempDir());
    const settings = { protectedParameters: [{ name: 'TOKEN', value: 'canary-Sécret-😀' }, { value: 'positional' }], runAsPassword: 'p@ss word' };
    const base64 = await encryptToCertificate(JSON.stringify(settings), certificate.crtPath);
    expect(base64).toMatch(/^[A-Za-z0-9+/]+={0,2}$/);
    expect(Buffer.from(base64, 'base64').toString('latin1')).not.toContain('canary');
    expect(await decryptProtectedSettings(base64, certificate.thumbprint, tempDir())).toEqual(settings);
  });

  it('encrypts to the local layout’s own certificate', async () => {
    const layout = await ensureLocalLayout(tempDir());
    const certificate = await findLocalCertificate(layout.libDir);
    if (certificate === undefined) throw new Error('no certificate');
    const base64 = await encryptToCertificate('{"runAsPassword":"x1y2z3"}', certificate.crtPath);
    expect(await decryptProtectedSettings(base64, certificate.thumbprint.toLowerCase(), layout.libDir)).toEqual({ runAsPassword: 'x1y2z3' });
  });
});
