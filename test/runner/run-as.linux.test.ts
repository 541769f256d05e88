import { chmod, lstat, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { RunCommand } from '../../src/config/run-command.js';
import { HandlerError } from '../../src/errors.js';
import { launchScript } from '../../src/runner/process.linux.js';
import type { ScriptLaunch } from '../../src/runner/process-contract.js';
import { applyRunAs, prepareRunAs, runAsPath, toRunAsEnvironment, toSetprivArgs } from '../../src/runner/run-as.linux.js';
import { makeTestGroup, makeTestUser, removeTestUsers, type TestUser } from '../helpers/users.js';

const wrapperPath = fileURLToPath(new URL('../../dist/native/rch-exec', import.meta.url));
const alice = { name: 'alice', uid: 1234, gid: 2345, home: '/srv/alice', shell: '/bin/zsh' };
let user: TestUser | undefined;
let group = '';
let top = '';
let runDir = '';

beforeAll(async () => {
  group = await makeTestGroup('grp');
  user = await makeTestUser('ra', { groups: [group], home: '/srv/rch-home' });
});

afterAll(async () => {
  await removeTestUsers([user], [group]);
});

beforeEach(async () => {
  top = await mkdtemp(join(tmpdir(), 'rch-runas-'));
  await chmod(top, 0o711);
  runDir = join(top, 'state', 'run');
  await mkdir(runDir, { recursive: true, mode: 0o700 });
});

afterEach(async () => {
  await rm(top, { recursive: true, force: true });
});

function makeCommand(runAsUser: string | undefined, extra: Partial<RunCommand> = {}): RunCommand {
  return {
    name: 'rc', seq: 1, source: { kind: 'script', script: 'true' }, parameters: [], protectedParameterCount: 0,
    timeoutInSeconds: 0, asyncExecution: false, treatFailureAsDeploymentFailure: false, installAsService: false, artifacts: [], dependsOn: [],
    secrets: [], unknownKeys: [], warnings: [], ...(runAsUser === undefined ? {} : { runAsUser }), ...extra,
  };
}

describe('toSetprivArgs and toRunAsEnvironment', () => {
  it('puts setpriv with uid, gid and initgroups in front of the script argv, after --', () => {
    expect(toSetprivArgs(alice, '/bin/bash', ['/w/script.sh', '--x'])).toEqual(['--reuid=1234', '--regid=2345', '--init-groups', '--', '/bin/bash', '/w/script.sh', '--x']);
  });

  it("gives the user's identity and a sane PATH, keeps locale only, and lets named parameters win", () => {
    const base = { HOME: '/root', USER: 'root', PATH: '/root/bin', LANG: 'C.UTF-8', LC_ALL: 'C', AZURE_GUEST_AGENT_X: '1', SUDO_USER: 'x', GREETING: 'base' };
    expect(toRunAsEnvironment(base, alice, { GREETING: 'hi' })).toEqual({
      LANG: 'C.UTF-8', LC_ALL: 'C', HOME: '/srv/alice', USER: 'alice', LOGNAME: 'alice', SHELL: '/bin/zsh', PATH: runAsPath, GREETING: 'hi',
    });
  });
});

describe('prepareRunAs', () => {
  const warn = (messages: string[]) => (message: string) => void messages.push(message);

  it('does nothing without runAsUser', async () => {
    expect(await prepareRunAs(makeCommand(undefined), { runId: 'r', workRoot: join(top, 'work'), warn: warn([]) })).toBeUndefined();
  });

  it('refuses when the handler is not root', async () => {
    const error: unknown = await prepareRunAs(makeCommand('root'), { runId: 'r', workRoot: join(top, 'work'), warn: warn([]), euid: 1000 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HandlerError);
    expect((error as HandlerError).message).toContain('needs the handler to run as root');
  });

  it('fails an unknown user with -102 before creating anything', async () => {
    const error: unknown = await prepareRunAs(makeCommand('rch-nobody-here'), { runId: 'r', workRoot: join(top, 'work'), warn: warn([]) }).catch((e: unknown) => e);
    expect((error as HandlerError).code).toBe(-102);
    await expect(lstat(join(top, 'work'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('warns, without the value, that a given password is not used, and that uid 0 means root privileges', async () => {
    const messages: string[] = [];
    const runAs = await prepareRunAs(makeCommand('root', { runAsPassword: 'pw-CANARY' }), { runId: 'r', workRoot: join(top, 'work'), warn: warn(messages) });
    expect(runAs?.user.uid).toBe(0);
    expect(messages.join('\n')).toContain('runAsPassword is not used');
    expect(messages.join('\n')).toContain('uid 0');
    expect(messages.join('\n')).not.toContain('CANARY');
  });
});

describe('applyRunAs through the real wrapper', () => {
  async function runAsUser(script: string, parameters: Record<string, string> = {}): Promise<{ stdout: string; stderr: string; launch: ScriptLaunch }> {
    const runAs = await prepareRunAs(makeCommand(user!.name), { runId: 'rc.1.x', workRoot: join(top, 'work'), warn: () => undefined });
    const scriptPath = join(runAs!.workDir, 'script.sh');
    await writeFile(scriptPath, script, { mode: 0o700 });
    const base: ScriptLaunch = {
      runDir, program: '/bin/bash', args: [scriptPath, 'first arg'], env: { PATH: '/usr/bin:/bin', LANG: 'C', HOME: '/root', ...parameters },
      stdoutPath: join(runDir, 'stdout'), stderrPath: join(runDir, 'stderr'), graceMs: 1000, wrapperPath,
    };
    const launch = await applyRunAs(base, runAs, parameters);
    const handle = await launchScript(launch);
    expect(await handle.exited).toEqual({ kind: 'exited', exitCode: 0 });
    return { stdout: await readFile(launch.stdoutPath, 'utf8'), stderr: await readFile(launch.stderrPath, 'utf8'), launch };
  }

  it('runs the script with the user, its groups, its environment and a working directory it owns', async () => {
    const script = 'id -un; id -gn; id -Gn; echo "$HOME|$USER|$LOGNAME|$SHELL|$PATH|$GREETING|$1"; pwd; stat -c "%U %a" . "$0"\n';
    const { stdout, launch } = await runAsUser(script, { GREETING: 'hello there' });
    const lines = stdout.split('\n');
    expect(lines[0]).toBe(user!.name);
    expect(lines[1]).toBe(user!.name);
    expect(lines[2]?.split(' ')).toEqual(expect.arrayContaining([user!.name, group]));
    expect(lines[3]).toBe(`/srv/rch-home|${user!.name}|${user!.name}|/bin/bash|${runAsPath}|hello there|first arg`);
    expect(lines[4]).toBe(launch.cwd);
    expect(lines.slice(5, 7)).toEqual([`${user!.name} 700`, `${user!.name} 700`]);
  });

  it('keeps the state files root-only: the wrapper writes them, the user cannot open them', async () => {
    const { stdout } = await runAsUser(`for f in "${runDir}/process.json" "${runDir}/stdout" "${runDir}"; do if cat "$f" 2>/dev/null || ls "$f" 2>/dev/null; then echo "READ $f"; else echo "DENIED"; fi; done\n`);
    expect(stdout.trim().split('\n')).toEqual(['DENIED', 'DENIED', 'DENIED']);
    for (const file of ['process.json', 'exit-status.json', 'stdout']) expect((await lstat(join(runDir, file))).uid).toBe(0);
  });
});
