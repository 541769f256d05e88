// What the idle daemon holds (issue 11.4, idle memory). The blob code's network modules are loaded
// by the first run that streams to a blob, not with the daemon (node's http, https and tls stay
// ≈ 1 MB resident once loaded): the packaged daemon serving runs without blobs never loads them,
// and a run with an output blob still streams (against a real Azurite). And the daemon runs
// without TurboFan and Sparkplug, whose code pages would otherwise stay resident, and with a young
// generation that does not grow — flags it sets itself, not on its command line (daemon-control.ts).
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanupLayout, type AgentLayout } from '../helpers/agent.js';
import { useAzurite } from '../helpers/azurite.js';
import { installHandler, submitRunCommand, waitForTerminal } from '../helpers/blob-e2e.js';
import { findProcesses, waitFor } from '../helpers/daemon-harness.js';

const container = 'idle';
const azurite = useAzurite(container);
const probe = fileURLToPath(new URL('../helpers/module-probe.mjs', import.meta.url));
let layout: AgentLayout | undefined;

afterEach(async () => {
  if (layout) await cleanupLayout(layout);
  layout = undefined;
});

// The built-in modules the daemon has loaded, as its preloaded probe lists them on SIGUSR2.
async function daemonModules(layout: AgentLayout, listPrefix: string): Promise<string[]> {
  const [pid] = await findProcesses(`${layout.baseDir}/dist/cli.js\0daemon`);
  if (pid === undefined) throw new Error('no daemon process');
  const path = `${listPrefix}.${pid}`;
  await rm(path, { force: true });
  process.kill(pid, 'SIGUSR2');
  await waitFor(async () => existsSync(path), (found) => found);
  return (await readFile(path, 'utf8')).split('\n');
}

describe('the idle daemon', () => {
  it('runs without blobs leave http, https and tls unloaded; a run with an output blob loads them and streams', async () => {
    const extra = { NODE_OPTIONS: `--import=${probe}`, RCH_TEST_MODULE_LIST: '' };
    layout = await installHandler(extra);
    extra.RCH_TEST_MODULE_LIST = join(layout.root, 'modules');
    for (const name of ['plain1', 'plain2']) {
      await submitRunCommand(layout, name, { publicSettings: { source: { script: 'echo plain' } } }, extra);
      expect((await waitForTerminal(layout, name)).instanceView).toMatchObject({ executionState: 'Succeeded', exitCode: 0 });
    }
    const idle = await daemonModules(layout, extra.RCH_TEST_MODULE_LIST);
    expect(idle).toContain('NativeModule child_process');
    for (const name of ['http', 'https', 'tls']) expect(idle).not.toContain(`NativeModule ${name}`);

    const url = azurite().toBlobUrl(container, 'streamed.out');
    await submitRunCommand(layout, 'streamed', {
      publicSettings: { source: { script: 'echo streamed' }, outputBlobUri: `${url}?${azurite().toSas(container, 'streamed.out', 'racw')}` },
    }, extra);
    expect((await waitForTerminal(layout, 'streamed')).instanceView).toMatchObject({ executionState: 'Succeeded', exitCode: 0 });
    expect(await azurite().hashBlob(container, 'streamed.out')).toEqual({ sha256: createHash('sha256').update('streamed\n').digest('hex'), length: 9 });
    expect(await daemonModules(layout, extra.RCH_TEST_MODULE_LIST)).toContain('NativeModule http');
  });

  it('the daemon runs its JS without the optimising and baseline compilers, in a young generation that does not grow, and none of it on its command line', async () => {
    const extra = { NODE_OPTIONS: `--import=${probe}`, RCH_TEST_MODULE_LIST: '' };
    layout = await installHandler(extra);
    extra.RCH_TEST_MODULE_LIST = join(layout.root, 'modules');
    await submitRunCommand(layout, 'plain', { publicSettings: { source: { script: 'echo plain' } } }, extra);
    expect((await waitForTerminal(layout, 'plain')).instanceView).toMatchObject({ executionState: 'Succeeded', exitCode: 0 });
    const [pid] = await findProcesses(`${layout.baseDir}/dist/cli.js\0daemon`);
    if (pid === undefined) throw new Error('no daemon process');
    // Node's own modules load with their code cache: no V8 flag on the command line (daemon-control.ts).
    const argv = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0');
    expect(argv.slice(1, argv.indexOf(`${layout.baseDir}/dist/cli.js`))).toEqual([]);
    await daemonModules(layout, extra.RCH_TEST_MODULE_LIST);
    const v8 = JSON.parse(await readFile(`${extra.RCH_TEST_MODULE_LIST}.${pid}.v8`, 'utf8')) as { optimizationStatus: number; newSpaceSize: number };
    // V8's status bits: 1 << 4 optimised, 1 << 7 interpreted, 1 << 15 baseline (Sparkplug).
    expect({ optimized: (v8.optimizationStatus & (1 << 4)) !== 0, interpreted: (v8.optimizationStatus & (1 << 7)) !== 0, baseline: (v8.optimizationStatus & (1 << 15)) !== 0 }).toEqual({ optimized: false, interpreted: true, baseline: false });
    expect(v8.newSpaceSize).toBeLessThanOrEqual(2 * 1024 * 1024);
    // The same probe in a node without those flags: optimised, and a young generation grown past it.
    const control = spawnSync(process.execPath, ['--input-type=module', '-e', `import { hotFunctionStatus, youngGenerationAfterChurn } from ${JSON.stringify(pathToFileURL(probe).href)}; const size = youngGenerationAfterChurn(); console.log(JSON.stringify({ size, status: (await hotFunctionStatus()).status }));`], { encoding: 'utf8' });
    const plain = JSON.parse(control.stdout) as { size: number; status: number };
    expect((plain.status & (1 << 4)) !== 0).toBe(true);
    expect(plain.size).toBeGreaterThan(2 * 1024 * 1024);
  });
});
