// 256 MiB of output streamed through the packaged handler to Azurite: the blob equals the local
// file byte for byte (the same run `scripts/bench-stream.mjs` measures for speed and memory).
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanupLayout, type AgentLayout } from '../helpers/agent.js';
import { hashFile, useAzurite } from '../helpers/azurite.js';
import { installHandler, submitRunCommand, toRunDir, waitForTerminal } from '../helpers/blob-e2e.js';

const container = 'large';
const size = 256 * 1024 * 1024;
const extra = { RUNCOMMAND_HANDLER_STATUS_INTERVAL_MS: '1000' };
const azurite = useAzurite(container);
let layout: AgentLayout | undefined;

afterEach(async () => {
  if (layout) await cleanupLayout(layout);
  layout = undefined;
});

describe('large output (packaged handler)', () => {
  it('streams 256 MiB of random bytes to an append blob byte for byte', async () => {
    layout = await installHandler(extra);
    const url = `${azurite().toBlobUrl(container, 'large.out')}?${azurite().toSas(container, 'large.out', 'racw')}`;
    const started = Date.now();
    await submitRunCommand(layout, 'large', { publicSettings: { source: { script: `head -c ${size} /dev/urandom` }, outputBlobUri: url } }, extra);
    const report = await waitForTerminal(layout, 'large', 150_000);
    console.info(`256 MiB: enable → terminal status in ${Date.now() - started} ms`);
    expect(report.instanceView).toMatchObject({ executionState: 'Succeeded', executionMessage: 'Execution completed' });
    const local = await hashFile(join(await toRunDir(layout, 'large'), 'stdout'));
    expect(local.length).toBe(size);
    expect(await azurite().hashBlob(container, 'large.out')).toEqual(local);
  }, 200_000);
});
