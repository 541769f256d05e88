// BlobStreaming (the run extension) through the in-process daemon, with real scripts and a real
// Azurite: a storage outage in the middle of a run, and an upload that finally fails without
// hiding the run's own result.
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { disposeHarness, makeHarness, waitFor, waitForTerminal, writeSettings, type Harness } from '../helpers/daemon-harness.js';
import { hashFile, useAzurite } from '../helpers/azurite.js';
import { makeGate } from '../helpers/gate.js';

const container = 'daemon';
const azurite = useAzurite(container);
let harness: Harness | undefined;

afterEach(async () => {
  if (harness) await disposeHarness(harness);
  harness = undefined;
});

function toSasUrl(blob: string): string {
  return `${azurite().toBlobUrl(container, blob)}?${azurite().toSas(container, blob, 'racw')}`;
}

async function toRunFile(h: Harness, name: string, file: string): Promise<string> {
  const runId = (await h.context.store.listRunIds()).find((entry) => entry.startsWith(`${name}.`));
  if (!runId) throw new Error(`no run directory for ${name}`);
  return join(h.context.store.toRunDir(runId), file);
}

async function readBlobLength(blob: string): Promise<number> {
  return azurite().admin.getContainerClient(container).getBlobClient(blob).getProperties().then((p) => p.contentLength ?? 0, () => 0);
}

describe('blob streaming in the daemon', () => {
  // Budget: ≈ 25 s (the outage itself lasts 20 s, the scenario of targets.md).
  it('resumes after the storage endpoint was down for 20 s mid-run: the blob still equals the file', async () => {
    harness = await makeHarness();
    const gate = await makeGate();
    const lines = (from: number, to: number): string => `for i in $(seq ${from} ${to}); do echo "line $i of a run that outlives an outage"; sleep 0.1; done`;
    // Half the output before the outage, half during it (the gate opens once the endpoint is down).
    const script = `${lines(1, 50)}; ${gate.wait}; ${lines(51, 100)}; printf "tail without newline"`;
    await writeSettings(harness, 'outage', 1, { source: { script }, outputBlobUri: toSasUrl('outage.out') });
    await harness.daemon.start();
    await waitFor(() => readBlobLength('outage.out'), (length) => length > 0);
    await azurite().stop();
    const downAt = Date.now();
    await gate.open();
    await waitFor(async () => harness?.lines.some((line) => line.includes('append blob upload failed; retrying')) === true, (seen) => seen);
    // The outage lasts 20 s whatever the machine's speed: this wait is the scenario, not a guess.
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, 20_000 - (Date.now() - downAt))));
    await azurite().start();
    const status = await waitForTerminal(harness, 'outage', 1, 90_000);
    expect(status.view.executionState).toBe('Succeeded');
    expect(status.view.executionMessage).toBe('Execution completed');
    expect(await azurite().hashBlob(container, 'outage.out')).toEqual(await hashFile(await toRunFile(harness, 'outage', 'stdout')));
    expect(harness.lines.some((line) => line.includes('append blob upload failed; retrying'))).toBe(true);
  }, 120_000);

  it('keeps the run\'s own result and names the blob, the error and the missing bytes when an upload finally fails', async () => {
    harness = await makeHarness();
    const gate = await makeGate();
    const script = `echo first; ${gate.wait}; echo second; exit 3`;
    await writeSettings(harness, 'lost', 1, { source: { script }, outputBlobUri: toSasUrl('lost.out') });
    await harness.daemon.start();
    await waitFor(() => readBlobLength('lost.out'), (length) => length === 6);
    await azurite().admin.getContainerClient(container).deleteBlob('lost.out');
    await gate.open();
    const status = await waitForTerminal(harness, 'lost', 1, 30_000);
    expect(status.view.executionState).toBe('Failed');
    expect(status.view.exitCode).toBe(3);
    expect(status.view.executionMessage).toBe(
      `Execution failed: command terminated with exit status=3; output blob ${azurite().toBlobUrl(container, 'lost.out')}: upload failed (HTTP 404 BlobNotFound); 7 of 13 bytes not uploaded`,
    );
  });
});
