// The README's local use: `daemon --local` on ./.runcommand, then submit / status / logs / cancel.
import { execa } from 'execa';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const cli = resolve('dist/cli.js');
let cwd: string;
const startDaemon = () => execa('node', [cli, 'daemon', '--local'], { cwd, reject: false, env: { RUNCOMMAND_HANDLER_KILL_GRACE_MS: '500' } });
let daemon: ReturnType<typeof startDaemon>;

const run = (...args: string[]) => execa('node', [cli, ...args], { cwd, reject: false });

async function statusOf(name: string): Promise<{ instanceView: { executionState: string; output: string; exitCode: number } }> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const result = await run('status', name, '--json');
    if (result.exitCode === 0) {
      const parsed = JSON.parse(result.stdout) as { instanceView: { executionState: string; output: string; exitCode: number } };
      if (!['Pending', 'Running'].includes(parsed.instanceView.executionState) || Date.now() > deadline) return parsed;
    }
    if (Date.now() > deadline) throw new Error(`no terminal status for ${name}: ${result.stderr}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

beforeAll(async () => {
  cwd = await mkdtemp(join(tmpdir(), 'rch-local-'));
  // The operator's first commands race the daemon creating ./.runcommand: that must be fine.
  daemon = startDaemon();
  const first = await Promise.all([run('status'), run('submit', 'probe', '--script', 'true')]);
  expect(first.map((result) => result.exitCode)).toEqual([0, 0]);
  const deadline = Date.now() + 20_000;
  // `cancel` of a name without a run answers only when a daemon listens.
  while (!(await run('cancel', 'nothing-running')).stdout.includes('has no active run')) {
    if (Date.now() > deadline || daemon.exitCode !== null) {
      daemon.kill('SIGTERM');
      const result = await daemon;
      throw new Error(`local daemon did not start: ${String(result.stdout).slice(-2000)} ${String(result.stderr).slice(-2000)}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
});

afterAll(async () => {
  daemon.kill('SIGTERM');
  await daemon;
  await rm(cwd, { recursive: true, force: true });
});

describe('local use', () => {
  it('submits a script with named, positional and protected parameters and shows its status and output', async () => {
    const submit = await run('submit', 'hello', '--script', 'echo "$WHO|$1|${#TOKEN}"; exit 3', '--param', 'WHO=wide world', '--param', 'first arg', '--protected-param', 'TOKEN=s3cr3t-value');
    expect(submit.stdout).toContain('submitted hello (sequence number 0)');
    const status = await statusOf('hello');
    expect(status.instanceView).toMatchObject({ executionState: 'Failed', exitCode: 3, output: 'wide world|first arg|12\n' });
    expect((await run('logs', 'hello')).stdout).toBe('wide world|first arg|12');
    const table = await run('status');
    expect(table.stdout).toMatch(/hello\s+0\s+Failed\s+3/);
    expect((await run('submit', 'hello', '--script', 'echo again')).stdout).toContain('sequence number 1');
  });

  it('cancels a running script on request', async () => {
    await run('submit', 'long', '--script', 'echo started; sleep 60');
    const deadline = Date.now() + 10_000;
    while (!(await run('logs', 'long')).stdout.includes('started') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect((await run('cancel', 'long')).stdout).toBe('canceled long');
    expect((await statusOf('long')).instanceView.executionState).toBe('Canceled');
  });
});
