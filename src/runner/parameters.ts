// Parameter injection (run-command.md §4): named → environment of that child only,
// unnamed → positional arguments, each value exactly one argument, never interpreted by a shell.
import { singleConfigName, type Parameter } from '../config/run-command.js';

export interface ParameterInjection {
  readonly env: Readonly<Record<string, string>>;
  readonly args: readonly string[];
  // 1-based positions of unnamed protected values: visible in the process table.
  readonly exposedProtectedPositions: readonly number[];
}

// Splits a run's parameters into the child's environment additions and its argument vector.
export function toParameterInjection(parameters: readonly Parameter[], protectedCount: number): ParameterInjection {
  const env: Record<string, string> = {};
  const args: string[] = [];
  const exposed: number[] = [];
  const firstProtected = parameters.length - protectedCount;
  parameters.forEach((parameter, index) => {
    if (parameter.name !== undefined) {
      env[parameter.name] = parameter.value;
      return;
    }
    args.push(parameter.value);
    if (index >= firstProtected) exposed.push(args.length);
  });
  return { env, args, exposedProtectedPositions: exposed };
}

// Agent variables that describe one lifecycle command: each script gets its own run's instead.
const perCommandVariables = ['ConfigSequenceNumber', 'ConfigExtensionName'];

// The agent's own variables (protocol.md §4): each script gets those of the latest `enable`.
export const agentVariable = /^AZURE_GUEST_AGENT_[A-Z0-9_]{1,64}$/;

// The agent's variables in an environment (what `enable` passes on to the daemon).
export function toAgentVariables(source: NodeJS.ProcessEnv): Record<string, string> {
  const variables: Record<string, string> = {};
  for (const [key, value] of Object.entries(source)) if (value !== undefined && agentVariable.test(key) && !value.includes('\0')) variables[key] = value;
  return variables;
}

// What run-command.md §4 gives every script besides its parameters: its own ConfigExtensionName and
// ConfigSequenceNumber, and the agent's variables as of the latest enable. The single configuration
// has no ConfigExtensionName, as the agent sets none for it (protocol.md §4).
export function toRunEnvironment(name: string, seq: number, agent: Readonly<Record<string, string>>): Record<string, string> {
  const own = name === singleConfigName ? {} : { ConfigExtensionName: name };
  return { ...agent, ...own, ConfigSequenceNumber: String(seq) };
}

// The environment every script starts from: the daemon's, minus per-command, agent and handler variables.
export function makeBaseEnvironment(source: NodeJS.ProcessEnv): Readonly<Record<string, string>> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(source)) {
    // The agent's variables come from the latest enable instead (toRunEnvironment).
    if (value === undefined || perCommandVariables.includes(key) || key.startsWith('RUNCOMMAND_HANDLER_') || agentVariable.test(key)) continue;
    env[key] = value;
  }
  env['PATH'] ??= '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
  return Object.freeze(env);
}
