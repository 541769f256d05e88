import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isActiveJournal, readJournal, writeJournal, type RunJournal } from '../../src/runner/journal.js';
import { runStates } from '../../src/runner/run-state.js';
import { useTempDir } from '../helpers/temp-dir.js';

const tempDir = useTempDir('journal');

function makeJournal(overrides: Partial<RunJournal> = {}): RunJournal {
  return {
    version: 1,
    runId: 'hello-3-abc123',
    name: 'hello',
    seq: 3,
    state: 'Running',
    message: 'Execution in progress',
    exitCode: 0,
    startTime: '2026-11-26T10:00:00Z',
    endTime: '',
    bootId: '0f7c6a2e-1111-2222-3333-444455556666',
    settingsFile: '/var/lib/waagent/x/config/hello.3.settings',
    timeoutInSeconds: 3600,
    asyncExecution: false,
    treatFailureAsDeploymentFailure: true,
    handlerFailure: false,
    ...overrides,
  };
}

describe('run journal', () => {
  it('reads back exactly what was written, optional fields included', async () => {
    const journal = makeJournal({
      process: { wrapperPid: 100, pid: 101, pgid: 101, startTime: '123456', wrapperStartTime: '123455' },
      deadline: 1_795_000_000_000,
      stopRequest: { kind: 'canceled', reason: 'disable' },
    });
    await writeJournal(tempDir(), journal);
    expect(await readJournal(tempDir())).toEqual(journal);
  });

  it('reads back a journal without the optional fields, without inventing them', async () => {
    const journal = makeJournal({ state: 'Pending', startTime: '' });
    await writeJournal(tempDir(), journal);
    const read = await readJournal(tempDir());
    expect(read).toEqual(journal);
    expect(Object.keys(read ?? {})).not.toContain('process');
  });

  it('stores the journal as journal.json in the run directory and leaves no temp file', async () => {
    await writeJournal(tempDir(), makeJournal());
    await writeJournal(tempDir(), makeJournal({ state: 'Succeeded', endTime: '2026-11-26T10:00:05Z' }));
    expect(await readdir(tempDir())).toEqual(['journal.json']);
    expect(JSON.parse(await readFile(join(tempDir(), 'journal.json'), 'utf8'))).toMatchObject({ state: 'Succeeded', endTime: '2026-11-26T10:00:05Z' });
  });

  it('returns undefined when the run directory has no journal', async () => {
    expect(await readJournal(tempDir())).toBeUndefined();
    expect(await readJournal(join(tempDir(), 'missing'))).toBeUndefined();
  });

  it('returns undefined for a journal that is not JSON (a torn write)', async () => {
    await writeFile(join(tempDir(), 'journal.json'), '{"version":1,"runId":"x"');
    expect(await readJournal(tempDir())).toBeUndefined();
  });

  it('returns undefined for a journal that cannot be read', async () => {
    await mkdir(join(tempDir(), 'journal.json'));
    expect(await readJournal(tempDir())).toBeUndefined();
  });

  it('returns undefined for JSON that breaks the schema', async () => {
    const invalid = [
      { ...makeJournal(), version: 2 },
      { ...makeJournal(), state: 'Done' },
      { ...makeJournal(), seq: 1.5 },
      { ...makeJournal(), exitCode: '0' },
      { ...makeJournal(), stopRequest: { kind: 'rebooted', reason: 'x' } },
      [makeJournal()],
      null,
    ];
    for (const value of invalid) {
      await writeFile(join(tempDir(), 'journal.json'), JSON.stringify(value));
      expect(await readJournal(tempDir())).toBeUndefined();
    }
  });

  it('calls a journal active only while Pending or Running', () => {
    const active = runStates.filter((state) => isActiveJournal(makeJournal({ state })));
    expect(active).toEqual(['Pending', 'Running']);
  });
});
