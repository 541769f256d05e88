import { describe, expect, it } from 'vitest';
import { escapeControlCharacters, toStatusDetail, toStatusTable } from '../../../src/handler/cli/status.js';
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

  it('escapes control characters but newline and tab: C0, ESC, DEL and C1', () => {
    expect(escapeControlCharacters('a\tb\nc')).toBe('a\tb\nc');
    expect(escapeControlCharacters('\x1b]0;pwned\x07\x1b[2J')).toBe('\\x1b]0;pwned\\x07\\x1b[2J');
    expect(escapeControlCharacters('x\ry\x00\x08\x0b\x0c\x1f\x7f')).toBe('x\\x0dy\\x00\\x08\\x0b\\x0c\\x1f\\x7f');
    expect(escapeControlCharacters('\u0080\u009b31m\u009d\u009f')).toBe('\\x80\\x9b31m\\x9d\\x9f');
    expect(escapeControlCharacters('héllo ✓ \u00a0 日本')).toBe('héllo ✓ \u00a0 日本');
  });

  it('shows a script\'s output, error and message with their control characters escaped', () => {
    const hostile: RunOverview = {
      ...running,
      instanceView: { ...running.instanceView, output: 'line 1\n\x1b[31mred\x1b[0m\tend\n', error: 'oops\r\u009b2J', executionMessage: 'Execution failed: \x1b]52;c;Zm9v\x07' },
    };
    const detail = toStatusDetail(hostile);
    expect(detail).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/);
    expect(detail).toContain('line 1\n\\x1b[31mred\\x1b[0m\tend\n');
    expect(detail).toContain('oops\\x0d\\x9b2J');
    expect(detail).toContain('executionMessage:  Execution failed: \\x1b]52;c;Zm9v\\x07');
    const table = toStatusTable([{ ...hostile, status: 'error\x1b[2J' as RunOverview['status'] }], now);
    expect(table).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/);
    expect(table).toContain('error\\x1b[2J');
  });
});
