// The runner's dependencies as the daemon and the lifecycle commands use them: the platform's
// process layer, the system clock, this boot's id, and how script sources are fetched and run.
import { platform } from '../platform.js';
import { makeBaseEnvironment } from '../runner/parameters.js';
import type { ScriptSourceDeps } from '../runner/prepare-script.js';
import type { RunDeps } from '../runner/run.js';
import { toImdsTokenSource } from '../util/imds.js';
import { systemClock } from '../util/time.js';
import type { Options } from '../config/options.js';

// Script sources on this platform: IMDS tokens for managed identities, the configured PowerShell.
export function makeSourceDeps(options: Options, env: NodeJS.ProcessEnv): ScriptSourceDeps {
  return {
    platform: platform.name,
    download: { tokenSource: toImdsTokenSource(options.imdsEndpoint) },
    env: { PATH: env['PATH'], HOME: env['HOME'], SystemRoot: env['SystemRoot'], ProgramFiles: env['ProgramFiles'] },
    ...(options.powerShellPath ? { powerShell: options.powerShellPath } : {}),
  };
}

// Builds the RunDeps for this process.
export function makeRunDeps(options: Options, env: NodeJS.ProcessEnv, redact: (text: string) => string = (text) => text): RunDeps {
  return {
    launcher: platform.processLayer,
    clock: systemClock,
    graceMs: options.killGraceMs,
    bootId: platform.processLayer.readBootId(),
    baseEnv: makeBaseEnvironment(env),
    workRoot: options.workRoot,
    redact,
    sources: makeSourceDeps(options, env),
  };
}
