import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { listRecords, readRecord, removeRecord, shouldRun, writeRecord, type Origin, type SequenceRecord } from '../../src/handler/sequence-records.js';
import { useTempDir } from '../helpers/temp-dir.js';

const tempDir = useTempDir('sequence-records');
const origins: Origin[] = ['enable', 'watch', 'reconcile'];

describe('sequence records on disk', () => {
  it('reads back what was written, as <name>.json', async () => {
    const record: SequenceRecord = { name: 'hello', seq: 7, runId: 'hello-7-abc' };
    await writeRecord(tempDir(), record);
    expect(await readRecord(tempDir(), 'hello')).toEqual(record);
    expect(await readdir(tempDir())).toEqual(['hello.json']);
    expect(JSON.parse(await readFile(join(tempDir(), 'hello.json'), 'utf8'))).toEqual(record);
  });

  it('keeps disabledAt through a round trip and replaces the earlier record', async () => {
    await writeRecord(tempDir(), { name: 'hello', seq: 7, runId: 'r7' });
    await writeRecord(tempDir(), { name: 'hello', seq: 7, runId: 'r7', disabledAt: 1_795_000_000_000 });
    expect(await readRecord(tempDir(), 'hello')).toEqual({ name: 'hello', seq: 7, runId: 'r7', disabledAt: 1_795_000_000_000 });
  });

  it('returns undefined for a missing, non-JSON or wrongly shaped record', async () => {
    expect(await readRecord(tempDir(), 'missing')).toBeUndefined();
    await writeFile(join(tempDir(), 'torn.json'), '{"name":"torn","seq":');
    expect(await readRecord(tempDir(), 'torn')).toBeUndefined();
    await writeFile(join(tempDir(), 'shape.json'), JSON.stringify({ name: 'shape', seq: '3', runId: 'r' }));
    expect(await readRecord(tempDir(), 'shape')).toBeUndefined();
    await mkdir(join(tempDir(), 'dir.json'));
    expect(await readRecord(tempDir(), 'dir')).toBeUndefined();
  });

  it('removes a record, and removing it again is not an error', async () => {
    await writeRecord(tempDir(), { name: 'hello', seq: 1, runId: 'r1' });
    await removeRecord(tempDir(), 'hello');
    await removeRecord(tempDir(), 'hello');
    expect(await readRecord(tempDir(), 'hello')).toBeUndefined();
    expect(await readdir(tempDir())).toEqual([]);
  });

  it('lists valid records and ignores invalid names, other files and unreadable content', async () => {
    await writeRecord(tempDir(), { name: 'alpha', seq: 1, runId: 'a1' });
    await writeRecord(tempDir(), { name: 'beta.v2', seq: 2, runId: 'b2', disabledAt: 5 });
    await writeFile(join(tempDir(), '.hidden.json'), JSON.stringify({ name: '.hidden', seq: 1, runId: 'h' }));
    await writeFile(join(tempDir(), 'has space.json'), JSON.stringify({ name: 'has space', seq: 1, runId: 's' }));
    await writeFile(join(tempDir(), 'notes.txt'), JSON.stringify({ name: 'notes', seq: 1, runId: 'n' }));
    await writeFile(join(tempDir(), 'broken.json'), 'not json');
    await writeFile(join(tempDir(), 'shape.json'), JSON.stringify({ name: 'shape' }));
    await writeFile(join(tempDir(), '.alpha.json.0123456789ab.tmp'), JSON.stringify({ name: 'alpha', seq: 9, runId: 'tmp' }));
    const records = await listRecords(tempDir());
    expect(records.sort((a, b) => a.name.localeCompare(b.name))).toEqual([
      { name: 'alpha', seq: 1, runId: 'a1' },
      { name: 'beta.v2', seq: 2, runId: 'b2', disabledAt: 5 },
    ]);
  });

  it('lists nothing when the records directory does not exist', async () => {
    expect(await listRecords(join(tempDir(), 'missing'))).toEqual([]);
  });
});

describe('shouldRun', () => {
  for (const origin of origins) {
    it(`runs any sequence number of a name without a record (origin ${origin})`, () => {
      expect(shouldRun(undefined, 0, 0, origin)).toBe(true);
      expect(shouldRun(undefined, 99, 123, origin)).toBe(true);
    });

    it(`runs only a higher sequence number than the live record's, whatever the mtime (origin ${origin})`, () => {
      const record: SequenceRecord = { name: 'hello', seq: 5, runId: 'r5' };
      expect(shouldRun(record, 4, Number.MAX_SAFE_INTEGER, origin)).toBe(false);
      expect(shouldRun(record, 5, Number.MAX_SAFE_INTEGER, origin)).toBe(false);
      expect(shouldRun(record, 6, 0, origin)).toBe(true);
    });
  }

  it('after a disable, runs any sequence number on an explicit enable, whatever the mtime', () => {
    const record: SequenceRecord = { name: 'hello', seq: 5, runId: 'r5', disabledAt: 1000 };
    expect(shouldRun(record, 0, 0, 'enable')).toBe(true);
    expect(shouldRun(record, 5, 999, 'enable')).toBe(true);
    expect(shouldRun(record, 6, 1001, 'enable')).toBe(true);
  });

  for (const origin of ['watch', 'reconcile'] as const) {
    it(`after a disable, runs from ${origin} only a settings file written after the disable, whatever its seq`, () => {
      const record: SequenceRecord = { name: 'hello', seq: 5, runId: 'r5', disabledAt: 1000 };
      expect(shouldRun(record, 6, 999, origin)).toBe(false);
      expect(shouldRun(record, 6, 1000, origin)).toBe(false);
      expect(shouldRun(record, 0, 1001, origin)).toBe(true);
      expect(shouldRun(record, 5, 1001, origin)).toBe(true);
    });
  }
});
