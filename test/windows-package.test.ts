// The Windows entry points: the .cmd shim and the Windows manifest the agent reads (protocol.md §2).
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));

describe('Windows package entry points', () => {
  it('HandlerManifest.windows.json names the .cmd shim for all five commands, multi-config', async () => {
    const manifest = JSON.parse(await readFile(`${root}/HandlerManifest.windows.json`, 'utf8')) as [{ handlerManifest: Record<string, unknown> }];
    const linux = JSON.parse(await readFile(`${root}/HandlerManifest.json`, 'utf8')) as [{ handlerManifest: Record<string, unknown> }];
    const { handlerManifest } = manifest[0];
    for (const command of ['install', 'uninstall', 'update', 'enable', 'disable']) {
      expect(handlerManifest[`${command}Command`]).toBe(`bin\\runcommand-handler.cmd ${command}`);
    }
    const { installCommand, uninstallCommand, updateCommand, enableCommand, disableCommand, ...rest } = linux[0].handlerManifest;
    expect(handlerManifest).toMatchObject(rest);
    expect(handlerManifest['supportsMultipleExtensions']).toBe(true);
  });

  it('the shim runs the packaged node.exe on dist/cli.js with the agent\'s arguments, CRLF line ends', async () => {
    const shim = await readFile(`${root}/bin/runcommand-handler.cmd`, 'utf8');
    expect(shim.split('\r\n').every((line) => !line.includes('\n'))).toBe(true);
    expect(shim).toContain('"%here%node.exe" "%here%..\\dist\\cli.js" %*');
    expect(shim).toContain('exit /b %ERRORLEVEL%');
  });
});
