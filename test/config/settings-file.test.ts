import { mkdtemp, rm, truncate, utimes, writeFile, appendFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { appendFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SettingsError } from '../../src/errors.js';
import { parseHandlerSettings } from '../../src/config/settings.js';
import {
  maxSettingsFileBytes,
  parseSettingsFileName,
  parseSettingsFileWithRetry,
  readSettingsFile,
  toSettingsFileName,
} from '../../src/config/settings-file.js';
import { isValidName, singleConfigName } from '../../src/config/run-command.js';

const validText = JSON.stringify({ runtimeSettings: [{ handlerSettings: { publicSettings: { source: { script: 'echo hi' } } } }] });
// Whole seconds, so the mtime read back is exact.
const longAgo = new Date(Math.floor(Date.now() / 1000) * 1000 - 60_000);

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'settings-file-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}

async function writeOld(name: string, content: string | Buffer): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, content);
  await utimes(path, longAgo, longAgo);
  return path;
}

describe('parseSettingsFileName', () => {
  it('splits a multi-config name into the run command name and the sequence number', () => {
    expect(parseSettingsFileName('firstRunCommand.2.settings')).toEqual({ kind: 'settings', name: 'firstRunCommand', seq: 2 });
    expect(parseSettingsFileName('a.b-c_d.10.settings')).toEqual({ kind: 'settings', name: 'a.b-c_d', seq: 10 });
    expect(parseSettingsFileName(`${'n'.repeat(128)}.0.settings`)).toMatchObject({ kind: 'settings', seq: 0 });
  });

  it('ignores files that do not end in .settings', () => {
    for (const name of ['HandlerEnvironment.json', 'rc.0.settings.bak', 'rc.0.SETTINGS', 'rc.mrseq']) {
      expect(parseSettingsFileName(name)).toEqual({ kind: 'other' });
    }
  });

  it('reads a single-config <seq>.settings file as the single configuration, and names it back', () => {
    expect(parseSettingsFileName('0.settings')).toEqual({ kind: 'settings', name: singleConfigName, seq: 0 });
    expect(parseSettingsFileName('12.settings')).toEqual({ kind: 'settings', name: singleConfigName, seq: 12 });
    expect(toSettingsFileName(singleConfigName, 12)).toBe('12.settings');
    expect(toSettingsFileName('rc', 12)).toBe('rc.12.settings');
    for (const name of ['01.settings', '-1.settings', '1e3.settings', '99999999999999999999.settings']) expect(parseSettingsFileName(name).kind, name).toBe('refused');
  });

  it('never lets a multi-config file take the single configuration\'s name', () => {
    expect(isValidName(singleConfigName)).toBe(false);
    expect(parseSettingsFileName(`${singleConfigName}.0.settings`).kind).toBe('refused');
    expect(parseSettingsFileName('.0.settings').kind).toBe('refused');
  });

  it('refuses files without a plain sequence number', () => {
    for (const name of ['rc.settings', 'rc.-1.settings', 'rc.+1.settings', 'rc.01.settings', 'rc.1e3.settings', 'rc.99999999999999999999.settings', '.settings']) {
      expect(parseSettingsFileName(name).kind).toBe('refused');
    }
  });

  it('refuses names that could escape the folder or hold control characters, without echoing them', () => {
    expect(parseSettingsFileName('../x.0.settings').kind).toBe('refused');
    expect(parseSettingsFileName('a/b.0.settings').kind).toBe('refused');
    const control = parseSettingsFileName('bad\u0007\u001b[31mname.0.settings');
    expect(control.kind).toBe('refused');
    if (control.kind === 'refused') expect(control.reason).not.toMatch(/[\u0000-\u001f]/);
  });

  it('refuses a 129-character name and shows only a truncated form of it', () => {
    const name = 'n'.repeat(129);
    const result = parseSettingsFileName(`${name}.3.settings`);
    expect(result.kind).toBe('refused');
    if (result.kind === 'refused') {
      expect(result.reason).not.toContain(name);
      expect(result.reason).toContain('129 characters');
      expect(result.reason.length).toBeLessThan(120);
    }
  });
});

