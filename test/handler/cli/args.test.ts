import { describe, expect, it } from 'vitest';
import { parseArgs } from '../../../src/handler/cli/args.js';

function flagsOf(argv: readonly string[]): Record<string, readonly string[]> {
  return Object.fromEntries(parseArgs(argv).flags);
}

describe('parseArgs', () => {
  it('defaults to the help command with nothing else', () => {
    const parsed = parseArgs([]);
    expect(parsed.command).toBe('help');
    expect(parsed.positional).toEqual([]);
    expect(parsed.flags.size).toBe(0);
  });

  it('splits the command, positional words and flag values', () => {
    const parsed = parseArgs(['submit', 'hello', '--script', 'echo hi', '--timeout', '30', 'extra']);
    expect(parsed.command).toBe('submit');
    expect(parsed.positional).toEqual(['hello', 'extra']);
    expect(flagsOf(['submit', 'hello', '--script', 'echo hi', '--timeout', '30', 'extra'])).toEqual({ script: ['echo hi'], timeout: ['30'] });
  });

  it('collects a repeated flag’s values in order', () => {
    expect(flagsOf(['submit', 'x', '--param', 'A=1', '--protected-param', 'S=2', '--param', 'B=3'])).toEqual({
      param: ['A=1', 'B=3'],
      'protected-param': ['S=2'],
    });
  });

  it('takes an inline --flag=value, keeping later = signs and newlines in the value', () => {
    expect(flagsOf(['submit', 'x', '--param=A=b=c', '--script=line1\nline2', '--empty='])).toEqual({
      param: ['A=b=c'],
      script: ['line1\nline2'],
      empty: [''],
    });
  });

  it('gives boolean flags the value "true" without consuming the next word', () => {
    const argv = ['status', '--json', 'hello', '--local', '--follow', '--stderr', '--watch', '--help', '--async', '--treat-failure-as-deployment-failure'];
    const parsed = parseArgs(argv);
    expect(parsed.positional).toEqual(['hello']);
    expect(flagsOf(argv)).toEqual({
      json: ['true'],
      local: ['true'],
      follow: ['true'],
      stderr: ['true'],
      watch: ['true'],
      help: ['true'],
      async: ['true'],
      'treat-failure-as-deployment-failure': ['true'],
    });
  });

  it('lets a boolean flag take an explicit inline value', () => {
    expect(flagsOf(['status', '--json=false'])).toEqual({ json: ['false'] });
  });

  it('takes the next word as a value flag’s value even when it starts with --', () => {
    expect(flagsOf(['submit', 'x', '--script', '--json'])).toEqual({ script: ['--json'] });
  });

  it('throws when a value flag is last with no value', () => {
    expect(() => parseArgs(['submit', 'x', '--script'])).toThrow(new Error('--script needs a value'));
  });

  it('reads `logs NAME --follow --stderr` as the usage line documents it', () => {
    const parsed = parseArgs(['logs', 'hello', '--follow', '--stderr']);
    expect(parsed.command).toBe('logs');
    expect(parsed.positional).toEqual(['hello']);
    expect(flagsOf(['logs', 'hello', '--follow', '--stderr'])).toEqual({ follow: ['true'], stderr: ['true'] });
  });

  it('keeps words after the command as positional even when they look like commands', () => {
    const parsed = parseArgs(['logs', 'enable', '--stderr', 'x']);
    expect(parsed.command).toBe('logs');
    expect(parsed.positional).toEqual(['enable', 'x']);
  });
});
