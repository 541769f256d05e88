import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { SettingsError } from '../../../src/errors.js';
import { catalogueDir, findCommand, listCommandIds, readCatalogue } from '../../../src/runner/sources/catalogue.js';
import { bootstrapScript } from '../../../src/runner/sources/powershell-bootstrap.js';
import { launcherScript } from '../../../src/runner/run-as.windows.js';
import { toDecryptScript } from '../../../src/config/protected-settings.windows.js';
import { pwshTestsRun, requirePwsh } from '../../helpers/pwsh.js';

const windowsIds = ['IPConfig', 'EnableRemotePS', 'DisableNLA', 'DisableWindowsUpdate', 'EnableWindowsUpdate', 'EnableAdminAccount', 'EnableEMS', 'RDPSettings', 'ResetRDPCert', 'SetRDPPort'];

describe('the built-in command catalogue', () => {
  it('has every documented command with its platforms and shell', async () => {
    const catalogue = await readCatalogue();
    expect(catalogue.map(({ id, platforms, shell }) => ({ id, platforms, shell }))).toEqual([
      { id: 'RunShellScript', platforms: ['linux'], shell: 'bash' },
      { id: 'ifconfig', platforms: ['linux'], shell: 'bash' },
      { id: 'RunPowerShellScript', platforms: ['linux', 'windows'], shell: 'powershell' },
      ...windowsIds.map((id) => ({ id, platforms: ['windows'], shell: 'powershell' })),
    ]);
    for (const command of catalogue) expect(command.description.length).toBeGreaterThan(20);
    expect(catalogue.find((c) => c.id === 'SetRDPPort')?.parameters).toEqual([{ name: 'RDPPort', required: false, defaultValue: '3389' }]);
  });

  it('ships a script file for each command that does not run source.script', async () => {
    for (const command of await readCatalogue()) {
      if (['RunShellScript', 'RunPowerShellScript'].includes(command.id)) {
        expect(command.script).toBeUndefined();
        continue;
      }
      const path = join(catalogueDir, command.script ?? '');
      expect((await stat(path)).isFile()).toBe(true);
      expect(path.endsWith(command.shell === 'powershell' ? '.ps1' : '.sh')).toBe(true);
      // ASCII only: Windows PowerShell 5.1 would misread anything else in a BOM-less file.
      expect(await readFile(path, 'latin1')).toMatch(/^[\x09\x0a\x0d\x20-\x7e]*$/);
    }
  });

  it('lists the ids of each platform', async () => {
    const catalogue = await readCatalogue();
    expect(listCommandIds(catalogue, 'linux')).toEqual(['RunShellScript', 'ifconfig', 'RunPowerShellScript']);
    expect(listCommandIds(catalogue, 'windows')).toEqual(['RunPowerShellScript', ...windowsIds]);
  });

  it('finds ids ignoring case and refuses unknown or other-platform ids, listing what is available', async () => {
    const catalogue = await readCatalogue();
    expect(findCommand(catalogue, 'IFCONFIG', 'linux').id).toBe('ifconfig');
    expect(findCommand(catalogue, 'runpowershellscript', 'windows').id).toBe('RunPowerShellScript');
    const unknown = (() => findCommand(catalogue, 'Format-Disk', 'linux')) as () => never;
    expect(unknown).toThrow(SettingsError);
    expect(unknown).toThrow("source.commandId: 'Format-Disk' is not a built-in command; available on linux: RunShellScript, ifconfig, RunPowerShellScript");
    expect(() => findCommand(catalogue, 'DisableNLA', 'linux')).toThrow(
      "source.commandId: 'DisableNLA' is a windows command; available on linux: RunShellScript, ifconfig, RunPowerShellScript",
    );
    expect(() => findCommand(catalogue, 'ifconfig', 'windows')).toThrow(/'ifconfig' is a linux command; available on windows: RunPowerShellScript, IPConfig/);
  });
});

// Every PowerShell text the handler ships or writes parses without errors.
describe.runIf(pwshTestsRun)('shipped PowerShell', () => {
  it('parses without syntax errors', async () => {
    const catalogue = await readCatalogue();
    const files = catalogue.filter((c) => c.shell === 'powershell' && c.script).map((c) => join(catalogueDir, c.script ?? ''));
    const texts = [bootstrapScript, launcherScript, toDecryptScript('A'.repeat(40)), toDecryptScript('A'.repeat(40), { kind: 'pfx', path: "/tmp/o'brien.pfx" })];
    const check = `
$failed = 0
$in = [Console]::In.ReadToEnd() | ConvertFrom-Json
foreach ($file in $in.files) { $e = $null; [void][System.Management.Automation.Language.Parser]::ParseFile($file, [ref]$null, [ref]$e); if ($e) { Write-Output "$($file): $($e[0].Message)"; $failed++ } }
foreach ($text in $in.texts) { $e = $null; [void][System.Management.Automation.Language.Parser]::ParseInput($text, [ref]$null, [ref]$e); if ($e) { Write-Output "text: $($e[0].Message)"; $failed++ } }
exit $failed`;
    const input = JSON.stringify({ files, texts });
    const result = await execa(requirePwsh(), ['-NoProfile', '-NonInteractive', '-Command', check], { input, reject: false, env: { NO_COLOR: '1' } });
    expect(result.stdout).toBe('');
    expect(result.exitCode).toBe(0);
    expect(files).toHaveLength(10);
  });
});
