import { describe, expect, it } from 'vitest';
import { toBlobAddress } from '../../src/blob/blob-target.js';

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
