// The daemon's side of the native enable client: it does the enable (status, command log line,
// the run considered with the agent's variables) only for argv, cwd and variables that resolve to
// its own install, and otherwise says why, having written nothing.
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { handleFastEnable } from '../../../src/handler/commands/fast-enable.js';
import { loadHandlerContext, type HandlerContext } from '../../../src/handler/infra/context.js';
import type { FastEnableRequest } from '../../../src/handler/infra/daemon-client.js';
import { useTempDir } from '../../helpers/temp-dir.js';

const tempDir = useTempDir('fast-enable');

// A layout like the agent's, with its HandlerEnvironment.json; returns that file's path.
async function writeLayout(root: string): Promise<string> {
  const base = join(root, 'waagent', 'Microsoft.CPlat.Core.RunCommandHandlerLinux-1.0.0');
  await mkdir(join(base, 'config'), { recursive: true });
  const environment = [{ version: 1.0, handlerEnvironment: { logFolder: join(root, 'log'), configFolder: join(base, 'config'), statusFolder: join(base, 'status') } }];
  await writeFile(join(base, 'HandlerEnvironment.json'), JSON.stringify(environment));
  return join(base, 'HandlerEnvironment.json');
}

function makeRequest(handlerEnvironment: string, env: Record<string, string> = {}): FastEnableRequest {
  return {
    argv: ['enable', '--handler-environment', handlerEnvironment],
    cwd: process.cwd(),
    pid: 4242,
    started: false,
    env: { ConfigExtensionName: 'probe', ConfigSequenceNumber: '3', AZURE_GUEST_AGENT_WIRE_PROTOCOL_ADDRESS: '168.63.129.16', ...env },
  };
}

async function serve(context: HandlerContext, request: FastEnableRequest) {
  const enables: unknown[] = [];
  const leftToNode: string[] = [];
  const reply = await handleFastEnable(request, {
    context,
    enable: (name, seq, agentEnv) => enables.push({ name, seq, agentEnv }),
    logLeftToNode: (reason) => leftToNode.push(reason),
  });
  return { reply, enables, leftToNode };
}

describe('handleFastEnable', () => {
  it('does the enable for its own install: Pending status, the command log line under the client\u2019s pid, the run with the agent\u2019s variables', async () => {
    const path = await writeLayout(tempDir());
    const context = await loadHandlerContext(path, {});
    const { reply, enables, leftToNode } = await serve(context, makeRequest(path));
    expect(reply).toEqual({ handled: true });
    expect(leftToNode).toEqual([]);
    expect(enables).toEqual([{ name: 'probe', seq: 3, agentEnv: { AZURE_GUEST_AGENT_WIRE_PROTOCOL_ADDRESS: '168.63.129.16' } }]);
    const status = JSON.parse(await readFile(join(context.paths.statusFolder, 'probe.3.status'), 'utf8')) as Array<{ status: { formattedMessage: { message: string } } }>;
    expect(JSON.parse(status[0]?.status.formattedMessage.message ?? '{}')).toMatchObject({ executionState: 'Pending' });
    const lines = (await readFile(join(context.paths.logFolder, 'commands.log'), 'utf8')).trim().split('\n').map((line) => JSON.parse(line) as unknown);
    expect(lines).toEqual([expect.objectContaining({ level: 'info', command: 'enable', pid: 4242, message: 'enable', name: 'probe', seq: 3, daemon: 'running', client: 'native' })]);
  });

  it('leaves to node, writing nothing, an enable from another cwd, of another install, with a bad option, a bad argv or an invalid identity', async () => {
    const path = await writeLayout(join(tempDir(), 'one'));
    const other = await writeLayout(join(tempDir(), 'two'));
    const context = await loadHandlerContext(path, {});
    const cases: Array<[FastEnableRequest, string]> = [
      [{ ...makeRequest(path), cwd: '/' }, 'another working directory'],
      [makeRequest(other), 'another install'],
      [makeRequest(path, { RUNCOMMAND_HANDLER_STATE_DIR: join(tempDir(), 'elsewhere') }), 'another install'],
      [makeRequest(path, { RUNCOMMAND_HANDLER_CONCURRENCY: 'many' }), 'invalid handler option RUNCOMMAND_HANDLER_CONCURRENCY'],
      [{ ...makeRequest(path), argv: ['enable', '--handler-environment'] }, 'argv: --handler-environment needs a value'],
      [{ ...makeRequest(path), argv: ['disable', '--handler-environment', path] }, 'not an enable'],
      [makeRequest(path, { ConfigSequenceNumber: '-1' }), 'ConfigSequenceNumber is not a non-negative integer'],
      [makeRequest(path, { ConfigExtensionName: '../x' }), 'ConfigExtensionName is not a valid run command name'],
    ];
    for (const [request, reason] of cases) {
      const { reply, enables, leftToNode } = await serve(context, request);
      expect(reply).toEqual({ handled: false, reason: expect.stringContaining(reason) });
      expect(leftToNode).toEqual([expect.stringContaining(reason)]);
      expect(enables).toEqual([]);
    }
    expect(await readdir(context.paths.statusFolder).catch(() => [])).toEqual([]);
    expect(await readFile(join(context.paths.logFolder, 'commands.log'), 'utf8').catch(() => '')).toBe('');
  });
});
