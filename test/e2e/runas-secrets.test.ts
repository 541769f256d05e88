// Secret hygiene with RunAs (issue 5; targets.md security): a canary passed as a named protected
// parameter, the RunAs password, SAS tokens (protected and in a URL) and a managed-identity token
// appears in no file the handler writes, in no process's argv, not in the daemon's environment, and
// the password in no environment at all; the named parameter is where it belongs, in the script's.
import { chmod, mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupLayout, killProcessesUnder, makeAgentLayout, runCommand, waitForStatus, writeSettings, type AgentLayout, type SettingsOptions, type StatusReport, isTerminalReport } from '../helpers/agent.js';
import { findProcesses } from '../helpers/daemon-harness.js';
import { storageDnsPreload } from '../helpers/azurite.js';
import { makeGate } from '../helpers/gate.js';
import { findFilesContaining, findProcessesContaining, waitUntil } from '../helpers/scan.js';
import { makeTestUser, removeTestUsers, type TestUser } from '../helpers/users.js';

const canary = `CANARY${Date.now()}q7z`;
const terminal = isTerminalReport;
let layout: AgentLayout;
let workTop = '';
let user: TestUser | undefined;
let servers: Server[] = [];
let base = '';
let tlsBase = '';
let tokenRequests = 0;
let extra: Record<string, string> = {};

beforeAll(async () => {
  workTop = await mkdtemp(join(tmpdir(), 'rch-work-'));
  await chmod(workTop, 0o711);
  user = await makeTestUser('se');
  // Loopback servers play IMDS (a canary token) and storage / script host (403 for everything), over
  // HTTP and, for bearer tokens (the SDK sends them over TLS only), over HTTPS the daemon trusts.
  const key = join(workTop, 'tls.key');
  const cert = join(workTop, 'tls.crt');
  await execa('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:acct.blob.core.windows.net', '-keyout', key, '-out', cert]);
  const plain = createServer(answer);
  const tls = createTlsServer({ key: await readFile(key), cert: await readFile(cert) }, answer);
  servers = [plain, tls];
  base = `http://127.0.0.1:${await listen(plain)}`;
  // A token goes only to a storage host name (util/storage-host.ts): the daemon resolves this one
  // to loopback through the test preload (storage-dns.mjs), and nothing else changes.
  tlsBase = `https://acct.blob.core.windows.net:${await listen(tls)}`;
  extra = {
    RUNCOMMAND_HANDLER_WORK_DIR: join(workTop, 'work'), RUNCOMMAND_HANDLER_IMDS_ENDPOINT: base, RUNCOMMAND_HANDLER_SETTINGS_SETTLE_MS: '300', NODE_EXTRA_CA_CERTS: cert,
    NODE_OPTIONS: storageDnsPreload,
  };
  layout = await makeAgentLayout();
  expect((await runCommand(layout, 'install', { extra })).exitCode).toBe(0);
});

afterAll(async () => {
  await cleanupLayout(layout);
  await killProcessesUnder(workTop);
  for (const server of servers) server.closeAllConnections();
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  await removeTestUsers([user]);
  await rm(workTop, { recursive: true, force: true });
});

function answer(req: IncomingMessage, res: ServerResponse): void {
  if (req.url?.startsWith('/metadata/identity/oauth2/token')) {
    tokenRequests += 1;
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ access_token: `tok-${canary}`, expires_in: '3600', token_type: 'Bearer' }));
    return;
  }
  res.writeHead(403, { 'x-ms-error-code': 'AuthenticationFailed' }).end();
}

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

async function submit(name: string, settings: SettingsOptions): Promise<void> {
  await writeSettings(layout, name, 0, settings);
  expect((await runCommand(layout, 'enable', { name, seq: 0, extra })).exitCode).toBe(0);
}

describe('secret hygiene with RunAs', () => {
  it('keeps the canary out of every file, argv and the daemon environment, and the password out of every environment', async () => {
    const marker = `rch-runas-secret-${process.pid}-${Date.now()}`;
    // The script stays alive until the process scans are done, however slow the machine.
    const gate = await makeGate();
    await submit('named', {
      publicSettings: { source: { script: `printf %s "$SECRET_VALUE" | sha256sum\nsh -c "${gate.wait}; : ${marker}"\n` }, runAsUser: user!.name },
      protectedSettings: { protectedParameters: [{ name: 'SECRET_VALUE', value: canary }, { value: 'exposed-positional-value' }], runAsPassword: `pw-${canary}` },
    });
    await submit('sas', {
      publicSettings: { source: { script: 'true' }, outputBlobUri: `${base}/c/out`, errorBlobUri: `${base}/c/err?sv=2024-01-01&sp=w&sig=${canary}-url` },
      protectedSettings: { outputBlobSASToken: `?sv=2024-01-01&sp=w&sig=${canary}-sas` },
    });
    await submit('download', { publicSettings: { source: { scriptUri: `${base}/s.sh` } }, protectedSettings: { sourceSASToken: `sv=1&sig=${canary}-src` } });
    await submit('identity', { publicSettings: { source: { script: 'true' }, outputBlobUri: `${tlsBase}/c/mi` }, protectedSettings: { outputBlobManagedIdentity: {} } });

    await waitUntil(async () => (await findProcesses(marker)).length > 0, 15_000, 'the named-parameter run');
    expect(await findProcessesContaining(canary, 'cmdline')).toEqual([]);
    expect(await findProcessesContaining(`pw-${canary}`, 'environ')).toEqual([]);
    // The scan does see the value where it belongs: the RunAs script's own environment.
    expect((await findProcessesContaining(canary, 'environ')).length).toBeGreaterThan(0);
    const daemons = await findProcesses(`${layout.baseDir}/dist/cli.js`);
    expect(daemons.length).toBeGreaterThan(0);
    for (const pid of daemons) expect((await readFile(`/proc/${pid}/environ`)).includes(canary)).toBe(false);
    await gate.open();

    const reports = await Promise.all(['named', 'sas', 'download', 'identity'].map((name) => waitForStatus(layout, name, 0, terminal, 90_000)));
    expect(reports[0]!.instanceView).toMatchObject({ executionState: 'Succeeded', output: `${createHash('sha256').update(canary).digest('hex')}  -\n` });
    for (const report of reports) expect(JSON.stringify(report)).not.toContain(canary);

    // Settings files are the agent's (public settings in clear text), not the handler's.
    const written = (await findFilesContaining(layout.root, canary)).filter((path) => !path.startsWith(layout.configFolder));
    expect(written).toEqual([]);
    expect(await findFilesContaining(workTop, canary)).toEqual([]);
    const log = await readFile(join(layout.logFolder, 'handler.log'), 'utf8');
    expect(log).toContain('unnamed protected parameter at position 1');
    expect(log).toContain('runAsPassword is not used');
    expect(log).not.toContain('exposed-positional-value');
    expect(log).not.toContain(`tok-${canary}`);
    // The managed-identity run did fetch the canary token (so its absence above means something).
    expect(tokenRequests).toBeGreaterThan(0);
  });
});
