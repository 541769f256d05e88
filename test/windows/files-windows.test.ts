// Durable file writes on Windows (src/util/atomic-file.ts), under Wine with node.exe 20: Windows
// refuses to replace a file another process holds open (the agent reading a status file, `enable`
// reading the daemon's token), and writeFileAtomic waits that out instead of failing — a daemon
// that failed to write its token at start left every run unserved.
import { readFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { useTempDir } from '../helpers/temp-dir.js';
import { killLeftovers, readText, startWine, toWindowsPath, waitFor, type WineLane } from './wine.js';
import { windowsNodeExe } from './node-exe.js';

const lane = inject('wineLane');
const root = resolve(import.meta.dirname, '..', '..');

describe.skipIf(lane === null)('atomic replace on Windows (node.exe under Wine)', () => {
  const wine = lane as WineLane;
  const tempDir = useTempDir('winfiles');
  afterEach(() => killLeftovers(basename(tempDir())));

  it('replaces a file another handle holds open once that handle closes, where a bare rename is refused', async () => {
    const target = join(tempDir(), 'status.json');
    const out = join(tempDir(), 'report.json');
    const fixture = toWindowsPath(join(root, 'test/windows/fixtures/replace-open.mjs'));
    const node = startWine(wine, windowsNodeExe(root), [fixture, toWindowsPath(join(root, 'dist')), toWindowsPath(target), toWindowsPath(out)], tempDir());
    const text = await waitFor(() => readText(out), (value) => value !== undefined, 60_000);
    expect((await node.exited).code).toBe(0);
    const report = JSON.parse(text ?? '{}') as Record<string, unknown>;
    // The environment refuses what Windows refuses, or this test proves nothing.
    expect(report['bareRename']).toBe('EPERM');
    expect(report['atomic']).toBe('replaced');
    expect(report['atomicMs']).toBeGreaterThanOrEqual(250);
    expect(await readFile(target, 'utf8')).toBe('new');
  });
});
