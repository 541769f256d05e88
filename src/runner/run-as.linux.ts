// RunAs on Linux (run-command.md §4): the daemon and the wrapper stay root; the script's own argv
// starts with `setpriv --reuid U --regid G --init-groups --`, so the script (same pid, same process
// group, still killed as a tree by the root wrapper) runs with the user's uid, primary gid and
// supplementary groups (initgroups(3), i.e. NSS), in a working directory the user owns, with the
// user's HOME, USER, LOGNAME, SHELL, a sane PATH and the named parameters. No sudo, no su, no
// password anywhere: root needs none, so runAsPassword is never used nor written.
import type { RunCommand } from '../config/run-command.js';
import { errorCodes, HandlerError } from '../errors.js';
import type { ScriptLaunch } from './process-contract.js';
import { lookupRunAsUser, type RunAsUser } from './run-as-user.linux.js';
import { findSetpriv, handWorkDirTo, makeWorkDir } from './run-as-work-dir.linux.js';

export { removeWorkDir } from './run-as-work-dir.linux.js';
export type { RunAsUser } from './run-as-user.linux.js';

// A run that runs as runAsUser: who, and the working directory its script is written to.
export interface RunAsContext {
  readonly user: RunAsUser;
  readonly workDir: string;
}

export interface PrepareRunAsOptions {
  readonly runId: string;
  readonly workRoot: string;
  // Called with what the operator should know (never a secret).
  readonly warn: (message: string) => void;
  // The daemon's effective uid (tests).
  readonly euid?: number;
}

// The PATH of a RunAs script: the usual user PATH, then the sbin directories (ip, ss, sysctl…).
export const runAsPath = '/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin';
// Variables kept from the daemon's environment: locale and terminal only (like sudo's env_reset).
const keptVariable = /^(LANG|LANGUAGE|LC_[A-Z_]+|TZ|TERM)$/;

// Looks up runAsUser (−102 when unknown or unusable) and makes its working directory; undefined
// when the run command has no runAsUser. Called before the script is written.
export async function prepareRunAs(command: RunCommand, options: PrepareRunAsOptions): Promise<RunAsContext | undefined> {
  if (command.runAsUser === undefined) return undefined;
  if ((options.euid ?? process.geteuid?.() ?? 0) !== 0) {
    throw new HandlerError(errorCodes.startExecution, 'runAsUser needs the handler to run as root');
  }
  const user = await lookupRunAsUser(command.runAsUser);
  if (user.uid === 0) options.warn(`runAsUser '${user.name}' has uid 0: the script runs with root privileges`);
  if (command.runAsPassword !== undefined) {
    options.warn('runAsPassword is not used: the handler runs as root and needs no password to switch to runAsUser');
  }
  return { user, workDir: await makeWorkDir(options.workRoot, options.runId) };
}

// Rewrites a launch so the script runs as the RunAs user (unchanged without one): the working
// directory given to the user, setpriv in front of the argv, the user's environment and the
// named parameters (`parameters`, which win over everything else, as for root runs).
export async function applyRunAs(
  launch: ScriptLaunch,
  runAs: RunAsContext | undefined,
  parameters: Readonly<Record<string, string>>,
): Promise<ScriptLaunch> {
  if (runAs === undefined) return launch;
  const { user, workDir } = runAs;
  await handWorkDirTo(workDir, user.uid, user.gid);
  return {
    ...launch,
    program: await findSetpriv(),
    args: toSetprivArgs(user, launch.program, launch.args),
    env: toRunAsEnvironment(launch.env, user, parameters),
    cwd: workDir,
  };
}

// `setpriv … -- program args…`: real and effective uid and gid, the user's supplementary groups.
export function toSetprivArgs(user: RunAsUser, program: string, args: readonly string[]): string[] {
  return [`--reuid=${user.uid}`, `--regid=${user.gid}`, '--init-groups', '--', program, ...args];
}

// The RunAs script's environment: locale and TERM from the daemon's, the user's identity from the
// user database, runAsPath, then the named parameters.
export function toRunAsEnvironment(
  base: Readonly<Record<string, string>>,
  user: RunAsUser,
  parameters: Readonly<Record<string, string>>,
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(base)) if (keptVariable.test(key)) env[key] = value;
  Object.assign(env, { HOME: user.home, USER: user.name, LOGNAME: user.name, SHELL: user.shell, PATH: runAsPath });
  return Object.assign(env, parameters);
}
