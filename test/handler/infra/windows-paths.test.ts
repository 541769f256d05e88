// The handler's folders from a HandlerEnvironment.json as the Windows agent writes it.
import { describe, expect, it } from 'vitest';
import { parseHandlerEnvironment } from '../../../src/config/handler-environment.js';
import { parseOptions } from '../../../src/config/options.js';
import { linuxPlatform } from '../../../src/platform/linux.js';
import { selectPlatform } from '../../../src/platform/select.js';
import { windowsPlatform } from '../../../src/platform/windows.js';

const makeHandlerPaths = windowsPlatform.makeHandlerPaths;

const plugin = 'C:\\Packages\\Plugins\\Microsoft.CPlat.Core.RunCommandWindows';
// The Windows agent's file: version as a number, seqNo, and empty deployment extras.
const windowsAgentFile = JSON.stringify([
  {
    name: 'Microsoft.CPlat.Core.RunCommandWindows',
    seqNo: '0',
    version: 1,
    handlerEnvironment: {
      logFolder: 'C:\\WindowsAzure\\Logs\\Plugins\\Microsoft.CPlat.Core.RunCommandWindows\\1.1.17',
      configFolder: `${plugin}\\1.1.17\\RuntimeSettings`,
      statusFolder: `${plugin}\\1.1.17\\Status`,
      heartbeatFile: `${plugin}\\1.1.17\\Status\\HeartBeat.Json`,
      deploymentid: '',
      rolename: '',
      instance: '',
      hostResolverAddress: '',
    },
  },
]);

describe('Windows handler paths', () => {
  it('derive config, status, logs and a state folder outside the versioned plugin folder', () => {
    const environment = parseHandlerEnvironment(`\uFEFF${windowsAgentFile}`);
    const paths = makeHandlerPaths(`${plugin}\\1.1.17\\HandlerEnvironment.json`, environment, parseOptions({}));
    expect(paths).toEqual({
      handlerEnvironmentPath: `${plugin}\\1.1.17\\HandlerEnvironment.json`,
      configFolder: `${plugin}\\1.1.17\\RuntimeSettings`,
      statusFolder: `${plugin}\\1.1.17\\Status`,
      logFolder: 'C:\\WindowsAzure\\Logs\\Plugins\\Microsoft.CPlat.Core.RunCommandWindows\\1.1.17',
      libDir: plugin,
      certDir: plugin,
      stateDir: `${plugin}\\runcommand-handler`,
    });
  });

  it("names the daemon's pipe under ProtectedPrefix\\Administrators (only admins can create it), one per state folder", () => {
    const endpoint = windowsPlatform.toDaemonEndpoint(`${plugin}\\runcommand-handler`);
    expect(endpoint).toMatch(/^\\\\\.\\pipe\\ProtectedPrefix\\Administrators\\runcommand-handler-[0-9a-f]{24}$/);
    expect(windowsPlatform.toDaemonEndpoint('D:\\state')).not.toBe(endpoint);
  });

  it('honours RUNCOMMAND_HANDLER_STATE_DIR', () => {
    const environment = parseHandlerEnvironment(windowsAgentFile);
    const paths = makeHandlerPaths(`${plugin}\\1.1.17\\HandlerEnvironment.json`, environment, parseOptions({ RUNCOMMAND_HANDLER_STATE_DIR: 'D:\\state' }));
    expect(paths.stateDir).toBe('D:\\state');
  });
});

describe('the platform choice', () => {
  it('is made once, from the host: Linux here, each platform with its own files', () => {
    expect(selectPlatform()).toBe(linuxPlatform);
    expect(selectPlatform('win32')).toBe(windowsPlatform);
    expect(windowsPlatform.name).toBe('windows');
    expect(windowsPlatform.scripts).toMatchObject({ catalogue: 'windows', inlineShell: 'powershell', uriScriptsMustBePowerShell: true });
    expect(linuxPlatform.scripts).toMatchObject({ catalogue: 'linux', inlineShell: 'bash', uriScriptsMustBePowerShell: false });
  });
});
