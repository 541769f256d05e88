// The handler's own tunables, with their defaults written once, as data. They come from
// RUNCOMMAND_HANDLER_* environment variables (the daemon inherits them from `enable`).
import { resolve } from 'node:path';
import { defaultImdsEndpoint } from '../util/imds.js';
import * as z from '../util/schema.js';

export const defaultOptions = {
  // Run commands running at once (Azure's per-VM maximum).
  concurrency: 25,
  // Status rewrite cadence while a script runs (Microsoft: 15 s).
  statusIntervalMs: 5000,
  // SIGTERM → SIGKILL grace on timeout and cancel.
  killGraceMs: 5000,
  // A settings file younger than this that does not parse is retried (protocol.md §5).
  settingsSettleMs: 3000,
  // How long a dependsOn name that does not exist yet is waited for.
  dependencyWaitMs: 90 * 60 * 1000,
  // Where RunAs runs get their working directories: outside /var/lib/waagent (0700), so the
  // RunAs user can reach its own (run-as-work-dir.linux.ts).
  workRoot: '/var/lib/runcommand-handler-work',
  // Per-stream cap on a script's output files: the head and a tail are kept, the middle dropped
  // (issue #6: one run's output must not fill the disk).
  maxOutputBytes: 1024 * 1024 * 1024,
} as const;

export interface Options {
  readonly concurrency: number;
  readonly statusIntervalMs: number;
  readonly killGraceMs: number;
  readonly settingsSettleMs: number;
  readonly dependencyWaitMs: number;
  readonly maxOutputBytes: number;
  // Where the handler keeps its state; default `<lib>/runcommand-handler`.
  readonly stateDir?: string;
  // Where `<THUMBPRINT>.crt/.prv` live; default the agent's lib dir.
  readonly certDir?: string;
  // The root of RunAs working directories (absolute).
  readonly workRoot: string;
  // The instance metadata service for managed-identity tokens (tests: a loopback server).
  readonly imdsEndpoint: string;
  // The PowerShell for .ps1 scripts; default: found on PATH and in the usual places.
  readonly powerShellPath?: string;
}

// A whole number from an environment variable's text, with its bounds.
const positiveInt = (...checks: Array<z.core.$ZodCheck<number>>) => z.optional(z.coerce.number().check(z.int(), z.positive(), ...checks));
const nonNegativeInt = () => z.optional(z.coerce.number().check(z.int(), z.nonnegative()));
const text = () => z.optional(z.string().check(z.minLength(1)));

const envSchema = z.object({
  RUNCOMMAND_HANDLER_CONCURRENCY: positiveInt(z.lte(1000)),
  RUNCOMMAND_HANDLER_STATUS_INTERVAL_MS: positiveInt(z.gte(100)),
  RUNCOMMAND_HANDLER_KILL_GRACE_MS: nonNegativeInt(),
  RUNCOMMAND_HANDLER_SETTINGS_SETTLE_MS: nonNegativeInt(),
  RUNCOMMAND_HANDLER_DEPENDENCY_WAIT_MS: nonNegativeInt(),
  RUNCOMMAND_HANDLER_MAX_OUTPUT_BYTES: positiveInt(z.gte(4096)),
  RUNCOMMAND_HANDLER_STATE_DIR: text(),
  RUNCOMMAND_HANDLER_CERT_DIR: text(),
  RUNCOMMAND_HANDLER_WORK_DIR: text(),
  RUNCOMMAND_HANDLER_IMDS_ENDPOINT: z.optional(z.url({ protocol: /^https?$/ })),
  RUNCOMMAND_HANDLER_PWSH: text(),
});

// Reads the options from an environment; an invalid value names the variable and is an error.
export function parseOptions(env: NodeJS.ProcessEnv): Options {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(`invalid handler option ${String(issue?.path[0])}: ${issue?.message ?? 'invalid'}`);
  }
  const v = parsed.data;
  return {
    concurrency: v.RUNCOMMAND_HANDLER_CONCURRENCY ?? defaultOptions.concurrency,
    statusIntervalMs: v.RUNCOMMAND_HANDLER_STATUS_INTERVAL_MS ?? defaultOptions.statusIntervalMs,
    killGraceMs: v.RUNCOMMAND_HANDLER_KILL_GRACE_MS ?? defaultOptions.killGraceMs,
    settingsSettleMs: v.RUNCOMMAND_HANDLER_SETTINGS_SETTLE_MS ?? defaultOptions.settingsSettleMs,
    dependencyWaitMs: v.RUNCOMMAND_HANDLER_DEPENDENCY_WAIT_MS ?? defaultOptions.dependencyWaitMs,
    maxOutputBytes: v.RUNCOMMAND_HANDLER_MAX_OUTPUT_BYTES ?? defaultOptions.maxOutputBytes,
    imdsEndpoint: v.RUNCOMMAND_HANDLER_IMDS_ENDPOINT ?? defaultImdsEndpoint,
    workRoot: resolve(v.RUNCOMMAND_HANDLER_WORK_DIR ?? defaultOptions.workRoot),
    ...(v.RUNCOMMAND_HANDLER_STATE_DIR ? { stateDir: v.RUNCOMMAND_HANDLER_STATE_DIR } : {}),
    ...(v.RUNCOMMAND_HANDLER_CERT_DIR ? { certDir: v.RUNCOMMAND_HANDLER_CERT_DIR } : {}),
    ...(v.RUNCOMMAND_HANDLER_PWSH ? { powerShellPath: v.RUNCOMMAND_HANDLER_PWSH } : {}),
  };
}
