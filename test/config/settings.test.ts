import { describe, expect, it } from 'vitest';
import { parseHandlerSettings } from '../../src/config/settings.js';
import { canary, nested, parseSettings as parse, settingsErrorOf } from '../helpers/settings.js';

function settingsFile(handlerSettings: unknown): string {
  return JSON.stringify({ runtimeSettings: [{ handlerSettings }] });
}

describe('parseHandlerSettings', () => {
  it('returns the public settings object, the protected settings and the thumbprint', () => {
    const text = settingsFile({ publicSettings: { source: { script: 'echo hi' } }, protectedSettings: 'QUJD', protectedSettingsCertThumbprint: 'AB12' });
    expect(parseHandlerSettings(text)).toEqual({ publicSettings: { source: { script: 'echo hi' } }, protectedSettings: 'QUJD', thumbprint: 'AB12' });
  });

  it('accepts publicSettings given as a JSON string of an object', () => {
    const text = settingsFile({ publicSettings: JSON.stringify({ source: { script: 'ls' } }) });
    expect(parseHandlerSettings(text).publicSettings).toEqual({ source: { script: 'ls' } });
  });

  it('treats nulls as absent settings', () => {
    const text = settingsFile({ publicSettings: null, protectedSettings: null, protectedSettingsCertThumbprint: null });
    expect(parseHandlerSettings(text)).toEqual({ publicSettings: {} });
  });

  it('matches the keys of the file ignoring case', () => {
    const text = JSON.stringify({ RuntimeSettings: [{ HANDLERSETTINGS: { PublicSettings: { a: 1 }, protectedsettingscertthumbprint: 'X' } }] });
    expect(parseHandlerSettings(text)).toEqual({ publicSettings: { a: 1 }, thumbprint: 'X' });
  });

  it('tolerates a leading UTF-8 byte order mark', () => {
    expect(parseHandlerSettings(`\uFEFF${settingsFile({ publicSettings: {} })}`).publicSettings).toEqual({});
  });

  it('reports an empty or whitespace-only file as holding no settings', () => {
    expect(settingsErrorOf(() => parseHandlerSettings('')).message).toMatch(/holds no settings/);
    expect(settingsErrorOf(() => parseHandlerSettings(' \n\t')).message).toMatch(/holds no settings/);
  });

  it('requires exactly one runtimeSettings entry', () => {
    const two = JSON.stringify({ runtimeSettings: [{}, {}] });
    expect(settingsErrorOf(() => parseHandlerSettings(two)).rule).toBe('must have exactly one entry, found 2');
    expect(settingsErrorOf(() => parseHandlerSettings('{"runtimeSettings":[]}')).field).toBe('runtimeSettings');
    expect(settingsErrorOf(() => parseHandlerSettings('{}')).field).toBe('runtimeSettings');
  });

  it('reports invalid JSON without quoting the text of the file', () => {
    const error = settingsErrorOf(() => parseHandlerSettings(`{"runtimeSettings": "${canary}`));
    expect(error.message).toMatch(/not valid JSON/);
    expect(error.message).not.toContain(canary);
  });

  it('reports a publicSettings string that is not JSON', () => {
    const error = settingsErrorOf(() => parseHandlerSettings(settingsFile({ publicSettings: `{${canary}` })));
    expect(error.field).toBe('runtimeSettings[0].handlerSettings.publicSettings');
    expect(error.message).not.toContain(canary);
  });

  it('rejects a protectedSettings value that is not a string', () => {
    const error = settingsErrorOf(() => parseHandlerSettings(settingsFile({ protectedSettings: { a: 1 } })));
    expect(error.field).toBe('runtimeSettings[0].handlerSettings.protectedSettings');
  });

  it('reports JSON nested 10,000 levels deep as a SettingsError, not a stack overflow', () => {
    const text = `{"runtimeSettings":[{"handlerSettings":{"publicSettings":{"deep":${'['.repeat(10_000)}${']'.repeat(10_000)}}}}]}`;
    expect(settingsErrorOf(() => parseHandlerSettings(text)).rule).toMatch(/nesting must not be deeper than/);
    const inString = settingsFile({ publicSettings: `${'{"a":'.repeat(10_000)}1${'}'.repeat(10_000)}` });
    expect(settingsErrorOf(() => parseHandlerSettings(inString)).rule).toMatch(/nesting/);
  });
});

