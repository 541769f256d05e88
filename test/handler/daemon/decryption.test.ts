// Protected settings through the daemon on each decryption path: the libcrypto helper by default,
// `openssl cms` when RUNCOMMAND_HANDLER_CMS_FAST_PATH=0 (the fallback must keep working on its own).
import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { decryptionCounts, describeDecryptionPath } from '../../../src/config/protected-settings.js';
import { disposeHarness, makeHarness, waitForTerminal, writeSettings, type Harness } from '../../helpers/daemon-harness.js';

const switchName = 'RUNCOMMAND_HANDLER_CMS_FAST_PATH';
let harness: Harness;

afterEach(async () => {
  delete process.env[switchName];
  await disposeHarness(harness);
});

// Runs one protected-parameter script through a fresh daemon and checks the script got the value.
async function runProtected(name: string): Promise<void> {
  harness = await makeHarness();
  await harness.daemon.start();
  const canary = `CANARY-${name}-${Date.now()}`;
  await writeSettings(harness, name, 0, { source: { script: 'printf %s "$TOKEN" | sha256sum' } }, {
    protectedParameters: [{ name: 'TOKEN', value: canary }],
  });
  const status = await waitForTerminal(harness, name, 0);
  expect(status.view).toMatchObject({ executionState: 'Succeeded', output: `${createHash('sha256').update(canary).digest('hex')}  -\n` });
  expect(harness.lines.join('\n')).not.toContain(canary);
}

describe('Daemon decryption paths', () => {
  it('decrypts protected settings in the libcrypto helper by default', async () => {
    const before = decryptionCounts();
    await runProtected('fast');
    expect(decryptionCounts()).toEqual({ ...before, libcrypto: before.libcrypto + 1 });
    expect(await describeDecryptionPath()).toMatch(/^libcrypto \(/);
  });

  it('decrypts them with openssl cms when the fast path is switched off', async () => {
    process.env[switchName] = '0';
    const before = decryptionCounts();
    await runProtected('fallback');
    expect(decryptionCounts()).toEqual({ ...before, openssl: before.openssl + 1 });
    expect(await describeDecryptionPath()).toBe(`openssl cms (fallback: ${switchName}=0)`);
  });
});
