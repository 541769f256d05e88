import { describe, expect, it } from 'vitest';
import { Redactor, toLoggableUrl } from '../../../src/handler/infra/redact.js';

describe('Redactor', () => {
  it('leaves text unchanged when no secret is registered', () => {
    expect(new Redactor().redact('nothing to hide: password=abc')).toBe('nothing to hide: password=abc');
  });

  it('masks every occurrence of every registered secret', () => {
    const redactor = new Redactor();
    redactor.add(['alpha-secret', 'beta-secret']);
    expect(redactor.redact('x alpha-secret y beta-secret z alpha-secret')).toBe('x *** y *** z ***');
  });

  it('masks secrets added by separate calls', () => {
    const redactor = new Redactor();
    redactor.add(['first-secret']);
    redactor.add(['second-secret']);
    expect(redactor.redact('first-secret/second-secret')).toBe('***/***');
  });

  it('masks the longest secret first, so a secret containing another is masked whole', () => {
    const redactor = new Redactor();
    redactor.add(['pass']);
    redactor.add(['password123']);
    expect(redactor.redact('login password123 then pass')).toBe('login *** then ***');
  });

  it('treats secrets as literal text, not patterns', () => {
    const redactor = new Redactor();
    redactor.add(['a.b*c$(x)']);
    expect(redactor.redact('aXbbbc a.b*c$(x)')).toBe('aXbbbc ***');
  });

  it('ignores empty values and values shorter than 3 characters', () => {
    const redactor = new Redactor();
    redactor.add(['', 'a', 'ab', 'abc']);
    expect(redactor.redact('a ab abc abcd')).toBe('a ab *** ***d');
  });

  it('keeps masking a secret until every run that registered it removed it', () => {
    const redactor = new Redactor();
    redactor.add(['shared-secret']);
    redactor.add(['shared-secret']);
    redactor.remove(['shared-secret']);
    expect(redactor.redact('shared-secret')).toBe('***');
    redactor.remove(['shared-secret']);
    expect(redactor.redact('shared-secret')).toBe('shared-secret');
  });

  it('ignores the removal of a value that was never registered', () => {
    const redactor = new Redactor();
    redactor.add(['kept-secret']);
    redactor.remove(['unknown-secret', 'kept-secret-not']);
    expect(redactor.redact('kept-secret unknown-secret')).toBe('*** unknown-secret');
  });

  it('stops masking a removed secret but still masks the shorter one inside it', () => {
    const redactor = new Redactor();
    redactor.add(['token', 'token-extended']);
    redactor.remove(['token-extended']);
    expect(redactor.redact('token-extended')).toBe('***-extended');
  });
});

describe('toLoggableUrl', () => {
  it('drops the query (where a SAS lives) and keeps scheme, host and path', () => {
    expect(toLoggableUrl('https://acct.blob.core.windows.net/container/out.txt?sv=2022-11-02&sig=abc%2Fdef')).toBe(
      'https://acct.blob.core.windows.net/container/out.txt',
    );
  });

  it('drops credentials and fragments and keeps an explicit port', () => {
    expect(toLoggableUrl('http://user:pa55@127.0.0.1:10000/devstoreaccount1/c/b?sig=x#frag')).toBe('http://127.0.0.1:10000/devstoreaccount1/c/b');
  });

  it('returns a placeholder for a string that is not a URL, never the string itself', () => {
    expect(toLoggableUrl('not a url ?sig=secret')).toBe('<invalid URL>');
    expect(toLoggableUrl('')).toBe('<invalid URL>');
  });
});
