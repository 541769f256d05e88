import { describe, expect, it } from 'vitest';
import { canary, parseSettings as parse, settingsErrorOf } from '../helpers/settings.js';

describe('parseRunCommand parameters', () => {
  // run-command.md §1 (12-01, Compat): any non-empty name without '=' or NUL is accepted; a name a
  // shell cannot reference is passed anyway, with a warning.
  it('accepts parameter names a shell cannot reference, with a warning naming the field', () => {
    const names = ['1abc', 'a-b', 'a b', 'é', 'my-param', '1st', 'A;rm -rf /'];
    const command = parse({ source: { script: 'ls' }, parameters: [{ name: 'ok', value: '0' }, ...names.map((name, i) => ({ name, value: String(i) }))] });
    expect(command.parameters).toEqual([{ name: 'ok', value: '0' }, ...names.map((name, i) => ({ name, value: String(i) }))]);
    expect(command.warnings).toHaveLength(names.length);
    expect(command.warnings[1]).toBe("parameters[2].name 'a-b' is not a name a shell can reference as a variable; it is passed anyway, as an environment variable of the script (PowerShell: -a-b)");
  });

  it("still refuses a parameter name holding '=' or NUL, naming the field and the rule", () => {
    for (const name of ['A=B', '=', 'a\0b']) {
      const error = settingsErrorOf(() => parse({ source: { script: 'ls' } }, { protectedParameters: [{ name: 'ok', value: '1' }, { name, value: canary }] }));
      expect(error.field).toBe('protectedSettings.protectedParameters[1].name');
      expect(error.rule).toBe("must not contain '=' or NUL characters (it becomes an environment variable name)");
      expect(error.message).not.toContain(canary);
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

  // run-command.md §1 (12-01, Compat): a repeated name is no longer refused; the last value wins.
  it('keeps the last value of a repeated parameter name (public and protected together), with a warning', () => {
    const command = parse(
      { source: { script: 'ls' }, parameters: [{ name: 'A', value: '1' }, { value: 'pos' }, { name: 'B', value: 'b' }] },
      { protectedParameters: [{ name: 'A', value: canary }] },
    );
    expect(command.parameters).toEqual([{ value: 'pos' }, { name: 'B', value: 'b' }, { name: 'A', value: canary }]);
    expect(command.protectedParameterCount).toBe(1);
    expect(command.warnings).toEqual(["parameters[0].name 'A' is repeated by protectedSettings.protectedParameters[0].name: the last value wins"]);
    const publicOnly = parse({ source: { script: 'ls' }, parameters: [{ name: 'X', value: '1' }, { name: 'X', value: '2' }] }, { protectedParameters: [{ name: 'P', value: 'p' }] });
    expect(publicOnly.parameters).toEqual([{ name: 'X', value: '2' }, { name: 'P', value: 'p' }]);
    expect(publicOnly.protectedParameterCount).toBe(1);
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
