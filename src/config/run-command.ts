// The validated, frozen value every downstream module works on (run-command.md §1).
// Produced only by parseRunCommand (settings.ts); never built from raw JSON elsewhere.

export interface Parameter {
  // Absent for unnamed (positional) parameters.
  readonly name?: string;
  readonly value: string;
}

// `{}` means the system-assigned identity.
export interface ManagedIdentity {
  readonly clientId?: string;
  readonly objectId?: string;
}

export type ScriptSource =
  | { readonly kind: 'script'; readonly script: string }
  | {
      readonly kind: 'scriptUri';
      readonly scriptUri: string;
      readonly sasToken?: string;
      readonly managedIdentity?: ManagedIdentity;
    }
  // `script` accompanies RunShellScript / RunPowerShellScript.
  | { readonly kind: 'commandId'; readonly commandId: string; readonly script?: string }
  // installAsService without a script: nothing to run here (Microsoft's immediate run-command
  // service is not provided, run-command.md §1); the run ends Succeeded saying so.
  | { readonly kind: 'none' };

export interface BlobTarget {
  readonly uri: string;
  readonly sasToken?: string;
  readonly managedIdentity?: ManagedIdentity;
}

export interface Artifact {
  readonly id: string;
  readonly uri: string;
  readonly fileName?: string;
  readonly sasToken?: string;
  readonly managedIdentity?: ManagedIdentity;
}

export interface RunCommand {
  readonly name: string;
  readonly seq: number;
  readonly source: ScriptSource;
  // Public first, then protected, each in array order; empty values already dropped (Compat).
  readonly parameters: readonly Parameter[];
  // How many of `parameters` (from the end) came from protectedParameters.
  readonly protectedParameterCount: number;
  readonly runAsUser?: string;
  readonly runAsPassword?: string;
  readonly outputBlob?: BlobTarget;
  readonly errorBlob?: BlobTarget;
  // 0 = no handler limit (a negative setting becomes 0, with a warning).
  readonly timeoutInSeconds: number;
  readonly asyncExecution: boolean;
  readonly treatFailureAsDeploymentFailure: boolean;
  // Asks for Microsoft's immediate run-command service, which this handler does not provide.
  readonly installAsService: boolean;
  readonly artifacts: readonly Artifact[];
  readonly dependsOn: readonly string[];
  // Every secret value of this run (protected parameter values, password, SAS tokens and
  // SAS query strings of URLs), fed to the redaction layer.
  readonly secrets: readonly string[];
  // Keys present in the settings that this handler does not know (logged by name, ignored).
  readonly unknownKeys: readonly string[];
  // What the operator should know about settings that were accepted as Microsoft's handler accepts
  // them (a name a shell cannot reference, a repeated name, a negative timeout); the run emits them
  // as warnings. Never a secret value.
  readonly warnings: readonly string[];
}

// Names of run commands: used in file names, so restricted (run-command.md §1).
export const namePattern = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
export const maxNameLength = 128;

// True when `name` may be used to build a path.
export function isValidName(name: string): boolean {
  return name.length <= maxNameLength && namePattern.test(name) && name !== '.' && !name.includes('..');
}

// The handler's name for the single configuration of an agent without multi-config: settings
// `<seq>.settings`, status `<seq>.status`, no ConfigExtensionName (protocol.md §4, §5, §7). It keys
// state, records, run directories, logs and the CLI like a run command's name; isValidName refuses
// it (a leading `_`), so no run command can take it, and it is still safe in a path. Only the
// settings and status file modules turn it into file names.
export const singleConfigName = '_single';

// True for a name a run is keyed by: a run command's name, or the single configuration.
export function isRunKey(name: string): boolean {
  return name === singleConfigName || isValidName(name);
}

// Reads the run command's identity from the agent's environment variables. Without
// ConfigExtensionName (an agent without multi-config) it is the handler's single configuration,
// as in Microsoft's handler (protocol.md §4, §5).
export function readCommandIdentity(env: Readonly<Record<string, string | undefined>>): { name: string; seq: number } | { error: string } {
  const given = env['ConfigExtensionName'];
  const name = given === undefined || given === '' ? singleConfigName : given;
  const seqText = env['ConfigSequenceNumber'] ?? '';
  if (name !== singleConfigName && !isValidName(name)) return { error: 'ConfigExtensionName is not a valid run command name ([A-Za-z0-9][A-Za-z0-9._-]*, at most 128 characters)' };
  if (!/^\d{1,15}$/.test(seqText)) return { error: 'ConfigSequenceNumber is not a non-negative integer' };
  return { name, seq: Number(seqText) };
}
