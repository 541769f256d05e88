import { mkdir, readdir, readFile, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { RunStore, shouldRun, type Origin, type SequenceRecord } from '../../../src/handler/state/run-store.js';
import { makeRunJournal } from '../../../src/runner/journal.js';
import type { RunState } from '../../../src/runner/run-state.js';
import { useTempDir } from '../../helpers/temp-dir.js';

const tempDir = useTempDir('run-store');
const origins: Origin[] = ['enable', 'watch', 'reconcile'];
const store = (): RunStore => new RunStore(tempDir());
const recordsDir = (): string => join(tempDir(), 'records');
const writeRecord = async (_dir: string, record: SequenceRecord): Promise<void> => {
  await store().ensure();
  await store().recordLaunch(record);
};
const readRecord = async (_dir: string, name: string): Promise<SequenceRecord | undefined> => {
  const read = await store().readRecord(name);
  return read.kind === 'present' ? read.value : undefined;
};
const present = (value: SequenceRecord) => ({ kind: 'present', value }) as const;
const absent = { kind: 'absent' } as const;

describe('sequence records on disk', () => {
  it('reads back what was written, as <name>.json', async () => {
    const record: SequenceRecord = { name: 'hello', seq: 7, runId: 'hello-7-abc' };
    await writeRecord(tempDir(), record);
    expect(await readRecord(tempDir(), 'hello')).toEqual(record);
    expect(await readdir(recordsDir())).toEqual(['hello.json']);
    expect(JSON.parse(await readFile(join(recordsDir(), 'hello.json'), 'utf8'))).toEqual(record);
  });

  it('keeps disabledAt through a round trip and replaces the earlier record', async () => {
    await writeRecord(tempDir(), { name: 'hello', seq: 7, runId: 'r7' });
    await writeRecord(tempDir(), { name: 'hello', seq: 7, runId: 'r7', disabledAt: 1_795_000_000_000 });
    expect(await readRecord(tempDir(), 'hello')).toEqual({ name: 'hello', seq: 7, runId: 'r7', disabledAt: 1_795_000_000_000 });
  });

  it('tells a missing record (absent) from a non-JSON, wrongly shaped or unreadable one (corrupt)', async () => {
    await store().ensure();
    expect(await store().readRecord('missing')).toEqual(absent);
    await writeFile(join(recordsDir(), 'torn.json'), '{"name":"torn","seq":');
    expect(await store().readRecord('torn')).toEqual({ kind: 'corrupt', reason: 'is not valid JSON' });
    await writeFile(join(recordsDir(), 'shape.json'), JSON.stringify({ name: 'shape', seq: '3', runId: 'r' }));
    expect(await store().readRecord('shape')).toEqual({ kind: 'corrupt', reason: 'does not have the expected shape (seq)' });
    await mkdir(join(recordsDir(), 'dir.json'));
    expect(await store().readRecord('dir')).toEqual({ kind: 'corrupt', reason: 'cannot be read (EISDIR)' });
  });

  it('removes a record, and removing it again is not an error', async () => {
    await writeRecord(tempDir(), { name: 'hello', seq: 1, runId: 'r1' });
    await store().removeRecord('hello');
    await store().removeRecord('hello');
    expect(await readRecord(tempDir(), 'hello')).toBeUndefined();
    expect(await readdir(recordsDir())).toEqual([]);
  });

  it('lists every record under a valid name, unreadable ones as corrupt, and ignores other files', async () => {
    await writeRecord(tempDir(), { name: 'alpha', seq: 1, runId: 'a1' });
    await writeRecord(tempDir(), { name: 'beta.v2', seq: 2, runId: 'b2', disabledAt: 5 });
    await writeFile(join(recordsDir(), '.hidden.json'), JSON.stringify({ name: '.hidden', seq: 1, runId: 'h' }));
    await writeFile(join(recordsDir(), 'has space.json'), JSON.stringify({ name: 'has space', seq: 1, runId: 's' }));
    await writeFile(join(recordsDir(), 'notes.txt'), JSON.stringify({ name: 'notes', seq: 1, runId: 'n' }));
    await writeFile(join(recordsDir(), 'broken.json'), 'not json');
    await writeFile(join(recordsDir(), 'shape.json'), JSON.stringify({ name: 'shape' }));
    await writeFile(join(recordsDir(), '.alpha.json.0123456789ab.tmp'), JSON.stringify({ name: 'alpha', seq: 9, runId: 'tmp' }));
    const records = await store().listRecords();
    expect(records.sort((a, b) => a.name.localeCompare(b.name))).toEqual([
      { name: 'alpha', record: present({ name: 'alpha', seq: 1, runId: 'a1' }) },
      { name: 'beta.v2', record: present({ name: 'beta.v2', seq: 2, runId: 'b2', disabledAt: 5 }) },
      { name: 'broken', record: { kind: 'corrupt', reason: 'is not valid JSON' } },
      { name: 'shape', record: { kind: 'corrupt', reason: 'does not have the expected shape (seq)' } },
    ]);
  });

  it('lists nothing when the records directory does not exist', async () => {
    expect(await new RunStore(join(tempDir(), 'missing')).listRecords()).toEqual([]);
  });
});

describe('shouldRun', () => {
  for (const origin of origins) {
    it(`runs any sequence number of a name without a record (origin ${origin})`, () => {
      expect(shouldRun(absent, 0, 0, origin)).toBe(true);
      expect(shouldRun(absent, 99, 123, origin)).toBe(true);
    });

    it(`runs nothing while the record is corrupt: which sequence number ran is unknown (origin ${origin})`, () => {
      expect(shouldRun({ kind: 'corrupt', reason: 'is not valid JSON' }, 99, Number.MAX_SAFE_INTEGER, origin)).toBe(false);
    });

    it(`runs only a higher sequence number than the live record's, whatever the mtime (origin ${origin})`, () => {
      const record: SequenceRecord = { name: 'hello', seq: 5, runId: 'r5' };
      expect(shouldRun(present(record), 4, Number.MAX_SAFE_INTEGER, origin)).toBe(false);
      expect(shouldRun(present(record), 5, Number.MAX_SAFE_INTEGER, origin)).toBe(false);
      expect(shouldRun(present(record), 6, 0, origin)).toBe(true);
    });
  }

  it('after a disable, runs any sequence number on an explicit enable, whatever the mtime', () => {
    const record: SequenceRecord = { name: 'hello', seq: 5, runId: 'r5', disabledAt: 1000 };
    expect(shouldRun(present(record), 0, 0, 'enable')).toBe(true);
    expect(shouldRun(present(record), 5, 999, 'enable')).toBe(true);
    expect(shouldRun(present(record), 6, 1001, 'enable')).toBe(true);
  });

  for (const origin of ['watch', 'reconcile'] as const) {
    it(`after a disable, runs from ${origin} only a settings file written after the disable, whatever its seq`, () => {
      const record: SequenceRecord = { name: 'hello', seq: 5, runId: 'r5', disabledAt: 1000 };
      expect(shouldRun(present(record), 6, 999, origin)).toBe(false);
      expect(shouldRun(present(record), 6, 1000, origin)).toBe(false);
      expect(shouldRun(present(record), 0, 1001, origin)).toBe(true);
      expect(shouldRun(present(record), 5, 1001, origin)).toBe(true);
    });
  }
});

describe('retention after a run ended, from the store\'s index of run directories', () => {
  // A run directory made through `runs` with its journal in `state`.
  async function makeRun(runs: RunStore, runId: string, state: RunState): Promise<void> {
    await runs.makeRunDir(runId);
    const [name = '', seq = '0'] = runId.split('.');
    await runs.writeJournal({ ...makeRunJournal({ name, seq: Number(seq), runId, settingsFile: '', bootId: 'boot' }, 0), state });
  }

  it("removes a name's ended runs but the kept one, never an active run or another name's", async () => {
    const runs = store();
    await runs.ensure();
    await makeRun(runs, 'a.1.x1', 'Succeeded');
    await makeRun(runs, 'a.2.x2', 'Running');
    await makeRun(runs, 'a.3.x3', 'Failed');
    await makeRun(runs, 'ab.1.x4', 'Succeeded');
    expect(await runs.removeOlderRuns('a', 'a.3.x3')).toEqual(['a.1.x1']);
    expect((await readdir(join(tempDir(), 'runs'))).sort()).toEqual(['a.2.x2', 'a.3.x3', 'ab.1.x4']);
  });

  it('finds runs made before it first looked (one listing) and those it made since, without listing again', async () => {
    await store().ensure();
    await makeRun(store(), 'a.1.x1', 'Succeeded');
    const runs = store();
    expect(await runs.removeOlderRuns('a', 'a.1.x1')).toEqual([]);
    await makeRun(runs, 'a.2.x2', 'Succeeded');
    // Made behind this store's back (no daemon does): unknown to its index until the next full pass.
    await mkdir(join(tempDir(), 'runs', 'a.3.x3'));
    // …and long ago: a journal-less directory younger than the grace is a run being set up.
    const longAgo = new Date(Date.now() - 3_600_000);
    await utimes(join(tempDir(), 'runs', 'a.3.x3'), longAgo, longAgo);
    expect(await runs.removeOlderRuns('a', 'a.4.x4')).toEqual(['a.1.x1', 'a.2.x2']);
    expect((await readdir(join(tempDir(), 'runs'))).sort()).toEqual(['a.3.x3']);
    // The full pass (at start and hourly) lists the folder: a name without a record keeps nothing.
    expect(await runs.applyRetention(0)).toEqual(['a.3.x3']);
  });

  it('keeps a young run directory without a journal that another process made (a run being set up)', async () => {
    await store().ensure();
    await mkdir(join(tempDir(), 'runs', 'a.1.x1'));
    expect(await store().applyRetention(0)).toEqual([]);
    expect(await readdir(join(tempDir(), 'runs'))).toEqual(['a.1.x1']);
  });

  it('keeps a run directory it made whose journal is not written yet: a run being accepted while the full pass runs', async () => {
    const runs = store();
    await runs.ensure();
    // No record yet (written with the journal's run): the pass would remove every run of the name.
    await runs.makeRunDir('a.1.x1');
    expect(await runs.applyRetention(0)).toEqual([]);
    expect(await readdir(join(tempDir(), 'runs'))).toEqual(['a.1.x1']);
    // Once journaled and ended, the same run is an ordinary run again.
    await runs.writeJournal({ ...makeRunJournal({ name: 'a', seq: 1, runId: 'a.1.x1', settingsFile: '', bootId: 'boot' }, 0), state: 'Succeeded' });
    expect(await runs.applyRetention(0)).toEqual(['a.1.x1']);
  });
});
