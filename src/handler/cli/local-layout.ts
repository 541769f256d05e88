// The embedded local layout for operators (`npm start`): a folder laid out like the agent's
// /var/lib/waagent, with its HandlerEnvironment.json and a certificate for protected settings.
import { randomBytes, X509Certificate } from 'node:crypto';
import { access, mkdir, readdir, readFile, rename } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { execa } from 'execa';
import { createFileAtomic } from '../../util/atomic-file.js';
import { runProcess } from '../../util/run-process.js';

export const localHandlerName = 'Microsoft.CPlat.Core.RunCommandHandlerLinux';

export interface LocalLayout {
  readonly root: string;
  readonly libDir: string;
  readonly handlerEnvironmentPath: string;
}

const exists = (path: string): Promise<boolean> => access(path).then(() => true, () => false);

// Where the local layout lives for a working directory.
export function toLocalLayout(cwd: string): LocalLayout {
  const root = resolve(cwd, '.runcommand');
  const libDir = join(root, 'waagent');
  return { root, libDir, handlerEnvironmentPath: join(libDir, `${localHandlerName}-local`, 'HandlerEnvironment.json') };
}

// The upper-case hex SHA-1 thumbprint of a PEM certificate, as the agent names its files.
export function toThumbprint(pem: string): string {
  return new X509Certificate(pem).fingerprint.replaceAll(':', '').toUpperCase();
}

// Several commands may create the layout at once (`npm start` next to a first `submit`): each makes
// its own pair under unique temporary names, so no pair ever mixes two processes' files.
async function makeCertificate(libDir: string): Promise<void> {
  const stem = join(libDir, `.new-${randomBytes(6).toString('hex')}`);
  const key = `${stem}.prv`;
  const crt = `${stem}.crt`;
  await execa('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', crt, '-subj', '/CN=runcommand-handler-local', '-days', '3650'], { stdin: 'ignore' });
  const thumbprint = toThumbprint(await readFile(crt, 'utf8'));
  await rename(key, join(libDir, `${thumbprint}.prv`));
  await rename(crt, join(libDir, `${thumbprint}.crt`));
}

// Creates the local layout on first use (idempotent); returns it.
export async function ensureLocalLayout(cwd: string): Promise<LocalLayout> {
  const layout = toLocalLayout(cwd);
  const base = join(layout.libDir, `${localHandlerName}-local`);
  const logFolder = join(layout.root, 'log');
  await mkdir(layout.libDir, { recursive: true, mode: 0o700 });
  for (const dir of [join(base, 'config'), join(base, 'status'), join(logFolder, 'events')]) await mkdir(dir, { recursive: true });
  if (!(await exists(layout.handlerEnvironmentPath))) {
    const environment = [{
      name: localHandlerName,
      version: 1.0,
      handlerEnvironment: {
        logFolder,
        configFolder: join(base, 'config'),
        statusFolder: join(base, 'status'),
        heartbeatFile: join(base, 'heartbeat.log'),
        eventsFolder: join(logFolder, 'events'),
      },
    }];
    await createFileAtomic(layout.handlerEnvironmentPath, `${JSON.stringify(environment, null, 2)}\n`, { mode: 0o644 });
  }
  if ((await findLocalCertificate(layout.libDir)) === undefined) await makeCertificate(layout.libDir);
  return layout;
}

// The certificate in `certDir` (the first `<THUMBPRINT>.crt`), if there is one.
export async function findLocalCertificate(certDir: string): Promise<{ thumbprint: string; crtPath: string } | undefined> {
  const files = await readdir(certDir).catch(() => [] as string[]);
  const crt = files.find((file) => /^[0-9A-F]{40}\.crt$/.test(file));
  return crt === undefined ? undefined : { thumbprint: crt.slice(0, 40), crtPath: join(certDir, crt) };
}

// Encrypts protected settings to a certificate exactly as the agent's envelopes are made
// (CMS EnvelopedData, DER, base64); the plaintext goes through stdin, never a command line.
// Raw bytes: a DER that happens to end in 0x0a must keep it (execa strips a final newline by default,
// which truncated 1 envelope in 256).
export async function encryptToCertificate(plaintext: string, crtPath: string): Promise<string> {
  const result = await runProcess('openssl', ['cms', '-encrypt', '-binary', '-outform', 'DER', crtPath], { input: Buffer.from(plaintext, 'utf8'), timeoutMs: 30_000 });
  if (result.exitCode !== 0) throw new Error(`openssl cms -encrypt failed: ${result.error?.message ?? result.stderr.toString('utf8').split('\n')[0]}`);
  return result.stdout.toString('base64');
}
