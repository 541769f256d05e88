import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EventWriter, toEventObject } from '../../../src/handler/agent/events.js';
import { Redactor } from '../../../src/handler/infra/redact.js';
import { useTempDir } from '../../helpers/temp-dir.js';

const clock = { now: () => Date.parse('2026-11-26T10:00:00Z') };
const dir = useTempDir('events');

describe('telemetry events', () => {
  it('has the fields the agent reads, with the message cut to 3072 characters and the event to 6144', () => {
    const event = toEventObject({ taskName: 'RunCommandEnd', level: 'Warning', message: 'm'.repeat(10_000), operationId: 'run-1' }, '1.2.3', clock.now());
    expect(Object.keys(event)).toEqual(['Version', 'Timestamp', 'TaskName', 'EventLevel', 'Message', 'EventPid', 'EventTid', 'OperationId']);
    expect(event).toMatchObject({ Version: '1.2.3', Timestamp: '2026-11-26T10:00:00.000Z', TaskName: 'RunCommandEnd', EventLevel: 'Warning', OperationId: 'run-1' });
    expect(event['Message']).toHaveLength(3072);
    const long = toEventObject({ taskName: 't'.repeat(5000), level: 'Error', message: 'm'.repeat(3000), operationId: 'x' }, '1', clock.now());
    expect(JSON.stringify(long).length).toBeLessThanOrEqual(6144);
  });

  it('writes one <digits>.json file per event, redacting secrets from the message', async () => {
    const redactor = new Redactor();
    redactor.add(['hunter2-secret']);
    const writer = new EventWriter(dir(), '1.0.0', clock, redactor);
    await writer.write({ taskName: 'RunCommandStart', level: 'Informational', message: 'started with hunter2-secret', operationId: 'a' });
    await writer.write({ taskName: 'RunCommandEnd', level: 'Informational', message: 'ended', operationId: 'a' });
    const files = (await readdir(dir())).sort();
    expect(files).toHaveLength(2);
    for (const file of files) expect(file).toMatch(/^\d+\.json$/);
    const [first] = JSON.parse(await readFile(join(dir(), files[0] ?? ''), 'utf8')) as [{ Message: string; TaskName: string }];
    expect(first).toMatchObject({ TaskName: 'RunCommandStart', Message: 'started with ***' });
  });

  it('stops adding files when the agent does not collect them, and writes nothing without an events folder', async () => {
    for (let i = 0; i < 1000; i += 1) await writeFile(join(dir(), `${i}.json`), '[]');
    const writer = new EventWriter(dir(), '1.0.0', clock, new Redactor());
    await writer.write({ taskName: 'X', level: 'Informational', message: '', operationId: 'a' });
    expect(await readdir(dir())).toHaveLength(1000);
    await expect(new EventWriter(undefined, '1', clock, new Redactor()).write({ taskName: 'X', level: 'Error', message: '', operationId: 'a' })).resolves.toBeUndefined();
  });
});
