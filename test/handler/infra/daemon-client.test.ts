// The daemon's control protocol refuses a fastEnable whose fields are not what the native client
// sends, naming the field and the rule, before any handler sees it; the daemon keeps serving.
import type { Server } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { serveDaemon, type DaemonHandlers, type FastEnableRequest } from '../../../src/handler/infra/daemon-client.js';
import { sendIpcRequest, type IpcAddress } from '../../../src/handler/infra/ipc.js';
import { useTempDir } from '../../helpers/temp-dir.js';

const tempDir = useTempDir('daemon-client');
const servers: Server[] = [];

afterEach(() => {
  for (const server of servers.splice(0)) server.close();
});

describe('fastEnable requests', () => {
  it('are refused with the field and the rule when malformed, reach the handler when valid, and the daemon keeps serving', async () => {
    const stateDir = join(tempDir(), 'state');
    const address: IpcAddress = { endpoint: join(stateDir, 'daemon.sock'), tokenPath: join(stateDir, 'ipc-token'), lockPath: join(stateDir, 'daemon.lock') };
    const seen: FastEnableRequest[] = [];
    const handlers: DaemonHandlers = {
      hello: async () => ({ pid: process.pid, version: 'test', configFolder: '/config' }),
      enable: async () => ({}),
      disable: async () => ({}),
      cancel: async () => ({ canceled: false }),
      shutdown: async () => ({}),
      fastEnable: async (request) => (seen.push(request), { handled: true }),
    };
    servers.push(await serveDaemon(address, handlers));
    const valid = { op: 'fastEnable', argv: ['enable'], cwd: '/', pid: 7, started: true, env: { ConfigSequenceNumber: '0', RUNCOMMAND_HANDLER_STATE_DIR: '/x' } };
    const refusals: Array<[Record<string, unknown>, string]> = [
      [{ argv: 'enable' }, 'argv: must be a list of at most 64 strings'],
      [{ argv: ['enable', 3] }, 'argv: must be a list of at most 64 strings'],
      [{ cwd: 'relative' }, 'cwd: must be an absolute path'],
      [{ pid: 0 }, 'pid: must be a positive integer'],
      [{ started: 'yes' }, 'started: must be a boolean'],
      [{ env: [] }, 'env: must be an object'],
      [{ env: { PATH: '/bin' } }, 'env: only the variables enable reads, as strings'],
      [{ env: { ConfigSequenceNumber: 1 } }, 'env: only the variables enable reads, as strings'],
    ];
    for (const [change, error] of refusals) {
      expect(await sendIpcRequest(address, { ...valid, ...change }, 2000)).toEqual({ ok: false, error });
    }
    expect(seen).toEqual([]);
    expect(await sendIpcRequest(address, valid, 2000)).toEqual({ ok: true, handled: true });
    const { op: _op, ...fields } = valid;
    expect(seen).toEqual([fields]);
  });
});
