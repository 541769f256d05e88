// The runner's dependencies as the daemon and the lifecycle commands use them: the real
// process layer, the system clock, this boot's id.
import * as processLayer from '../runner/process.js';
import { makeBaseEnvironment } from '../runner/parameters.js';
import type { RunDeps } from '../runner/run.js';
import { systemClock } from '../util/time.js';
import type { Options } from '../config/options.js';

// Builds the RunDeps for this process.
export function makeRunDeps(options: Options, env: NodeJS.ProcessEnv, redact: (text: string) => string = (text) => text): RunDeps {
  return {
    launcher: processLayer,
    clock: systemClock,
    graceMs: options.killGraceMs,
    bootId: processLayer.readBootId(),
    baseEnv: makeBaseEnvironment(env),
    redact,
  };
}
