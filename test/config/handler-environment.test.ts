import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { errorCodes, HandlerError } from '../../src/errors.js';
import { findHandlerEnvironment, readHandlerEnvironment } from '../../src/config/handler-environment.js';

const base = '/var/lib/waagent/Microsoft.CPlat.Core.RunCommandHandlerLinux-1.3.28';
const linuxEnvironment = {
  logFolder: '/var/log/azure/Microsoft.CPlat.Core.RunCommandHandlerLinux',
  configFolder: `${base}/config`,
  statusFolder: `${base}/status`,
  heartbeatFile: `${base}/heartbeat.log`,
  eventsFolder: '/var/log/azure/events',
  eventsFolder_preview: '/var/log/azure/events-preview',
};

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'handler-environment-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function writeEnvironment(content: unknown, raw = false): Promise<string> {
  const path = join(dir, 'HandlerEnvironment.json');
  await writeFile(path, raw ? String(content) : JSON.stringify(content));
  return path;
}

async function handlerErrorOf(promise: Promise<unknown>): Promise<HandlerError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(HandlerError);
    return error as HandlerError;
  }
  throw new Error('expected a HandlerError');
}

const noSleep = async (): Promise<void> => {};

describe('readHandlerEnvironment', () => {
  it('reads the Linux agent file, keeping version 1.0 and preferring eventsFolder', async () => {
    const path = await writeEnvironment(`[{"name":"Microsoft.CPlat.Core.RunCommandHandlerLinux","version":1.0,"handlerEnvironment":${JSON.stringify(linuxEnvironment)}}]`, true);
    expect(await readHandlerEnvironment(path)).toEqual({
      name: 'Microsoft.CPlat.Core.RunCommandHandlerLinux',
      version: '1.0',
      logFolder: linuxEnvironment.logFolder,
      configFolder: linuxEnvironment.configFolder,
      statusFolder: linuxEnvironment.statusFolder,
      heartbeatFile: linuxEnvironment.heartbeatFile,
      eventsFolder: '/var/log/azure/events',
    });
  });

  it('falls back to eventsFolder_preview and accepts a string version', async () => {
    const { eventsFolder: _unused, ...withoutEvents } = linuxEnvironment;
    const path = await writeEnvironment([{ version: '2.1', handlerEnvironment: withoutEvents }]);
    expect(await readHandlerEnvironment(path)).toMatchObject({ version: '2.1', eventsFolder: '/var/log/azure/events-preview' });
  });

  it('tolerates a BOM, Windows extras, empty strings, nulls and unknown keys', async () => {
    const handlerEnvironment = {
      logFolder: 'C:\\Logs', configFolder: 'C:\\Config', statusFolder: 'C:\\Status',
      deploymentid: '', rolename: '', instance: '', hostResolverAddress: '', eventsFolder: '', heartbeatFile: null, somethingNew: { a: 1 },
    };
    const path = await writeEnvironment(`\uFEFF${JSON.stringify([{ name: 'X', version: 1.5, extra: true, handlerEnvironment }])}`, true);
    expect(await readHandlerEnvironment(path)).toEqual({ name: 'X', version: '1.5', logFolder: 'C:\\Logs', configFolder: 'C:\\Config', statusFolder: 'C:\\Status' });
  });

  it('reports a missing required folder with a general error after retrying', async () => {
    const { configFolder: _unused, ...withoutConfig } = linuxEnvironment;
    const path = await writeEnvironment([{ handlerEnvironment: withoutConfig }]);
    const sleeps: number[] = [];
    const error = await handlerErrorOf(readHandlerEnvironment(path, { attempts: 3, sleep: async (ms) => void sleeps.push(ms) }));
    expect(error.code).toBe(errorCodes.general);
    expect(error.message).toContain('handlerEnvironment.configFolder: is required');
    expect(error.message).toContain(path);
    expect(sleeps).toHaveLength(2);
    expect(sleeps[1]).toBeGreaterThan(sleeps[0] ?? 0);
  });

  it('requires a JSON array of exactly one object', async () => {
    for (const content of [{ handlerEnvironment: linuxEnvironment }, [], [{ handlerEnvironment: linuxEnvironment }, { handlerEnvironment: linuxEnvironment }]]) {
      const path = await writeEnvironment(content);
      const error = await handlerErrorOf(readHandlerEnvironment(path, { attempts: 1 }));
      expect(error.message).toMatch(/JSON array of (exactly )?one object/);
    }
  });

  it('reads a file the agent finishes writing between attempts', async () => {
    const path = await writeEnvironment('[{"handlerEnvironment": {"logFol', true);
    const sleep = async (): Promise<void> => {
      await writeFile(path, JSON.stringify([{ handlerEnvironment: linuxEnvironment }]));
    };
    expect(await readHandlerEnvironment(path, { attempts: 3, sleep })).toMatchObject({ configFolder: linuxEnvironment.configFolder });
  });

  it('reports a file that does not exist', async () => {
    const error = await handlerErrorOf(readHandlerEnvironment(join(dir, 'missing.json'), { attempts: 2, sleep: noSleep }));
    expect(error.message).toMatch(/ENOENT/);
  });
});

describe('findHandlerEnvironment', () => {
  it('returns the first candidate that is, or is a directory holding, HandlerEnvironment.json', async () => {
    const empty = join(dir, 'empty');
    const base = join(dir, 'base');
    await mkdir(empty);
    await mkdir(base);
    await writeFile(join(base, 'HandlerEnvironment.json'), '[]');
    const explicit = join(dir, 'explicit.json');
    await writeFile(explicit, '[]');
    expect(await findHandlerEnvironment([join(dir, 'missing'), empty, base, explicit])).toBe(join(base, 'HandlerEnvironment.json'));
    expect(await findHandlerEnvironment([explicit, base])).toBe(explicit);
  });

  it('returns undefined when no candidate exists', async () => {
    expect(await findHandlerEnvironment([join(dir, 'a'), join(dir, 'b', 'HandlerEnvironment.json')])).toBeUndefined();
    expect(await findHandlerEnvironment([])).toBeUndefined();
  });
});
