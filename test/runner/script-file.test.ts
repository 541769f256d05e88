import { execFile } from 'node:child_process';
import { chmod, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { HandlerError } from '../../src/errors.js';
import { findDefaultShell, toLaunchCommand, writeScriptFile } from '../../src/runner/script-file.js';

const writeInlineScript = (dir: string, script: string): Promise<string> => writeScriptFile(dir, 'script.sh', script);
import { useTempDir } from '../helpers/temp-dir.js';

const run = promisify(execFile);
const tempDir = useTempDir('script-file');

async function catchError(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error('expected a rejection');
    },
    (error: unknown) => error,
  );
}

describe('writeScriptFile', () => {
  it('writes the script as script.sh in the run directory with mode 0700', async () => {
    const path = await writeInlineScript(tempDir(), 'echo hello\n');
    expect(path).toBe(join(tempDir(), 'script.sh'));
    expect(await readFile(path, 'utf8')).toBe('echo hello\n');
    expect((await stat(path)).mode & 0o777).toBe(0o700);
  });

  it('resets the mode to 0700 when a script file already exists with another mode', async () => {
    const path = join(tempDir(), 'script.sh');
    await writeFile(path, 'old', { mode: 0o666 });
    await chmod(path, 0o666);
    await writeInlineScript(tempDir(), 'new\n');
    expect(await readFile(path, 'utf8')).toBe('new\n');
    expect((await stat(path)).mode & 0o777).toBe(0o700);
  });

  it('puts a UTF-8 BOM first when asked (Windows PowerShell scripts)', async () => {
    const path = await writeScriptFile(tempDir(), 'script.ps1', 'Write-Host "ü"', true);
    expect(await readFile(path)).toEqual(Buffer.from('\uFEFFWrite-Host "ü"', 'utf8'));
  });

  it('keeps the script bytes exactly, multi-byte characters and CRLF included', async () => {
    const script = 'echo "héllo €"\r\necho 😀\n';
    const path = await writeInlineScript(tempDir(), script);
    expect(await readFile(path)).toEqual(Buffer.from(script, 'utf8'));
  });

  it('fails with HandlerError -203 (save script, service blame) when the run directory does not exist', async () => {
    const error = await catchError(writeInlineScript(join(tempDir(), 'missing'), 'echo hi\n'));
    expect(error).toBeInstanceOf(HandlerError);
    const handlerError = error as HandlerError;
    expect(handlerError.code).toBe(-203);
    expect(handlerError.blame).toBe('service');
    expect(handlerError.message).toMatch(/^could not save the script: ENOENT/);
    expect((handlerError.cause as NodeJS.ErrnoException).code).toBe('ENOENT');
  });
});

describe('findDefaultShell', () => {
  it('picks /bin/bash by default where bash is installed', async () => {
    await stat('/bin/bash');
    expect(await findDefaultShell()).toBe('/bin/bash');
  });

  it('falls back to the next candidate when the first is missing', async () => {
    expect(await findDefaultShell([join(tempDir(), 'no-bash'), '/bin/sh'])).toBe('/bin/sh');
  });

  it('skips a candidate that exists but is not executable', async () => {
    const notExecutable = join(tempDir(), 'bash');
    await writeFile(notExecutable, '#!/bin/sh\n', { mode: 0o644 });
    expect(await findDefaultShell([notExecutable, '/bin/sh'])).toBe('/bin/sh');
  });

  it('fails with HandlerError -204 (start execution) naming every candidate when no shell exists', async () => {
    const candidates = [join(tempDir(), 'bash'), join(tempDir(), 'sh')];
    const error = await catchError(findDefaultShell(candidates));
    expect(error).toBeInstanceOf(HandlerError);
    expect((error as HandlerError).code).toBe(-204);
    expect((error as HandlerError).blame).toBe('service');
    expect((error as HandlerError).message).toBe(`no shell found (tried ${candidates[0]}, ${candidates[1]})`);
  });
});

describe('toLaunchCommand', () => {
  it('runs a script without a #! line with /bin/bash, script path first, then the arguments', async () => {
    const script = 'printf "%s|" "${BASH_VERSION:+bash}" "$0" "$@"\n';
    const path = await writeInlineScript(tempDir(), script);
    const command = await toLaunchCommand(path, script, ['one arg', '$HOME']);
    expect(command).toEqual({ program: '/bin/bash', args: [path, 'one arg', '$HOME'] });
    const { stdout } = await run(command.program, [...command.args], { cwd: tempDir() });
    expect(stdout).toBe(`bash|${path}|one arg|$HOME|`);
  });

  it('runs a script with a #! line directly, so the kernel starts the interpreter it names', async () => {
    // /bin/cat as interpreter prints the script file itself: proof the #! line was honoured.
    const script = '#!/bin/cat\nthis is not shell\n';
    const path = await writeInlineScript(tempDir(), script);
    const command = await toLaunchCommand(path, script, []);
    expect(command).toEqual({ program: path, args: [] });
    const { stdout } = await run(command.program, [...command.args]);
    expect(stdout).toBe(script);
  });

  it('passes the arguments to the #! interpreter after the script path', async () => {
    const script = '#!/bin/sh\nprintf "%s|" "$@"\n';
    const path = await writeInlineScript(tempDir(), script);
    const command = await toLaunchCommand(path, script, ['a b', 'c']);
    expect(command).toEqual({ program: path, args: ['a b', 'c'] });
    const { stdout } = await run(command.program, [...command.args]);
    expect(stdout).toBe('a b|c|');
  });

  it('does not treat a #! that is not at the very start of the script as an interpreter line', async () => {
    const script = ' #!/bin/cat\necho from bash\n';
    const command = await toLaunchCommand('/x/script.sh', script, ['1']);
    expect(command).toEqual({ program: '/bin/bash', args: ['/x/script.sh', '1'] });
  });
});
