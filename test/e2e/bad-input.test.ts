// The bad-input corpus through the packaged handler: each input gets a clear terminal status (or a
// logged refusal for names that cannot be used in a path), and the daemon keeps serving.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  cleanupLayout, makeAgentLayout, makeCertificate, runCommand, waitForStatus, writeSettings, type AgentLayout, type SettingsOptions,
} from '../helpers/agent.js';

const extra = { RUNCOMMAND_HANDLER_SETTINGS_SETTLE_MS: '300', RUNCOMMAND_HANDLER_STATUS_INTERVAL_MS: '300' };
let layout: AgentLayout;

beforeAll(async () => {
  layout = await makeAgentLayout();
  await makeCertificate(layout);
  expect((await runCommand(layout, 'install', { extra })).exitCode).toBe(0);
});

afterAll(async () => {
  await cleanupLayout(layout);
});

const script = { source: { script: 'echo ok' } };

// name → settings written → words the error message must contain
const corpus: Array<[string, SettingsOptions, string[]]> = [
  ['invalid-json', { raw: '{"runtimeSettings":[{"handlerSettings":{"publicSettings":{"source":' }, ['JSON']],
  ['zero-bytes', { raw: '' }, ['no settings']],
  ['wrong-type', { publicSettings: { ...script, timeoutInSeconds: 'ten' } }, ['timeoutInSeconds']],
  // run-command.md §1 (12-01, Compat): a negative timeout (no limit), a name a shell cannot reference
  // and a repeated name are accepted now (conformance.test.ts); these stay invalid.
  ['fractional-timeout', { publicSettings: { ...script, timeoutInSeconds: 1.5 } }, ['timeoutInSeconds', 'integer']],
  ['both-sources', { publicSettings: { source: { script: 'true', scriptUri: 'https://example.invalid/a.sh' } } }, ['exactly one', 'source']],
  ['no-source', { publicSettings: { parameters: [] } }, ['exactly one', 'source']],
  ['equals-param-name', { publicSettings: { ...script, parameters: [{ name: 'A=B', value: 'x' }] } }, ['parameters[0].name', "must not contain '='"]],
  ['nul-param-name', { publicSettings: { ...script, parameters: [{ value: 'y' }, { name: 'A\u0000B', value: 'x' }] } }, ['parameters[1].name', 'NUL']],
  ['no-thumbprint', { publicSettings: script, protectedSettings: { runAsPassword: 'x' }, thumbprint: null }, ['protectedSettingsCertThumbprint']],
  ['missing-cert', { publicSettings: script, protectedSettings: { runAsPassword: 'x' }, thumbprint: 'AB'.repeat(20) }, ['ABABABAB']],
  ['bad-base64', {
    raw: JSON.stringify({ runtimeSettings: [{ handlerSettings: { publicSettings: script, protectedSettings: '!!!not base64!!!', protectedSettingsCertThumbprint: 'AB'.repeat(20) } }] }),
  }, ['protected']],
  ['file-url', { publicSettings: { source: { scriptUri: 'file:///etc/passwd' } } }, ['scriptUri']],
  ['huge', { raw: `{"x":"${'a'.repeat(5 * 1024 * 1024)}"}` }, ['larger than 4194304 bytes']],
  ['deep', { raw: `{"runtimeSettings":[{"handlerSettings":{"publicSettings":${'['.repeat(20000)}${']'.repeat(20000)}}}]}` }, ['deep']],
  ['not-utf8', { raw: Buffer.from([0x7b, 0xff, 0xfe, 0x7d]) }, ['UTF-8']],
];

describe('bad input', () => {
  it.each(corpus)('%s gets a Failed −202 status that names the problem, and the daemon keeps serving', async (name, settings, words) => {
    await writeSettings(layout, name, 0, settings);
    expect((await runCommand(layout, 'enable', { name, seq: 0, extra })).exitCode).toBe(0);
    const report = await waitForStatus(layout, name, 0, (r) => r.instanceView.executionState === 'Failed');
    // run-command.md §6 (12-01): a run that ended is top-level success, however it failed (Compat).
    expect(report.topStatus.status.status).toBe('success');
    expect(report.instanceView.exitCode).toBe(-202);
    expect(report.instanceView.startTime).not.toBe('');
    for (const word of words) expect(report.instanceView.executionMessage.toLowerCase()).toContain(word.toLowerCase());
  });

  it('ignores unknown fields but logs their names, and runs the script', async () => {
    await writeSettings(layout, 'unknown-fields', 0, { publicSettings: { ...script, surprise: 1, Source: undefined } });
    await runCommand(layout, 'enable', { name: 'unknown-fields', seq: 0, extra });
    const report = await waitForStatus(layout, 'unknown-fields', 0, (r) => r.instanceView.executionState === 'Succeeded');
    expect(report.instanceView.output).toBe('ok\n');
    const log = await readFile(join(layout.logFolder, 'handler.log'), 'utf8');
    expect(log).toContain('surprise');
  });

  it('refuses and logs names that cannot be used in a path, and writes no file for them', async () => {
    for (const bad of ['..', '.hidden', 'x'.repeat(129), 'a b', 'semi;colon']) {
      await writeSettings(layout, bad, 0, { publicSettings: script }).catch(() => undefined);
      const enable = await runCommand(layout, 'enable', { name: bad, seq: 0, extra });
      expect(enable.exitCode).toBe(1);
      expect(enable.stderr).toContain('ConfigExtensionName');
    }
    await writeSettings(layout, 'after-bad-names', 0, { publicSettings: script });
    await runCommand(layout, 'enable', { name: 'after-bad-names', seq: 0, extra });
    await waitForStatus(layout, 'after-bad-names', 0, (r) => r.instanceView.executionState === 'Succeeded');
    const statuses = await readdir(layout.statusFolder);
    expect(statuses.filter((file) => !/^[A-Za-z0-9][A-Za-z0-9._-]*\.\d+\.status$/.test(file))).toEqual([]);
    const log = await readFile(join(layout.logFolder, 'handler.log'), 'utf8');
    expect(log).toContain('settings file refused');
  });
});
