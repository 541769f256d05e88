import { describe, expect, it } from 'vitest';
import { makeAppendTarget, toBlobAddress, tokenRefusedText } from '../../src/blob/blob-target.js';
import { toFailureKind } from '../../src/blob/storage-failure.js';

const bare = 'https://acct.blob.core.windows.net/logs/run/out.txt';

describe('toBlobAddress', () => {
  it('keeps the SAS of a full SAS URL and logs the URL without it', () => {
    const address = toBlobAddress({ uri: `${bare}?sv=2024-01-01&sp=racw&sig=abc%2Bdef` });
    expect(address).toEqual({ url: bare, loggable: bare, sas: 'sv=2024-01-01&sp=racw&sig=abc%2Bdef' });
  });

  it('joins a bare URL and a protected SAS token given with or without its leading ?', () => {
    expect(toBlobAddress({ uri: bare, sasToken: '?sv=1&sig=x' }).sas).toBe('sv=1&sig=x');
    expect(toBlobAddress({ uri: bare, sasToken: 'sv=1&sig=x' }).sas).toBe('sv=1&sig=x');
  });

  it('prefers the protected token to a query already in the URL', () => {
    expect(toBlobAddress({ uri: `${bare}?old=1`, sasToken: 'sv=2&sig=y' }).sas).toBe('sv=2&sig=y');
  });

  it('uses the managed identity only when there is no SAS', () => {
    expect(toBlobAddress({ uri: bare, managedIdentity: { clientId: 'c1' } })).toEqual({ url: bare, loggable: bare, managedIdentity: { clientId: 'c1' } });
    expect(toBlobAddress({ uri: bare, sasToken: 'sig=z', managedIdentity: {} }).managedIdentity).toBeUndefined();
  });
});

describe('makeAppendTarget with a managed identity', () => {
  const tokens = { getToken: () => { asked += 1; return Promise.resolve({ token: 'mi-token', expiresOnMs: Date.now() + 3_600_000 }); } };
  let asked = 0;

  it('refuses plain http and look-alike hosts before asking for a token, naming the rule', async () => {
    for (const uri of ['http://acct.blob.core.windows.net/c/b', 'http://acct.blob.azurestack.external/c/b', 'https://acct.blob.core.attacker.invalid/c/b', 'https://acct.blob.core.windows.net.invalid/c/b']) {
      asked = 0;
      const target = makeAppendTarget(toBlobAddress({ uri, managedIdentity: {} }), { tokens, onToken: () => undefined });
      const failure = await target.reset(AbortSignal.timeout(5000)).then(() => undefined, (error: unknown) => error);
      expect(failure, uri).toBeInstanceOf(Error);
      expect((failure as Error).message, uri).toBe(tokenRefusedText);
      expect(toFailureKind(failure), uri).toBe('final');
      expect(asked, uri).toBe(0);
    }
    expect(tokenRefusedText).toContain('*.blob.core.windows.net');
    expect(tokenRefusedText).toContain('*.blob.azurestack.*');
    expect(tokenRefusedText).not.toContain('://');
  });
});
