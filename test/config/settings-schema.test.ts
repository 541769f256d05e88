import { describe, expect, it } from 'vitest';
import { settingsLimits } from '../../src/config/settings.js';
import { nested, parseSettings as parse, settingsErrorOf } from '../helpers/settings.js';

describe('parseRunCommand size bounds', () => {
  const script = { script: 'ls' };

  it('rejects an inline script over 2 MiB', () => {
    const error = settingsErrorOf(() => parse({ source: { script: 'x'.repeat(3 * 1024 * 1024) } }));
    expect(error).toMatchObject({ field: 'source.script', rule: `must be at most ${settingsLimits.scriptBytes} bytes (UTF-8)` });
    expect(parse({ source: { script: 'x'.repeat(settingsLimits.scriptBytes) } }).source.kind).toBe('script');
  });

  it('counts the script bound in UTF-8 bytes', () => {
    const error = settingsErrorOf(() => parse({ source: { script: 'é'.repeat(settingsLimits.scriptBytes / 2 + 1) } }));
    expect(error.field).toBe('source.script');
  });

  it('bounds the number and size of parameters', () => {
    const many = Array.from({ length: 257 }, (_, i) => ({ name: `p${i}`, value: 'v' }));
    expect(settingsErrorOf(() => parse({ source: script, parameters: many })).field).toBe('parameters');
    const split = { protectedParameters: many.slice(0, 130).map((p) => ({ ...p, name: `q${p.name}` })) };
    expect(settingsErrorOf(() => parse({ source: script, parameters: many.slice(0, 130) }, split)).rule).toContain('(public and protected together), found 260');
    const bigValue = { name: 'A', value: 'v'.repeat(32 * 1024 + 1) };
    expect(settingsErrorOf(() => parse({ source: script, parameters: [bigValue] })).field).toBe('parameters[0].value');
    expect(settingsErrorOf(() => parse({ source: script, parameters: [{ name: 'a'.repeat(129), value: '1' }] })).field).toBe('parameters[0].name');
  });

  it('bounds dependsOn, artifacts and URL length', () => {
    const names = Array.from({ length: 65 }, (_, i) => `n${i}`);
    expect(settingsErrorOf(() => parse({ source: script, dependsOn: names })).field).toBe('dependsOn');
    const artifacts = Array.from({ length: 65 }, (_, i) => ({ id: i, uri: 'https://a.example/x' }));
    expect(settingsErrorOf(() => parse({ source: script, artifacts })).field).toBe('artifacts');
    const longUrl = `https://a.example/${'x'.repeat(8 * 1024)}`;
    expect(settingsErrorOf(() => parse({ source: { scriptUri: longUrl } })).field).toBe('source.scriptUri');
  });

  it('reports settings nested 10,000 levels deep as a SettingsError, not a RangeError', () => {
    expect(settingsErrorOf(() => parse({ source: script, deep: nested(10_000) })).field).toBe('publicSettings');
    expect(settingsErrorOf(() => parse({ source: script }, { deep: nested(10_000) })).field).toBe('protectedSettings');
    expect(() => parse({ source: script, ok: nested(20) })).not.toThrow();
  });
});

describe('parseRunCommand numbers and flags', () => {
  it('accepts timeoutInSeconds as an integer below 2^31', () => {
    expect(parse({ source: { script: 'ls' }, timeoutInSeconds: 2 ** 31 - 1 }).timeoutInSeconds).toBe(2 ** 31 - 1);
    for (const timeout of [1.5, -1.5, 2 ** 31, '60', Number.MAX_VALUE, -Number.MAX_VALUE]) {
      const error = settingsErrorOf(() => parse({ source: { script: 'ls' }, timeoutInSeconds: timeout }));
      expect(error).toMatchObject({ field: 'timeoutInSeconds' });
    }
  });

  // run-command.md §1 (12-01, Compat, Linux): negative = no limit, logged (no longer −202).
  it('takes a negative timeoutInSeconds as no limit, with a warning', () => {
    const command = parse({ source: { script: 'ls' }, timeoutInSeconds: -5 });
    expect(command.timeoutInSeconds).toBe(0);
    expect(command.warnings).toEqual(["timeoutInSeconds -5 is negative: no time limit (as Microsoft's Linux handler)"]);
  });

  it('accepts installAsService: without a source nothing runs (kind none); with one it is ignored, with a warning', () => {
    const alone = parse({ installAsService: true });
    expect(alone).toMatchObject({ installAsService: true, source: { kind: 'none' }, warnings: [] });
    const withScript = parse({ InstallAsService: true, source: { script: 'ls' } });
    expect(withScript).toMatchObject({ installAsService: true, source: { kind: 'script' } });
    expect(withScript.warnings[0]).toContain('installAsService is ignored');
    expect(settingsErrorOf(() => parse({ installAsService: false })).field).toBe('source');
    expect(settingsErrorOf(() => parse({ installAsService: 'yes' })).rule).toBe('must be true or false');
  });

  it('requires booleans for asyncExecution and treatFailureAsDeploymentFailure', () => {
    expect(parse({ source: { script: 'ls' }, treatFailureAsDeploymentFailure: true }).treatFailureAsDeploymentFailure).toBe(true);
    const error = settingsErrorOf(() => parse({ source: { script: 'ls' }, asyncExecution: 'true' }));
    expect(error).toMatchObject({ field: 'asyncExecution', rule: 'must be true or false' });
  });

  it('rejects a runAsUser holding control characters', () => {
    expect(parse({ source: { script: 'ls' }, runAsUser: 'azureuser' }).runAsUser).toBe('azureuser');
    expect(settingsErrorOf(() => parse({ source: { script: 'ls' }, runAsUser: 'root\nx' })).field).toBe('runAsUser');
  });
});