describe('parseRunCommand basics', () => {
  it('applies defaults and returns a deeply frozen run command', () => {
    const command = parse({ source: { script: 'echo hi' }, parameters: [{ name: 'A', value: '1' }] });
    expect(command).toMatchObject({ name: 'rc1', seq: 3, source: { kind: 'script', script: 'echo hi' }, timeoutInSeconds: 0 });
    expect(command).toMatchObject({ asyncExecution: false, treatFailureAsDeploymentFailure: false, artifacts: [], dependsOn: [], secrets: [], unknownKeys: [] });
    expect(Object.isFrozen(command)).toBe(true);
    expect(Object.isFrozen(command.parameters)).toBe(true);
    expect(Object.isFrozen(command.parameters[0])).toBe(true);
    expect(Object.isFrozen(command.source)).toBe(true);
  });

  it('matches keys ignoring case at every level, public and protected', () => {
    const command = parse(
      { Source: { SCRIPT: 'ls' }, PARAMETERS: [{ Name: 'A', Value: '1' }], TimeoutInSeconds: 5, AsyncExecution: true },
      { ProtectedParameters: [{ NAME: 'B', vALUE: 'x' }], RUNASPASSWORD: 'pw' },
    );
    expect(command.source).toEqual({ kind: 'script', script: 'ls' });
    expect(command.parameters).toEqual([{ name: 'A', value: '1' }, { name: 'B', value: 'x' }]);
    expect(command).toMatchObject({ timeoutInSeconds: 5, asyncExecution: true, runAsPassword: 'pw', protectedParameterCount: 1 });
  });

  it('rejects two keys of one object that are equal ignoring case', () => {
    const error = settingsErrorOf(() => parse({ source: { script: 'a', Script: 'b' } }));
    expect(error.field).toBe('source.Script');
    expect(error.rule).toMatch(/equal ignoring case/);
  });

  it('ignores unknown keys and reports them as dotted paths', () => {
    const command = parse({ source: { script: 'ls', foo: 1 }, bar: null, parameters: [{ value: 'v', extra: 1 }] }, { baz: 'x' });
    expect(command.unknownKeys).toEqual(['source.foo', 'bar', 'parameters[0].extra', 'protectedSettings.baz']);
  });

  it('accepts null everywhere as absent', () => {
    const command = parse(
      { source: { script: 'ls', scriptUri: null, commandId: null }, parameters: null, runAsUser: null, timeoutInSeconds: null, asyncExecution: null, dependsOn: null, artifacts: null, outputBlobUri: null },
      { protectedParameters: null, runAsPassword: null, sourceSASToken: null, sourceManagedIdentity: null },
    );
    expect(command).toMatchObject({ timeoutInSeconds: 0, asyncExecution: false, parameters: [], artifacts: [] });
    expect(command.runAsUser).toBeUndefined();
    expect(command.outputBlob).toBeUndefined();
  });

  it('accepts public settings given as a JSON string and no settings at all', () => {
    expect(parse(JSON.stringify({ source: { commandId: 'ifconfig' } })).source).toEqual({ kind: 'commandId', commandId: 'ifconfig' });
    expect(settingsErrorOf(() => parse(null)).rule).toMatch(/found 0/);
    expect(settingsErrorOf(() => parse([1])).field).toBe('publicSettings');
  });

  it('refuses a run command name that cannot be used in a path', () => {
    expect(settingsErrorOf(() => parse({ source: { script: 'ls' } }, undefined, '../x')).field).toBe('name');
  });
});

