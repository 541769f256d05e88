// The endpoint file: where the native `enable` client (src/native/rch-enable.c) finds the daemon of
// this install. One line, the socket's path, in the package root (the agent's base dir, where the
// shim is); the client only trusts the socket it names after the same checks as isTrustedEndpoint
// (ipc.ts), and the daemon only does an enable whose argv and variables name its own install
// (daemon/fast-enable.ts), so a stale or foreign file costs a fallback to node's enable, never a
// wrong answer. Windows keeps node's enable (named pipes; the shim there is a .cmd), so no file.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../../util/atomic-file.js';
import { isPathnameSocket, maxSocketPathBytes } from './ipc.js';

// Its name in the package root; rch-enable.c spells it too (ENDPOINT_FILE).
export const endpointFileName = '.daemon-endpoint';

// Writes the endpoint file for `endpoint` unless it already says so; true when it names it now.
// The package root may be read-only (a development tree of another user): then there is no fast path.
export async function writeEndpointFile(packageRoot: string, endpoint: string): Promise<boolean> {
  if (!isPathnameSocket(endpoint) || Buffer.byteLength(endpoint) > maxSocketPathBytes || endpoint.includes('\n')) return false;
  const path = join(packageRoot, endpointFileName);
  const text = `${endpoint}\n`;
  if ((await readFile(path, 'utf8').catch(() => undefined)) === text) return true;
  // 0644: a path, no secret (the token stays in the root-only state folder).
  return writeFileAtomic(path, text, { mode: 0o644, sync: false }).then(
    () => true,
    () => false,
  );
}
