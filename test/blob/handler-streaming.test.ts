// Append-blob streaming through the packaged handler, driven as the guest agent drives it, against
// a real Azurite (run-command.md §6, issue 4): SAS URL and URL + protected token, −101 before the
// script runs, an existing block blob replaced, kill -9 of the daemon and a reboot mid-stream, no SAS anywhere.
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanupLayout, runCommand, type AgentLayout } from '../helpers/agent.js';
import { hashFile, useAzurite } from '../helpers/azurite.js';
import { filesContaining, installHandler, submitRunCommand, toRunDir, waitForTerminal } from '../helpers/blob-e2e.js';
import { findProcesses } from '../helpers/daemon-harness.js';
import { makeGate } from '../helpers/gate.js';

const container = 'handler';
const extra = { RUNCOMMAND_HANDLER_STATUS_INTERVAL_MS: '500', RUNCOMMAND_HANDLER_KILL_GRACE_MS: '1000' };
const azurite = useAzurite(container);
let layout: AgentLayout | undefined;

afterEach(async () => {
  if (layout) await cleanupLayout(layout);
  layout = undefined;
});

async function expectBlobEqualsFile(blob: string, file: string): Promise<void> {
  const local = await hashFile(file);
  expect(local.length).toBeGreaterThan(0);
  expect(await azurite().hashBlob(container, blob)).toEqual(local);
}

// A script that writes binary bytes and text to both streams, pauses (so appends happen while it
// runs) and ends stdout without a newline.
const mixedScript = [
  'head -c 300000 /dev/urandom',
  'printf "text line é\\n"; printf "to stderr\\n" >&2; head -c 5000 /dev/urandom >&2',
  'sleep 1.5',
  'head -c 70000 /dev/urandom; printf "no newline at the end"',
].join('\n');

