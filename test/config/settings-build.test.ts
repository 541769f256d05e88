import { describe, expect, it } from 'vitest';
import { canary, parseSettings as parse, settingsErrorOf } from '../helpers/settings.js';

describe('parseRunCommand parameters', () => {
  it('rejects parameter names that are not valid shell names', () => {
    for (const name of ['1abc', 'a-b', 'a b', 'é']) {
      const error = settingsErrorOf(() => parse({ source: { script: 'ls' }, parameters: [{ name: 'ok', value: '1' }, { name: 'ok2', value: '2' }, { name, value: '3' }] }));
      expect(error.field).toBe('parameters[2].name');
      expect(error.rule).toBe('must match ^[A-Za-z_][A-Za-z0-9_]*$');
    }
  });

  it('rejects parameter values holding NUL, which no environment variable can carry', () => {
    const error = settingsErrorOf(() => parse({ source: { script: 'ls' } }, { protectedParameters: [{ name: 'A', value: `${canary}\0` }] }));
    expect(error).toMatchObject({ field: 'protectedSettings.protectedParameters[0].value', rule: 'must not contain NUL characters' });
    expect(error.message).not.toContain(canary);
  });

  it('treats a parameter without a name, or with an empty or null name, as unnamed', () => {
    const command = parse({ source: { script: 'ls' }, parameters: [{ value: 'a' }, { name: '', value: 'b' }, { name: null, value: 'c' }] });
    expect(command.parameters).toEqual([{ value: 'a' }, { value: 'b' }, { value: 'c' }]);
  });

  it('rejects duplicate parameter names across public and protected parameters', () => {
    const error = settingsErrorOf(() => parse({ source: { script: 'ls' }, parameters: [{ name: 'A', value: '1' }] }, { protectedParameters: [{ name: 'A', value: canary }] }));
    expect(error.field).toBe('protectedSettings.protectedParameters[0].name');
    expect(error.rule).toBe('duplicate parameter name (also used by parameters[0].name)');
  });

  it('drops parameters with empty, null or missing values and counts only kept protected ones', () => {
    const command = parse(
      { source: { script: 'ls' }, parameters: [{ name: 'A', value: '' }, { name: 'B', value: null }, { name: 'C' }, null, { name: 'D', value: 'd' }] },
      { protectedParameters: [{ name: 'E', value: '' }, { name: 'F', value: 'f' }] },
    );
    expect(command.parameters).toEqual([{ name: 'D', value: 'd' }, { name: 'F', value: 'f' }]);
    expect(command.protectedParameterCount).toBe(1);
  });

  it('requires parameter values to be strings', () => {
    for (const value of [1, true, { a: 1 }]) {
      const error = settingsErrorOf(() => parse({ source: { script: 'ls' }, parameters: [{ name: 'A', value }] }));
      expect(error.field).toBe('parameters[0].value');
      expect(error.rule).toBe('must be a string');
    }
  });
});

describe('parseRunCommand dependencies', () => {
  it('accepts dependsOn names and rejects self-references, invalid names and duplicates', () => {
    expect(parse({ source: { script: 'ls' }, dependsOn: ['a', 'b.c'] }).dependsOn).toEqual(['a', 'b.c']);
    expect(settingsErrorOf(() => parse({ source: { script: 'ls' }, dependsOn: ['a', 'RC1'] })).field).toBe('dependsOn[1]');
    expect(settingsErrorOf(() => parse({ source: { script: 'ls' }, dependsOn: ['../x'] })).field).toBe('dependsOn[0]');
    expect(settingsErrorOf(() => parse({ source: { script: 'ls' }, dependsOn: ['a', 'A'] })).rule).toBe('duplicate (also dependsOn[0])');
    expect(settingsErrorOf(() => parse({ source: { script: 'ls' }, dependsOn: 'a' })).rule).toBe('must be an array');
  });
});

describe('parseRunCommand artifacts', () => {
  it('joins public and protected artifacts by id, numbers and strings alike', () => {
    const command = parse(
      { source: { script: 'ls' }, artifacts: [{ id: 1, uri: 'https://a.example/1', fileName: 'one.txt' }, { id: '2', uri: 'https://a.example/2' }] },
      { artifacts: [{ id: '1', sasToken: 'sig=t1' }, { id: 2, artifactManagedIdentity: { clientId: 'c' } }] },
    );
    expect(command.artifacts).toEqual([
      { id: '1', uri: 'https://a.example/1', fileName: 'one.txt', sasToken: 'sig=t1' },
      { id: '2', uri: 'https://a.example/2', managedIdentity: { clientId: 'c' } },
    ]);
  });

  it('rejects a protected artifact whose id has no public artifact', () => {
    const error = settingsErrorOf(() => parse({ source: { script: 'ls' }, artifacts: [{ id: 1, uri: 'https://a.example/1' }] }, { artifacts: [{ id: 7, sasToken: canary }] }));
    expect(error.field).toBe('protectedSettings.artifacts[0].id');
    expect(error.message).not.toContain(canary);
  });

  it('rejects duplicate artifact ids and file names that are paths', () => {
    const artifacts = [{ id: 1, uri: 'https://a.example/1' }, { id: '1', uri: 'https://a.example/2' }];
    expect(settingsErrorOf(() => parse({ source: { script: 'ls' }, artifacts })).field).toBe('artifacts[1].id');
    for (const fileName of ['../x', 'a/b', '..']) {
      const error = settingsErrorOf(() => parse({ source: { script: 'ls' }, artifacts: [{ id: 1, uri: 'https://a.example/1', fileName }] }));
      expect(error.field).toBe('artifacts[0].fileName');
    }
  });
});
