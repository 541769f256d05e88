// The Windows process layer, run on Linux: what it does with node's spawn and the run directory's
// files. The wrapper is the Linux rch-exec, which takes the same argv (--grace-ms N runDir program
// args) and writes the same process.json and exit-status.json as rch-exec.exe; what differs is
// checked no further than the layer's own part: the Linux wrapper does not write the run's output
// files (it inherits stdio, here 'ignore'), does not act on terminate-request and has no --probe
// (the layer then falls back to plain liveness). The real thing runs under Wine
// (test/windows/process-windows.test.ts).
import { existsSync } from 'node:fs';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { attachScript, isSameProcess, isSameProcessSync, killRunNow, launchScript, readBootId, requestTermination } from '../../src/runner/process.windows.js';
import { readProcessIdentity, type ProcessIdentity, type ScriptLaunch } from '../../src/runner/process-contract.js';
import { useTempDir } from '../helpers/temp-dir.js';
import { waitUntil } from '../helpers/scan.js';

const dir = useTempDir('win-process');
const linuxWrapper = join(process.cwd(), 'dist', 'native', 'rch-exec');
const started: ProcessIdentity[] = [];

afterEach(() => {
  for (const identity of started.splice(0)) {
    for (const pid of [-identity.pgid, identity.wrapperPid]) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
  }
});

function toLaunch(program: string, args: string[], wrapperPath = linuxWrapper): ScriptLaunch {
  const runDir = dir();
  return { runDir, program, args, env: { PATH: process.env['PATH'] ?? '' }, stdoutPath: join(runDir, 'stdout'), stderrPath: join(runDir, 'stderr'), graceMs: 50, wrapperPath };
}

async function launch(program: string, args: string[], wrapperPath?: string) {
  const handle = await launchScript(toLaunch(program, args, wrapperPath), { pollMs: 50 });
  started.push(handle.identity);
  return handle;
}

describe('Windows process layer (Linux wrapper standing in for rch-exec.exe)', () => {
  it('resolves with the identity the wrapper recorded in process.json, and ends with its exit record', async () => {
    const handle = await launch('sh', ['-c', 'exit 7']);
    expect(await readProcessIdentity(dir())).toEqual(handle.identity);
    expect(await handle.exited).toEqual({ kind: 'exited', exitCode: 7 });
  });

  it('reports a wrapper that cannot start, or ends without process.json, as a −204 HandlerError', async () => {
    await expect(launch('sh', [], join(dir(), 'no-such-wrapper.exe'))).rejects.toThrow('Failed to start the script wrapper');
    const silent = join(dir(), 'silent-wrapper');
    await writeFile(silent, '#!/bin/sh\nexit 1\n');
    await chmod(silent, 0o755);
    await expect(launch('sh', [], silent)).rejects.toThrow('could not start the script (the script wrapper ended without reporting the script process)');
  });

  it('names the Windows error of a script that never ran (exit-status.json {"execError":E}, no process.json)', async () => {
    // rch-exec.exe's record when CreateProcessW fails (docs/windows-wrapper.md); the Linux wrapper
    // cannot produce it (it forks before exec), so this stand-in writes the record as specified.
    const fake = join(dir(), 'exec-error-wrapper');
    await writeFile(fake, '#!/bin/sh\nprintf \'{"execError":2}\\n\' > "$3/exit-status.json"\n');
    await chmod(fake, 0o755);
    await expect(launch('missing.exe', [], fake)).rejects.toThrow('could not start the script (Windows error 2)');
  });

  it('re-attaches through exit-status.json, and reports a wrapper gone without a record as killed', async () => {
    const handle = await launch('sh', ['-c', 'exit 4']);
    await handle.exited;
    expect(await attachScript(dir(), handle.identity, { pollMs: 20 }).exited).toEqual({ kind: 'exited', exitCode: 4 });
    const gone = { ...handle.identity, wrapperPid: 2 ** 22 + 1 };
    expect(await attachScript(join(dir(), 'elsewhere'), gone, { pollMs: 20 }).exited).toEqual({ kind: 'signaled', signal: 9 });
  });

  it('requestTermination creates terminate-request in the run directory while the wrapper runs, false once it is gone', async () => {
    // The script stands in for rch-exec.exe's watch: it ends when the request appears.
    const handle = await launch('sh', ['-c', 'while [ ! -e terminate-request ]; do sleep 0.05; done; exit 5']);
    expect(existsSync(join(dir(), 'terminate-request'))).toBe(false);
    expect(requestTermination(handle.identity, dir())).toBe(true);
    expect(await readFile(join(dir(), 'terminate-request'), 'utf8')).toMatch(/^\d{4}-/);
    expect(await handle.exited).toEqual({ kind: 'exited', exitCode: 5 });
    await waitUntil(async () => !(await isSameProcess(handle.identity.wrapperPid, handle.identity.wrapperStartTime, linuxWrapper)), 5000, 'the wrapper to exit');
    expect(requestTermination(handle.identity, dir())).toBe(false);
  });

  it('killRunNow kills the wrapper: no record, so the run ends as killed', async () => {
    const handle = await launch('sleep', ['30']);
    expect(isSameProcessSync(handle.identity.wrapperPid, handle.identity.wrapperStartTime, linuxWrapper)).toBe(true);
    killRunNow(handle.identity);
    expect(await handle.exited).toEqual({ kind: 'signaled', signal: 9 });
  });

  it('identifies the boot by its start time, rounded to the minute', () => {
    expect(readBootId(1_000_000_000, 3600)).toBe(readBootId(1_000_000_000 + 5000, 3605));
    expect(readBootId(1_000_000_000, 3600)).not.toBe(readBootId(1_000_000_000, 60));
  });
});
