import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { RunStore } from '../../../src/handler/state/run-store.js';
import { isActiveJournal, type RunJournal } from '../../../src/runner/journal.js';
import { runStates } from '../../../src/runner/run-state.js';
import { useTempDir } from '../../helpers/temp-dir.js';

const tempDir = useTempDir('journal');
const runId = 'hello-3-abc123';
// The journal as the run store keeps it, in the run's own directory.
const store = (): RunStore => new RunStore(tempDir());
const runDir = (): string => store().toRunDir(runId);
const writeJournal = async (_dir: string, journal: RunJournal): Promise<void> => {
  await store().makeRunDir(journal.runId);
  await store().writeJournal(journal);
};
const readJournal = async (): Promise<RunJournal | undefined> => {
  const read = await store().readJournal(runId);
  return read.kind === 'present' ? read.value : undefined;
};
const readKind = async (): Promise<string> => (await store().readJournal(runId)).kind;

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
    expect(await readJournal()).toEqual(journal);
  });

  it('reads back a journal without the optional fields, without inventing them', async () => {
    const journal = makeJournal({ state: 'Pending', startTime: '' });
    await writeJournal(tempDir(), journal);
    const read = await readJournal();
    expect(read).toEqual(journal);
    expect(Object.keys(read ?? {})).not.toContain('process');
  });

  it('stores the journal as journal.json in the run directory and leaves no temp file', async () => {
    await writeJournal(tempDir(), makeJournal());
    await writeJournal(tempDir(), makeJournal({ state: 'Succeeded', endTime: '2026-11-26T10:00:05Z' }));
    expect(await readdir(runDir())).toEqual(['journal.json']);
    expect(JSON.parse(await readFile(join(runDir(), 'journal.json'), 'utf8'))).toMatchObject({ state: 'Succeeded', endTime: '2026-11-26T10:00:05Z' });
  });

  it('reports a run without a journal as absent', async () => {
    expect(await readKind()).toBe('absent');
    await store().makeRunDir(runId);
    expect(await readKind()).toBe('absent');
  });

  it('reports a journal that is not JSON (a torn write) as corrupt, not absent', async () => {
    await store().makeRunDir(runId);
    await writeFile(join(runDir(), 'journal.json'), '{"version":1,"runId":"x"');
    expect(await store().readJournal(runId)).toEqual({ kind: 'corrupt', reason: 'is not valid JSON' });
  });

  it('reports a journal that cannot be read as corrupt', async () => {
    await mkdir(join(runDir(), 'journal.json'), { recursive: true });
    expect(await readKind()).toBe('corrupt');
  });

  it('reports JSON that breaks the schema as corrupt', async () => {
    await store().makeRunDir(runId);
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
      await writeFile(join(runDir(), 'journal.json'), JSON.stringify(value));
      expect(await readKind()).toBe('corrupt');
    }
  });

  it('calls a journal active only while Pending or Running', () => {
    const active = runStates.filter((state) => isActiveJournal(makeJournal({ state })));
    expect(active).toEqual(['Pending', 'Running']);
  });
});