describe('parseRunCommand sources', () => {
  it('requires exactly one of script, scriptUri and commandId', () => {
    const both = settingsErrorOf(() => parse({ source: { script: 'ls', scriptUri: 'https://a.example/s.sh' } }));
    expect(both.field).toBe('source');
    expect(both.rule).toBe('exactly one of source.script, source.scriptUri, source.commandId is required, found 2');
    expect(settingsErrorOf(() => parse({ source: {} })).rule).toMatch(/found 0$/);
    expect(settingsErrorOf(() => parse({ source: { script: '' } })).rule).toMatch(/found 0$/);
    expect(settingsErrorOf(() => parse({ source: { commandId: 'RunShellScript', scriptUri: 'https://a.example/x' } })).rule).toMatch(/found 2/);
  });

  it('lets RunShellScript and RunPowerShellScript carry source.script', () => {
    expect(parse({ source: { commandId: 'runshellscript', script: 'ls' } }).source).toEqual({ kind: 'commandId', commandId: 'runshellscript', script: 'ls' });
    expect(parse({ source: { commandId: 'RunPowerShellScript', script: 'dir' } }).source).toMatchObject({ script: 'dir' });
    expect(settingsErrorOf(() => parse({ source: { commandId: 'ifconfig', script: 'ls' } })).rule).toMatch(/found 2 \(source.script goes with/);
  });

  it('takes the source SAS token and managed identity from the protected settings', () => {
    const command = parse({ source: { scriptUri: 'https://a.example/s.sh' } }, { sourceSASToken: '?sv=1&sig=abc', sourceManagedIdentity: { clientId: 'cid' } });
    expect(command.source).toEqual({ kind: 'scriptUri', scriptUri: 'https://a.example/s.sh', sasToken: '?sv=1&sig=abc', managedIdentity: { clientId: 'cid' } });
  });

  it('rejects URLs that are not http or https', () => {
    for (const uri of ['file:///etc/passwd', 'ftp://a.example/s.sh', 'not a url', 'javascript:alert(1)']) {
      const error = settingsErrorOf(() => parse({ source: { scriptUri: uri } }));
      expect(error.field).toBe('source.scriptUri');
      expect(error.rule).toBe('must be an http or https URL');
    }
    expect(settingsErrorOf(() => parse({ source: { script: 'ls' }, outputBlobUri: 'ftp://x/y' })).field).toBe('outputBlobUri');
    expect(settingsErrorOf(() => parse({ source: { script: 'ls' }, artifacts: [{ id: 1, uri: 'file:///etc/passwd' }] })).field).toBe('artifacts[0].uri');
  });

  it('refuses credentials in any URL field with a −202 naming the field and the rule, never the URL', () => {
    const urls = ['http://alice:s3cr3t@a.example/s.sh', 'https://alice@a.example/s.sh', 'https://:s3cr3t@a.example/x', 'https://@a.example/x', 'HTTPS://alice:s3cr3t@A.example:8443/x?sig=1'];
    const cases: Array<[string, (uri: string) => unknown]> = [
      ['source.scriptUri', (uri) => parse({ source: { scriptUri: uri } })],
      ['artifacts[0].uri', (uri) => parse({ source: { script: 'ls' }, artifacts: [{ id: 1, uri }] })],
      ['outputBlobUri', (uri) => parse({ source: { script: 'ls' }, outputBlobUri: uri })],
      ['errorBlobUri', (uri) => parse({ source: { script: 'ls' }, errorBlobUri: uri })],
    ];
    for (const [field, parseWith] of cases) {
      for (const uri of urls) {
        const error = settingsErrorOf(() => parseWith(uri));
        expect(error.code, `${field} ${uri}`).toBe(-202);
        expect(error.field, uri).toBe(field);
        expect(error.rule).toBe('must not carry a user name or password (user:password@host); use a SAS token or a managed identity');
        for (const text of [error.message, error.rule, JSON.stringify(error)]) {
          expect(text).not.toContain('a.example');
          expect(text).not.toMatch(/alice|s3cr3t/i);
        }
      }
    }
    // An '@' in the path or query is not userinfo.
    expect(parse({ source: { scriptUri: 'https://a.example/p@th/s.sh?x=a@b' } }).source).toMatchObject({ scriptUri: 'https://a.example/p@th/s.sh?x=a@b' });
  });

  it('maps blob URIs with their protected SAS tokens and identities', () => {
    const command = parse(
      { source: { script: 'ls' }, outputBlobUri: 'https://s.blob.core.windows.net/c/out', errorBlobUri: 'https://s.blob.core.windows.net/c/err' },
      { outputBlobSASToken: 'sv=1&sig=o', errorBlobManagedIdentity: {} },
    );
    expect(command.outputBlob).toEqual({ uri: 'https://s.blob.core.windows.net/c/out', sasToken: 'sv=1&sig=o' });
    expect(command.errorBlob).toEqual({ uri: 'https://s.blob.core.windows.net/c/err', managedIdentity: {} });
  });

  it('accepts clientId or objectId in a managed identity but not both', () => {
    const error = settingsErrorOf(() => parse({ source: { scriptUri: 'https://a.example/s' } }, { sourceManagedIdentity: { clientId: 'a', objectId: 'b' } }));
    expect(error.field).toBe('protectedSettings.sourceManagedIdentity');
    expect(error.rule).toBe('must have clientId or objectId, not both');
    expect(parse({ source: { scriptUri: 'https://a.example/s' } }, { sourceManagedIdentity: { ObjectId: 'o' } }).source).toMatchObject({ managedIdentity: { objectId: 'o' } });
  });
});
