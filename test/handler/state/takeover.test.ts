import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { makePendingStatus, toStatusPath, writeStatusFile } from '../../../src/handler/agent/status-file.js';
import { carryForeignStatus, readForeignRuns } from '../../../src/handler/state/takeover.js';
import { useTempDir } from '../../helpers/temp-dir.js';

const tempDir = useTempDir('takeover');
const microsoftStatus = JSON.stringify([{ version: 1, timestampUTC: '2026-11-30T10:00:01Z', status: { name: 'mine', operation: 'Enable', status: 'success', formattedMessage: { lang: 'en', message: '{"executionState":"Succeeded"}' } } }]);

async function makeLib(): Promise<{ ours: string; microsoft: string }> {
  const lib = join(tempDir(), 'lib');
  const ours = join(lib, 'Microsoft.CPlat.Core.RunCommandHandlerLinux-1.0.0');
  const microsoft = join(lib, 'Microsoft.CPlat.Core.RunCommandHandlerLinux-0.9.9');
  await mkdir(join(ours, 'status'), { recursive: true });
  await mkdir(join(microsoft, 'status'), { recursive: true });
  return { ours, microsoft };
}

describe("taking over Microsoft's runs", () => {
  it('reads each valid <name>.mrseq of a sibling install, ignoring other extensions and bad files', async () => {
    const { ours, microsoft } = await makeLib();
    await writeFile(join(microsoft, 'mine.mrseq'), '4\n');
    await writeFile(join(microsoft, 'bad.mrseq'), 'four');
    await writeFile(join(microsoft, '.mrseq'), '2');
    await mkdir(join(ours, '..', 'Other.Extension-1.0'), { recursive: true });
    await writeFile(join(ours, '..', 'Other.Extension-1.0', 'other.mrseq'), '9');
    const runs = await readForeignRuns(join(ours, 'config'));
    expect([...runs.keys()].sort()).toEqual(['_single', 'mine']);
    expect(runs.get('mine')).toEqual({ seq: 4, statusFolder: join(microsoft, 'status') });
  });

  it("replaces our Pending status with Microsoft's by a new file, never rewriting it in place (the agent may be reading it)", async () => {
    const { ours, microsoft } = await makeLib();
    await writeFile(toStatusPath(join(microsoft, 'status'), 'mine', 4), microsoftStatus);
    await writeStatusFile(join(ours, 'status'), makePendingStatus('mine', 4), undefined, Date.now());
    const path = toStatusPath(join(ours, 'status'), 'mine', 4);
    const before = (await stat(path)).ino;
    expect(await carryForeignStatus({ seq: 4, statusFolder: join(microsoft, 'status') }, 'mine', 4, join(ours, 'status'))).toBe(true);
    expect(await readFile(path, 'utf8')).toBe(microsoftStatus);
    expect((await stat(path)).ino).not.toBe(before);
    expect((await stat(path)).mode & 0o777).toBe(0o644);
  });

  it('keeps a terminal status of ours, and says so when Microsoft left none', async () => {
    const { ours, microsoft } = await makeLib();
    const path = toStatusPath(join(ours, 'status'), 'mine', 4);
    expect(await carryForeignStatus({ seq: 4, statusFolder: join(microsoft, 'status') }, 'mine', 4, join(ours, 'status'))).toBe(false);
    await writeFile(toStatusPath(join(microsoft, 'status'), 'mine', 4), microsoftStatus);
    await writeFile(path, microsoftStatus.replace('ran', 'ours'));
    expect(await carryForeignStatus({ seq: 4, statusFolder: join(microsoft, 'status') }, 'mine', 4, join(ours, 'status'))).toBe(true);
    expect(await readFile(path, 'utf8')).toBe(microsoftStatus.replace('ran', 'ours'));
  });
});