describe('readSettingsFile', () => {
  it('returns the text, its size in bytes and the modification time', async () => {
    const path = await writeOld('rc.0.settings', validText);
    const file = await readSettingsFile(path);
    expect(file).toEqual({ text: validText, bytes: Buffer.byteLength(validText), mtimeMs: longAgo.getTime() });
  });

  it('drops a UTF-8 byte order mark', async () => {
    const path = await writeOld('rc.0.settings', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(validText)]));
    expect((await readSettingsFile(path)).text).toBe(validText);
    expect((await parseSettingsFileWithRetry(path)).settings.publicSettings).toEqual({ source: { script: 'echo hi' } });
  });

  it('reports bytes that are not valid UTF-8', async () => {
    const path = await writeOld('rc.0.settings', Buffer.from([0x7b, 0xff, 0xfe, 0x7d]));
    const error = await rejectionOf(readSettingsFile(path));
    expect(error).toBeInstanceOf(SettingsError);
    expect((error as SettingsError).message).toMatch(/not valid UTF-8/);
  });

  it('refuses a file over the size bound without reading it whole', async () => {
    const path = await writeOld('rc.0.settings', validText);
    await truncate(path, maxSettingsFileBytes + 1);
    await utimes(path, longAgo, longAgo);
    const error = await rejectionOf(readSettingsFile(path));
    expect((error as SettingsError).rule).toBe(`the settings file is larger than ${maxSettingsFileBytes} bytes`);
    expect((await rejectionOf(readSettingsFile(path, { maxBytes: 10 })))).toBeInstanceOf(SettingsError);
  });

  it('lets file-system errors through unchanged', async () => {
    const error = await rejectionOf(readSettingsFile(join(dir, 'missing.0.settings')));
    expect(error).not.toBeInstanceOf(SettingsError);
    expect((error as NodeJS.ErrnoException).code).toBe('ENOENT');
  });

  it('retries a young file that fails its parse check until it parses', async () => {
    const path = join(dir, 'rc.0.settings');
    await writeFile(path, validText.slice(0, 20));
    const timer = setTimeout(() => void writeFile(path, validText), 150);
    try {
      const file = await readSettingsFile(path, { settleMs: 3000, parse: parseHandlerSettings });
      expect(file.text).toBe(validText);
    } finally {
      clearTimeout(timer);
    }
  });
});

describe('parseSettingsFileWithRetry', () => {
  it('parses a half-written file that becomes valid within settleMs', async () => {
    const path = join(dir, 'rc.1.settings');
    await writeFile(path, validText.slice(0, 30));
    const timer = setTimeout(() => void appendFile(path, validText.slice(30)), 150);
    try {
      const { settings, bytes } = await parseSettingsFileWithRetry(path, { settleMs: 3000 });
      expect(settings.publicSettings).toEqual({ source: { script: 'echo hi' } });
      expect(bytes).toBe(Buffer.byteLength(validText));
    } finally {
      clearTimeout(timer);
    }
  });

  it('reports a young file that stays invalid once it is older than settleMs', async () => {
    const path = join(dir, 'rc.1.settings');
    await writeFile(path, validText.slice(0, 30));
    const started = Date.now();
    const error = await rejectionOf(parseSettingsFileWithRetry(path, { settleMs: 300 }));
    expect(error).toBeInstanceOf(SettingsError);
    expect((error as SettingsError).message).toMatch(/not valid JSON/);
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
  });

  it('reads a file again when it changed under a failed read, even past settleMs (the agent was still writing it)', async () => {
    const path = await writeOld('rc.1.settings', validText.slice(0, 30));
    let parses = 0;
    // The writer's last write lands between the read and the verdict on it, long after settleMs.
    const file = await readSettingsFile(path, {
      settleMs: 0,
      parse: (text) => {
        parses += 1;
        if (parses === 1) appendFileSync(path, validText.slice(30));
        parseHandlerSettings(text);
      },
    });
    expect(file.text).toBe(validText);
    expect(parses).toBe(2);
  });

  it('reports an old invalid file at once, without sleeping', async () => {
    const path = await writeOld('rc.1.settings', '');
    const sleeps: number[] = [];
    const error = await rejectionOf(parseSettingsFileWithRetry(path, { sleep: async (ms) => void sleeps.push(ms) }));
    expect((error as SettingsError).message).toMatch(/holds no settings/);
    expect(sleeps).toEqual([]);
  });

  it('backs off on the injected clock and gives up after settleMs', async () => {
    const path = join(dir, 'rc.1.settings');
    await writeFile(path, '{');
    let clock = Date.now();
    const sleeps: number[] = [];
    const sleep = async (ms: number): Promise<void> => {
      sleeps.push(ms);
      clock += ms;
    };
    const error = await rejectionOf(parseSettingsFileWithRetry(path, { settleMs: 2000, now: () => clock, sleep }));
    expect(error).toBeInstanceOf(SettingsError);
    expect(sleeps.length).toBeGreaterThan(2);
    expect(sleeps[1]).toBeGreaterThan(sleeps[0] ?? 0);
    expect(sleeps.reduce((total, ms) => total + ms, 0)).toBeLessThanOrEqual(2000);
  });

  it('does not retry forever when the file claims a modification time in the future', async () => {
    const path = join(dir, 'rc.1.settings');
    await writeFile(path, '{');
    const future = new Date(Date.now() + 3_600_000);
    await utimes(path, future, future);
    const error = await rejectionOf(parseSettingsFileWithRetry(path, { settleMs: 200 }));
    expect(error).toBeInstanceOf(SettingsError);
  });
});
