// `enable` done by the daemon for the native client (src/native/rch-enable.c; issues 11.4, 16.3):
// the client sends the argv, working directory and variables node's enable would have run with,
// and the daemon does what runEnable does (enable.ts) — but only when they resolve to the
// install it serves, the way loadHandlerContext would resolve them in a node process started
// there. Any doubt is `handled: false`, and the client runs node's enable, which then decides
// (an invalid identity, an unknown layout, a bad option: node's own message and exit code).
import { isDeepStrictEqual } from 'node:util';
import { readCommandIdentity } from '../../config/run-command.js';
import { toErrorMessage } from '../../errors.js';
import { toAgentVariables } from '../../runner/parameters.js';
import { ensureStatusFile } from '../agent/status-file.js';
import { parseArgs } from '../cli/args.js';
import { loadHandlerContext, type HandlerContext } from '../infra/context.js';
import type { DaemonReply, FastEnableRequest } from '../infra/daemon-client.js';
import type { FastEnableDeps } from '../infra/daemon-endpoint.js';
import { makeCommandLog } from '../infra/logger.js';

type Outcome = DaemonReply<'fastEnable'>;

const notHandled = (reason: string): Outcome => ({ handled: false, reason });

// Does the client's enable if it is one for this install; says why not otherwise.
export async function handleFastEnable(request: FastEnableRequest, deps: FastEnableDeps): Promise<Outcome> {
  const { context } = deps;
  const resolved = await resolveEnable(request, context);
  if (typeof resolved === 'string') {
    deps.logLeftToNode(resolved);
    return notHandled(resolved);
  }
  const { name, seq } = resolved;
  await ensureStatusFile(context, name, seq);
  deps.enable(name, seq, toAgentVariables(request.env));
  // The same line node's enable writes (runEnable), under the client's pid, saying which path ran.
  const log = makeCommandLog(context.paths.logFolder, 'enable', request.pid);
  log.info('enable', { name, seq, daemon: request.started === true ? 'started' : 'running', client: 'native' });
  await log.flush();
  return { handled: true };
}

// The run command an enable names, if its argv, cwd and variables resolve to this daemon's install;
// else why not.
async function resolveEnable(request: FastEnableRequest, context: HandlerContext): Promise<{ name: string; seq: number } | string> {
  // Relative paths (HandlerEnvironment.json's folders among them) resolve against the working directory.
  if (request.cwd !== process.cwd()) return 'another working directory';
  let explicit: string | undefined;
  try {
    const args = parseArgs(request.argv);
    if (args.command !== 'enable') return 'not an enable';
    explicit = args.flags.get('handler-environment')?.at(-1);
  } catch (error) {
    return `argv: ${toErrorMessage(error)}`;
  }
  const identity = readCommandIdentity(request.env);
  if ('error' in identity) return identity.error;
  const theirs = await loadHandlerContext(explicit, request.env, context.platform).catch((error: unknown) => toErrorMessage(error));
  if (typeof theirs === 'string') return theirs;
  if (!isDeepStrictEqual(theirs.paths, context.paths)) return 'another install';
  return identity;
}
