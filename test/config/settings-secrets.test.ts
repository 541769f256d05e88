import { describe, expect, it } from 'vitest';
import { canary, parseSettings as parse, settingsErrorOf } from '../helpers/settings.js';

describe('parseRunCommand secrets', () => {
  const secretProtected = {
    protectedParameters: [{ name: 'P', value: `${canary}-param` }, { value: `${canary}-positional` }, { name: 'E', value: '' }],
    runAsPassword: `${canary}-password`,
    sourceSASToken: `?sv=1&sig=${canary}-source`,
    outputBlobSASToken: `sv=1&sig=${canary}-out`,
    errorBlobSASToken: `sv=1&sig=${canary}-err`,
    artifacts: [{ id: 1, sasToken: `sv=1&sig=${canary}-artifact` }],
  };

  it('collects protected values, the password, SAS tokens and SAS query strings, deduplicated', () => {
    const command = parse(
      {
        source: { scriptUri: `https://a.example/s.sh?sv=2&sig=${canary}-url` },
        parameters: [{ name: 'PUB', value: 'public-value' }],
        outputBlobUri: 'https://a.example/out?sv=2&sp=w',
        artifacts: [{ id: 1, uri: `https://a.example/a?sig=${canary}-url` }],
      },
      { ...secretProtected, errorBlobSASToken: `sv=1&sig=${canary}-out` },
    );
    expect(command.secrets).toEqual(expect.arrayContaining([
      `${canary}-param`, `${canary}-positional`, `${canary}-password`, `?sv=1&sig=${canary}-source`, `sv=1&sig=${canary}-source`,
      `sv=1&sig=${canary}-out`, `sv=1&sig=${canary}-artifact`, `sv=2&sig=${canary}-url`, `${canary}-url`, `sig=${canary}-url`,
    ]));
    expect(new Set(command.secrets).size).toBe(command.secrets.length);
    expect(command.secrets).not.toContain('');
    expect(command.secrets).not.toContain('public-value');
    expect(command.secrets).not.toContain('sv=2&sp=w');
  });

  it('never puts a protected value in an error message', () => {
    const publicBase = { source: { script: 'ls' }, artifacts: [{ id: 1, uri: 'https://a.example/a' }] };
    const failures: Array<[unknown, unknown]> = [
      [publicBase, { ...secretProtected, protectedParameters: [{ name: 'bad=name', value: canary }] }],
      [publicBase, { ...secretProtected, protectedParameters: [{ name: 'A', value: canary.repeat(4000) }] }],
      [publicBase, { ...secretProtected, protectedParameters: [{ name: 'A', value: canary }, { name: 'A\0', value: canary }] }],
      [publicBase, { ...secretProtected, runAsPassword: { value: canary } }],
      [publicBase, { ...secretProtected, outputBlobSASToken: canary.repeat(1000) }],
      [publicBase, { ...secretProtected, artifacts: [{ id: canary, sasToken: canary }] }],
      [publicBase, { ...secretProtected, sourceManagedIdentity: { clientId: canary, objectId: canary } }],
      [{ ...publicBase, outputBlobUri: `ftp://a.example/o?sig=${canary}` }, secretProtected],
      [{ ...publicBase, timeoutInSeconds: -1.5 }, secretProtected],
      [publicBase, `{"runAsPassword": "${canary}"`],
    ];
    for (const [pub, prot] of failures) {
      const error = settingsErrorOf(() => parse(pub, prot));
      expect(error.message).not.toContain(canary);
      expect(error.rule).not.toContain(canary);
    }
  });
});
