import { describe, expect, it } from 'vitest';
import { singleConfigName, type Parameter } from '../../src/config/run-command.js';
import { makeBaseEnvironment, toAgentVariables, toParameterInjection, toRunEnvironment } from '../../src/runner/parameters.js';

describe('toParameterInjection', () => {
  it('puts named parameters in the environment and unnamed ones in the argument vector, in array order', () => {
    const parameters: Parameter[] = [
      { value: 'first' },
      { name: 'GREETING', value: 'hello' },
      { value: 'second' },
      { name: 'TARGET', value: 'world' },
      { value: 'third' },
    ];
    expect(toParameterInjection(parameters, 0)).toEqual({
      env: { GREETING: 'hello', TARGET: 'world' },
      args: ['first', 'second', 'third'],
      exposedProtectedPositions: [],
    });
  });

  it('keeps each unnamed value as exactly one argument, with no word splitting or shell interpretation', () => {
    const values = ['two words', '$(touch /tmp/pwned)', '"quoted" \'single\'', '*', 'a\nb', '; rm -rf /'];
    const injection = toParameterInjection(values.map((value) => ({ value })), 0);
    expect(injection.args).toEqual(values);
    expect(injection.env).toEqual({});
  });

  it('reports the 1-based argument positions of unnamed protected values, public parameters first', () => {
    const parameters: Parameter[] = [
      { value: 'public-1' },
      { name: 'PUBLIC_NAMED', value: 'p' },
      { value: 'public-2' },
      // The last three are the protected ones.
      { value: 'secret-1' },
      { name: 'SECRET_NAMED', value: 's' },
      { value: 'secret-2' },
    ];
    expect(toParameterInjection(parameters, 3)).toEqual({
      env: { PUBLIC_NAMED: 'p', SECRET_NAMED: 's' },
      args: ['public-1', 'public-2', 'secret-1', 'secret-2'],
      exposedProtectedPositions: [3, 4],
    });
  });

  it('exposes no position when every protected parameter is named', () => {
    const parameters: Parameter[] = [{ value: 'public' }, { name: 'TOKEN', value: 'secret' }];
    expect(toParameterInjection(parameters, 1)).toEqual({ env: { TOKEN: 'secret' }, args: ['public'], exposedProtectedPositions: [] });
  });

  it('exposes every position when all parameters are unnamed and protected', () => {
    const parameters: Parameter[] = [{ value: 'a' }, { value: 'b' }];
    expect(toParameterInjection(parameters, 2).exposedProtectedPositions).toEqual([1, 2]);
  });

  it('lets a later named parameter override an earlier one with the same name (protected after public)', () => {
    const parameters: Parameter[] = [{ name: 'MODE', value: 'public' }, { name: 'MODE', value: 'protected' }];
    expect(toParameterInjection(parameters, 1).env).toEqual({ MODE: 'protected' });
  });

  it('returns empty injections for no parameters', () => {
    expect(toParameterInjection([], 0)).toEqual({ env: {}, args: [], exposedProtectedPositions: [] });
  });

  it('never sets named parameters on the daemon’s own environment', () => {
    const name = `RCH_TEST_PARAMETER_${process.pid}`;
    toParameterInjection([{ name, value: 'must-not-leak' }], 1);
    expect(process.env[name]).toBeUndefined();
  });
});

describe('makeBaseEnvironment', () => {
  it('drops the per-command and AZURE_GUEST_AGENT_ variables (each run gets its own, run-command.md §4) and every RUNCOMMAND_HANDLER_ variable, keeping the rest', () => {
    const env = makeBaseEnvironment({
      PATH: '/opt/bin:/usr/bin',
      HOME: '/root',
      LANG: 'C.UTF-8',
      ConfigSequenceNumber: '7',
      ConfigExtensionName: 'myRunCommand',
      RUNCOMMAND_HANDLER_ENVIRONMENT: '/x/HandlerEnvironment.json',
      RUNCOMMAND_HANDLER_STATE_DIR: '/x/state',
      AZURE_GUEST_AGENT_EXTENSION_VERSION: '1.3.28',
      MY_RUNCOMMAND_HANDLER_NOTE: 'kept: prefix only',
    });
    expect(env).toEqual({
      PATH: '/opt/bin:/usr/bin',
      HOME: '/root',
      LANG: 'C.UTF-8',
      MY_RUNCOMMAND_HANDLER_NOTE: 'kept: prefix only',
    });
  });

  it('adds the standard PATH when the source has none', () => {
    expect(makeBaseEnvironment({ HOME: '/root' })).toEqual({
      HOME: '/root',
      PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    });
  });

  it('keeps an existing PATH, even an empty one', () => {
    expect(makeBaseEnvironment({ PATH: '' })).toEqual({ PATH: '' });
  });

  it('skips variables whose value is undefined', () => {
    expect(makeBaseEnvironment({ PATH: '/bin', UNSET: undefined })).toEqual({ PATH: '/bin' });
  });

  it('returns a frozen object and leaves the source untouched', () => {
    const source: NodeJS.ProcessEnv = { ConfigSequenceNumber: '1', RUNCOMMAND_HANDLER_X: 'y' };
    const env = makeBaseEnvironment(source);
    expect(Object.isFrozen(env)).toBe(true);
    expect(source).toEqual({ ConfigSequenceNumber: '1', RUNCOMMAND_HANDLER_X: 'y' });
  });
});

describe('toRunEnvironment', () => {
  it("gives a script its own name and sequence number on top of the agent's variables of the latest enable", () => {
    expect(toRunEnvironment('rc', 7, { AZURE_GUEST_AGENT_EXTENSION_VERSION: '1.3.28', ConfigSequenceNumber: '1' })).toEqual({
      AZURE_GUEST_AGENT_EXTENSION_VERSION: '1.3.28',
      ConfigExtensionName: 'rc',
      ConfigSequenceNumber: '7',
    });
  });

  it('gives the single configuration no ConfigExtensionName, as the agent sets none for it', () => {
    expect(toRunEnvironment(singleConfigName, 2, { AZURE_GUEST_AGENT_EXTENSION_VERSION: '1.3.28' })).toEqual({
      AZURE_GUEST_AGENT_EXTENSION_VERSION: '1.3.28',
      ConfigSequenceNumber: '2',
    });
  });

  it('takes only AZURE_GUEST_AGENT_ variables from an enable', () => {
    expect(toAgentVariables({ AZURE_GUEST_AGENT_WIRE_PROTOCOL_ADDRESS: '168.63.129.16', PATH: '/bin', azure_guest_agent_x: 'y', AZURE_GUEST_AGENT_NUL: 'a\0b' })).toEqual({
      AZURE_GUEST_AGENT_WIRE_PROTOCOL_ADDRESS: '168.63.129.16',
    });
  });
});
