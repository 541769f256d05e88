import { describe, expect, it } from 'vitest';
import { toAgentJson } from '../../../src/handler/cli/submit.js';

describe('toAgentJson', () => {
  it('writes ASCII text as plain compact JSON', () => {
    expect(toAgentJson({ runtimeSettings: [{ handlerSettings: { publicSettings: { source: { script: 'echo hi' } }, protectedSettings: null } }] })).toBe(
      '{"runtimeSettings":[{"handlerSettings":{"publicSettings":{"source":{"script":"echo hi"}},"protectedSettings":null}}]}',
    );
  });

  it('escapes every non-ASCII character as a lower-case \\uXXXX escape, surrogate pairs as two escapes', () => {
    expect(toAgentJson({ s: 'é€😀' })).toBe('{"s":"\\u00e9\\u20ac\\ud83d\\ude00"}');
  });

  it('escapes DEL and keeps JSON’s own escapes of control characters', () => {
    expect(toAgentJson('a\u007fb\u0001c\td')).toBe('"a\\u007fb\\u0001c\\td"');
  });

  it('writes one line of printable ASCII even when values hold newlines', () => {
    const text = toAgentJson({ script: '#!/bin/bash\r\necho "héllo"\nexit 0\n', parameters: [{ name: 'N', value: 'ü\u2028' }] });
    expect(text.includes('\n')).toBe(false);
    expect(text).toMatch(/^[\x20-\x7e]+$/);
  });

  it('round-trips through JSON.parse', () => {
    const value = { name: 'hello', script: 'echo "日本語 😀 \u0000 \\ \u2028"', list: [1, 2.5, true, null], nested: { empty: '' } };
    expect(JSON.parse(toAgentJson(value))).toEqual(value);
  });
});
