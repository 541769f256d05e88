// The per-run plug-ins the daemon attaches to a run (run-command.md §6: append blobs).
import { makeAppendTarget } from '../../blob/blob-target.js';
import { BlobStreaming } from '../../blob/blob-extension.js';
import type { Options } from '../../config/options.js';
import type { RunCommand } from '../../config/run-command.js';
import type { RunExtension } from '../../runner/run.js';
import { toImdsTokenSource } from '../../util/imds.js';
import type { Log } from '../infra/logger.js';
import type { Redactor } from '../infra/redact.js';

// The daemon's parts the extensions use.
export interface RunExtensionDeps {
  readonly options: Options;
  readonly log: Log;
  readonly redactor: Redactor;
}

// How long the final flush may retry before the upload is reported as failed.
const flushTimeoutMs = 60_000;

// Builds the extensions a run command needs.
export function makeRunExtensions(command: RunCommand, deps: RunExtensionDeps): RunExtension[] {
  if (!command.outputBlob && !command.errorBlob) return [];
  const tokens = toImdsTokenSource(deps.options.imdsEndpoint);
  // Tokens this run obtained: masked in every log line and message while it runs.
  const seen = new Set<string>();
  const onToken = (token: string): void => {
    if (seen.has(token)) return;
    seen.add(token);
    deps.redactor.add([token]);
  };
  const streaming = new BlobStreaming(
    { ...(command.outputBlob ? { stdout: command.outputBlob } : {}), ...(command.errorBlob ? { stderr: command.errorBlob } : {}) },
    {
      intervalMs: deps.options.statusIntervalMs,
      flushTimeoutMs,
      makeTarget: (address) => makeAppendTarget(address, { tokens, onToken }),
      log: deps.log,
      onEnd: () => deps.redactor.remove([...seen]),
    },
  );
  return [streaming];
}
