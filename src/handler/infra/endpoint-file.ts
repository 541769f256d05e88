// The endpoint file: where the native `enable` client (src/native/rch-enable.c) finds the daemon of
// this install, in the package root (the agent's base dir, where the shim is). Lines:
//   1. the daemon's socket;
//   2. the HandlerEnvironment.json it serves and 3. its log folder, then
//   4… its RUNCOMMAND_HANDLER_* variables, `NAME=value`, sorted;
// lines 2… are there so that the client, finding no daemon, can start one exactly as enable's
// spawnDaemon would (daemon-control.ts) — it does only when its own argv and variables resolve to
// the same file and carry the same variables. The client trusts the socket only after the checks
// of isTrustedEndpoint (ipc.ts), and the daemon does only an enable that names its own install
// (commands/fast-enable.ts): a stale or foreign file costs a fallback to node's enable, never a wrong
// answer. Windows keeps node's enable (named pipes; its shim is a .cmd), so it has no such file.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../../util/atomic-file.js';
import type { HandlerContext } from './context.js';
import { isPathnameSocket, maxSocketPathBytes } from './ipc.js';

// Its name in the package root; rch-enable.c spells it too (ENDPOINT_FILE).
export const endpointFileName = '.daemon-endpoint';

// The file's text for the daemon of `context` running with `env`; only the socket's line when a
// value would not fit on one line.
export function toEndpointFileText(context: HandlerContext, env: NodeJS.ProcessEnv): string {
  const { endpoint } = context.daemonAddress;
  const options = Object.entries(env)
    .filter(([key, value]) => key.startsWith('RUNCOMMAND_HANDLER_') && value !== undefined)
    .map(([key, value]) => `${key}=${value}`)
    .sort();
  const lines = [endpoint, context.paths.handlerEnvironmentPath, context.paths.logFolder, ...options];
  return `${lines.some((line) => /[\n\0]/.test(line)) ? endpoint : lines.join('\n')}\n`;
}

// Writes the endpoint file unless it already says so; true when it does now. Nothing for a named
// pipe or a socket path the client could not use; the package root may be read-only (a
// development tree of another user): then there is simply no fast path.
export async function writeEndpointFile(packageRoot: string, context: HandlerContext, env: NodeJS.ProcessEnv): Promise<boolean> {
  const { endpoint } = context.daemonAddress;
  if (!isPathnameSocket(endpoint) || Buffer.byteLength(endpoint) > maxSocketPathBytes || /[\n\0]/.test(endpoint)) return false;
  const path = join(packageRoot, endpointFileName);
  const text = toEndpointFileText(context, env);
  if ((await readFile(path, 'utf8').catch(() => undefined)) === text) return true;
  // No secret in it (the token stays in the state folder), but only the daemon's user needs it.
  return writeFileAtomic(path, text, { mode: 0o600, sync: false }).then(
    () => true,
    () => false,
  );
}
