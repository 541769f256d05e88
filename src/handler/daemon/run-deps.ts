// The runner's dependencies as the daemon and the lifecycle commands use them: the platform, the
// run store for journals, the system clock, this boot's id, and how script sources are fetched.
import { makeBaseEnvironment } from '../../runner/parameters.js';
import type { RunDeps } from '../../runner/run-deps.js';
import { toImdsTokenSource } from '../../util/imds.js';
import { systemClock } from '../../util/time.js';
import type { HandlerContext } from '../infra/context.js';

// Builds the RunDeps for this process (`redact` masks the run's secrets in what a run persists).
export function makeRunDeps(context: HandlerContext, env: NodeJS.ProcessEnv, redact: (text: string) => string = (text) => text): RunDeps {
  const { options, platform } = context;
  return {
    platform,
    journals: context.store,
    clock: systemClock,
    graceMs: options.killGraceMs,
    maxOutputBytes: options.maxOutputBytes,
    bootId: platform.processLayer.readBootId(),
    baseEnv: makeBaseEnvironment(env),
    workRoot: options.workRoot,
    redact,
    sources: {
      download: { tokenSource: toImdsTokenSource(options.imdsEndpoint) },
      env: { PATH: env['PATH'], HOME: env['HOME'], SystemRoot: env['SystemRoot'], ProgramFiles: env['ProgramFiles'] },
      ...(options.powerShellPath ? { powerShell: options.powerShellPath } : {}),
    },
  };
}