describe('append blob streaming (packaged handler)', () => {
  it('streams stdout to a SAS URL and stderr to a URL + protected token byte for byte, and no SAS reaches any file', async () => {
    layout = await installHandler(extra);
    const canary = `rchcanary${Date.now()}q7`;
    const outSas = `${azurite().toSas(container, 'mixed.out', 'racw')}&canary=${canary}`;
    const errSas = `?${azurite().toSas(container, 'mixed.err', 'racw')}&canary=${canary}`;
    await submitRunCommand(layout, 'mixed', {
      publicSettings: { source: { script: mixedScript }, outputBlobUri: `${azurite().toBlobUrl(container, 'mixed.out')}?${outSas}`, errorBlobUri: azurite().toBlobUrl(container, 'mixed.err') },
      protectedSettings: { errorBlobSASToken: errSas },
    }, extra);
    const report = await waitForTerminal(layout, 'mixed');
    expect(report.instanceView).toMatchObject({ executionState: 'Succeeded', executionMessage: 'Execution completed', exitCode: 0 });
    const runDir = await toRunDir(layout, 'mixed');
    await expectBlobEqualsFile('mixed.out', join(runDir, 'stdout'));
    await expectBlobEqualsFile('mixed.err', join(runDir, 'stderr'));
    const signatures = [outSas, errSas].map((sas) => new URLSearchParams(sas.replace(/^\?/, '')).get('sig') ?? '');
    const secrets = [canary, ...signatures, ...signatures.map(encodeURIComponent)];
    expect(await filesContaining(layout.root, secrets)).toEqual([]);
    // The blobs are logged, without their query.
    const log = await readFile(join(layout.logFolder, 'handler.log'), 'utf8');
    expect(log).toContain(`"blob":"${azurite().toBlobUrl(container, 'mixed.out')}"`);
  });

  it('fails with −101 naming the blob and the permissions needed when the container does not exist; the script never runs', async () => {
    layout = await installHandler(extra);
    const marker = join(layout.root, 'script-ran');
    const url = azurite().toBlobUrl('no-such-container', 'out.txt');
    await submitRunCommand(layout, 'nocontainer', {
      publicSettings: { source: { script: `touch ${marker}` }, outputBlobUri: `${url}?${azurite().toSas('no-such-container', 'out.txt', 'racw')}` },
    }, extra);
    const report = await waitForTerminal(layout, 'nocontainer');
    expect(report.instanceView.executionState).toBe('Failed');
    expect(report.instanceView.exitCode).toBe(-101);
    expect(report.instanceView.executionMessage).toContain(`output blob ${url} (HTTP 404 ContainerNotFound)`);
    expect(report.instanceView.executionMessage).toContain('(racw)');
    expect(report.instanceView.executionMessage).not.toContain('sig=');
    expect(existsSync(marker)).toBe(false);
  });

  it('fails with −101 when the SAS only allows reading; the script never runs', async () => {
    layout = await installHandler(extra);
    const marker = join(layout.root, 'script-ran');
    await submitRunCommand(layout, 'readonly', {
      publicSettings: { source: { script: `touch ${marker}` }, errorBlobUri: azurite().toBlobUrl(container, 'readonly.err') },
      protectedSettings: { errorBlobSASToken: azurite().toSas(container, 'readonly.err', 'r') },
    }, extra);
    const report = await waitForTerminal(layout, 'readonly');
    expect(report.instanceView).toMatchObject({ executionState: 'Failed', exitCode: -101 });
    expect(report.instanceView.executionMessage).toContain(`error blob ${azurite().toBlobUrl(container, 'readonly.err')} (HTTP 403 AuthorizationPermissionMismatch)`);
    expect(existsSync(marker)).toBe(false);
  });

  it('replaces an existing block blob with an append blob that holds only the new output', async () => {
    layout = await installHandler(extra);
    const blob = azurite().admin.getContainerClient(container).getBlockBlobClient('replaced.out');
    await blob.upload('old content that must disappear\n'.repeat(1000), 32_000);
    await submitRunCommand(layout, 'replace', {
      publicSettings: { source: { script: 'echo new output' }, outputBlobUri: `${azurite().toBlobUrl(container, 'replaced.out')}?${azurite().toSas(container, 'replaced.out', 'racw')}` },
    }, extra);
    expect((await waitForTerminal(layout, 'replace')).instanceView.executionState).toBe('Succeeded');
    expect((await blob.getProperties()).blobType).toBe('AppendBlob');
    expect((await blob.downloadToBuffer()).toString()).toBe('new output\n');
  });

  it('resumes the upload from the journal after kill -9 of the daemon: no byte lost or duplicated', async () => {
    layout = await installHandler(extra);
    const gate = await makeGate();
    const chunks = (from: number, to: number): string => `for i in $(seq ${from} ${to}); do head -c 60000 /dev/urandom | base64; sleep 0.15; done`;
    // The second half is written after the restart, so the new daemon resumes a live upload.
    const script = `${chunks(1, 15)}; ${gate.wait}; ${chunks(16, 30)}; printf end`;
    await submitRunCommand(layout, 'restart', {
      publicSettings: { source: { script }, outputBlobUri: `${azurite().toBlobUrl(container, 'restart.out')}?${azurite().toSas(container, 'restart.out', 'racw')}` },
    }, extra);
    const runDir = await waitForJournal(layout, 'restart', (journal) => (journal.uploads?.stdout ?? 0) > 0);
    for (const pid of await findProcesses(`${layout.baseDir}/dist/cli.js`)) process.kill(pid, 'SIGKILL');
    expect((await runCommand(layout, 'enable', { name: 'restart', seq: 0, extra })).exitCode).toBe(0);
    await gate.open();
    const report = await waitForTerminal(layout, 'restart');
    expect(report.instanceView).toMatchObject({ executionState: 'Succeeded', executionMessage: 'Execution completed' });
    await expectBlobEqualsFile('restart.out', join(runDir, 'stdout'));
    const journal = JSON.parse(await readFile(join(runDir, 'journal.json'), 'utf8')) as Journal;
    expect(journal.uploads?.stdout).toBe((await hashFile(join(runDir, 'stdout'))).length);
  });

  it('uploads what a run wrote before a reboot cut it off, even when the cadence had not come yet', async () => {
    const slow = { ...extra, RUNCOMMAND_HANDLER_STATUS_INTERVAL_MS: '60000' };
    layout = await installHandler(slow);
    const marker = `rch-blob-reboot-${process.pid}-${Date.now()}`;
    await submitRunCommand(layout, 'reboot', {
      publicSettings: { source: { script: `printf before-reboot; sh -c 'sleep 60; : ${marker}'` }, outputBlobUri: `${azurite().toBlobUrl(container, 'reboot.out')}?${azurite().toSas(container, 'reboot.out', 'racw')}` },
    }, slow);
    const runDir = await waitForJournal(layout, 'reboot', (journal) => journal.uploads?.stdout === 0 && journal.state === 'Running');
    await waitForFile(join(runDir, 'stdout'), 'before-reboot');
    // A reboot ends every process and changes the boot id.
    for (const pid of [...(await findProcesses(`${layout.baseDir}/dist/cli.js`)), ...(await findProcesses(marker))]) process.kill(pid, 'SIGKILL');
    const journal = JSON.parse(await readFile(join(runDir, 'journal.json'), 'utf8')) as Record<string, unknown>;
    await writeFile(join(runDir, 'journal.json'), JSON.stringify({ ...journal, bootId: randomUUID() }));
    expect((await runCommand(layout, 'enable', { name: 'reboot', seq: 0, extra: slow })).exitCode).toBe(0);
    const report = await waitForTerminal(layout, 'reboot');
    expect(report.instanceView).toMatchObject({ executionState: 'Failed', exitCode: -1 });
    expect((await azurite().admin.getContainerClient(container).getBlobClient('reboot.out').downloadToBuffer()).toString()).toBe('before-reboot');
  });
});

async function waitForFile(path: string, content: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while ((await readFile(path, 'utf8').catch(() => '')) !== content) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${path}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

interface Journal {
  state?: string;
  uploads?: { stdout?: number; stderr?: number };
}

async function waitForJournal(agent: AgentLayout, name: string, done: (journal: Journal) => boolean): Promise<string> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const runDir = await toRunDir(agent, name).catch(() => undefined);
    const journal = runDir ? await readFile(join(runDir, 'journal.json'), 'utf8').then((text) => JSON.parse(text) as Journal, () => undefined) : undefined;
    if (runDir && journal && done(journal)) return runDir;
    if (Date.now() > deadline) throw new Error(`timed out waiting for the journal of ${name}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
