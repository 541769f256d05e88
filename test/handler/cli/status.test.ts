import { describe, expect, it } from 'vitest';
import { toStatusDetail, toStatusTable } from '../../../src/handler/cli/status.js';
import { toElapsed, toSize, toUploadState, type RunOverview } from '../../../src/handler/cli/run-overview.js';
import type { RunJournal } from '../../../src/runner/journal.js';

const journal = { timeoutInSeconds: 60, uploads: { stdout: 1024, stderr: 0 } } as unknown as RunJournal;
const running: RunOverview = {
  name: 'deploy',
  seq: 3,
  status: 'transitioning',
  instanceView: { executionState: 'Running', executionMessage: 'Execution in progress', output: 'hello', error: '', exitCode: 0, startTime: '2026-11-26T10:00:00Z', endTime: '' },
  runDir: '/state/runs/deploy.3.x',
  journal,
  stdoutBytes: 2048,
  stderrBytes: 0,
};
const now = Date.parse('2026-11-26T10:00:15Z');

describe('status view', () => {
  it('shows elapsed time against the timeout as a progress bar', () => {
    expect(toElapsed(running, now)).toBe('15s/60s [###-------]');
    expect(toElapsed({ ...running, journal: { ...journal, timeoutInSeconds: 0 } }, now)).toBe('15s');
    expect(toElapsed({ ...running, instanceView: { ...running.instanceView, startTime: '' } }, now)).toBe('');
  });

  it('shows sizes and the upload state of each stream', () => {
    expect(toSize(0)).toBe('0 B');
    expect(toSize(1536)).toBe('1.5 KiB');
    expect(toSize(5 * 1024 * 1024)).toBe('5.0 MiB');
    expect(toUploadState(running)).toBe('out 1.0 KiB/2.0 KiB, err 0 B/0 B');
    expect(toUploadState({ ...running, journal: { ...journal, uploads: undefined } as unknown as RunJournal })).toBe('-');
  });

  it('lays out a table with one row per run command and no exit code while running', () => {
    const table = toStatusTable([running], now).split('\n');
    expect(table[0]).toMatch(/^NAME\s+SEQ\s+STATE\s+EXIT\s+ELAPSED\s+OUTPUT\s+UPLOAD\s+STATUS$/);
    expect(table[1]).toMatch(/^deploy\s+3\s+Running\s+15s\/60s \[###-------\]\s+2\.0 KiB \/ 0 B\s+out 1\.0 KiB\/2\.0 KiB, err 0 B\/0 B\s+transitioning$/);
  });

  it('shows one run command in full with the paths of its files', () => {
    const detail = toStatusDetail(running);
    expect(detail).toContain('executionMessage:  Execution in progress');
    expect(detail).toContain('stdout:            /state/runs/deploy.3.x/stdout (2.0 KiB)');
    expect(detail).toContain('--- output (last 4096 bytes) ---\nhello\n');
  });
});
