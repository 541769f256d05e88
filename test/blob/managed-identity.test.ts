// Streaming with managed identities through the packaged handler: tokens from a loopback IMDS
// endpoint (resource https://storage.azure.com/), Azurite in `--oauth basic` mode over HTTPS with a
// test certificate the daemon trusts through NODE_EXTRA_CA_CERTS; no token reaches any file.
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { cleanupLayout, type AgentLayout } from '../helpers/agent.js';
import { hashFile, startAzurite, storageDnsPreload, type Azurite } from '../helpers/azurite.js';
import { filesContaining, installHandler, submitRunCommand, toRunDir, waitForTerminal } from '../helpers/blob-e2e.js';
import { startLoopbackImds, type LoopbackImds } from '../helpers/loopback-imds.js';

const container = 'identity';
let azurite: Azurite;
let imds: LoopbackImds;
let layout: AgentLayout | undefined;

beforeAll(async () => {
  azurite = await startAzurite({ https: true, oauth: true });
  await azurite.makeContainer(container);
  imds = await startLoopbackImds();
});

afterEach(async () => {
  if (layout) await cleanupLayout(layout);
  layout = undefined;
});

afterAll(async () => {
  await imds?.close();
  await azurite?.dispose();
});

describe('managed identity (packaged handler)', () => {
  it('streams with tokens from IMDS for a user-assigned and the system-assigned identity, keeping tokens out of every file', async () => {
    const extra = {
      RUNCOMMAND_HANDLER_STATUS_INTERVAL_MS: '500',
      RUNCOMMAND_HANDLER_IMDS_ENDPOINT: imds.endpoint,
      NODE_EXTRA_CA_CERTS: azurite.caPath ?? '',
      // The token goes only to a storage host name (util/storage-host.ts): Azurite is reached as
      // devstoreaccount1.blob.core.windows.net, resolved to loopback inside the handler only.
      NODE_OPTIONS: storageDnsPreload,
    };
    layout = await installHandler(extra);
    const script = 'echo to stdout; echo to stderr >&2; sleep 1; head -c 200000 /dev/urandom; head -c 1000 /dev/urandom >&2';
    await submitRunCommand(layout, 'identity', {
      publicSettings: { source: { script }, outputBlobUri: azurite.toStorageHostUrl(container, 'mi.out'), errorBlobUri: azurite.toStorageHostUrl(container, 'mi.err') },
      protectedSettings: { outputBlobManagedIdentity: { clientId: 'client-1234' }, errorBlobManagedIdentity: {} },
    }, extra);
    const report = await waitForTerminal(layout, 'identity');
    expect(report.instanceView).toMatchObject({ executionState: 'Succeeded', executionMessage: 'Execution completed' });
    const runDir = await toRunDir(layout, 'identity');
    expect(await azurite.hashBlob(container, 'mi.out')).toEqual(await hashFile(join(runDir, 'stdout')));
    expect(await azurite.hashBlob(container, 'mi.err')).toEqual(await hashFile(join(runDir, 'stderr')));
    expect(imds.requests.every((request) => request.resource === 'https://storage.azure.com/' && request.metadataHeader === 'true')).toBe(true);
    expect(imds.requests.some((request) => request.clientId === 'client-1234')).toBe(true);
    expect(imds.requests.some((request) => request.clientId === null && request.objectId === null)).toBe(true);
    expect(imds.tokens.length).toBeGreaterThan(0);
    expect(await filesContaining(layout.root, imds.tokens.flatMap((token) => [token, token.split('.')[1] ?? '']))).toEqual([]);
  });

  it('uses the identity with an Azure Stack Hub storage host (<acct>.blob.azurestack.<domain>): the script downloads and the output streams with tokens', async () => {
    const extra = { RUNCOMMAND_HANDLER_IMDS_ENDPOINT: imds.endpoint, NODE_EXTRA_CA_CERTS: azurite.caPath ?? '', NODE_OPTIONS: storageDnsPreload };
    layout = await installHandler(extra);
    // The container is private: only a bearer token gets the script (an anonymous GET is refused).
    await (await azurite.makeContainer(container)).getBlockBlobClient('stack.sh').upload('echo from-stack-hub\n', 20);
    const before = imds.requests.length;
    await submitRunCommand(layout, 'stackhub', {
      publicSettings: { source: { scriptUri: azurite.toStackHubUrl(container, 'stack.sh') }, outputBlobUri: azurite.toStackHubUrl(container, 'stack.out') },
      protectedSettings: { sourceManagedIdentity: {}, outputBlobManagedIdentity: { objectId: 'object-5678' } },
    }, extra);
    const report = await waitForTerminal(layout, 'stackhub');
    expect(report.instanceView).toMatchObject({ executionState: 'Succeeded', output: 'from-stack-hub\n', exitCode: 0 });
    const runDir = await toRunDir(layout, 'stackhub');
    expect(await azurite.hashBlob(container, 'stack.out')).toEqual(await hashFile(join(runDir, 'stdout')));
    const asked = imds.requests.slice(before);
    expect(asked.some((request) => request.objectId === 'object-5678')).toBe(true);
    expect(asked.some((request) => request.clientId === null && request.objectId === null)).toBe(true);
  });

  it('refuses to send a token to a host that is not a storage host name: the run fails with −101 and no token is asked for', async () => {
    const extra = { RUNCOMMAND_HANDLER_IMDS_ENDPOINT: imds.endpoint, NODE_EXTRA_CA_CERTS: azurite.caPath ?? '' };
    layout = await installHandler(extra);
    const before = imds.requests.length;
    await submitRunCommand(layout, 'loopback', {
      publicSettings: { source: { script: 'echo never' }, outputBlobUri: azurite.toBlobUrl(container, 'refused.out') },
      protectedSettings: { outputBlobManagedIdentity: {} },
    }, extra);
    const report = await waitForTerminal(layout, 'loopback');
    expect(report.instanceView.executionState).toBe('Failed');
    expect(report.instanceView.exitCode).toBe(-101);
    expect(report.instanceView.executionMessage).toContain('a managed-identity token is sent only over https to an Azure blob storage host');
    expect(imds.requests.length).toBe(before);
  });
});
