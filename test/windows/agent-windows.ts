// The Windows guest agent, played under Wine by the agent simulator (test/helpers/agent.ts): the
// Windows zip unpacked into the Windows agent's layout (protocol.md §1: `Packages\Plugins\
// <Publisher.Type>\<version>\` with `RuntimeSettings\` and `Status\`, logs in `WindowsAzure\Logs\
// Plugins\<Publisher.Type>\<version>\`), under a private temp root reached through Z:, the
// agent's HandlerEnvironment.json with Windows paths, and each handler command started as the
// Windows agent does: the manifest's command line from the plugin folder, a `.cmd` through cmd.exe.
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { makeCertificate, type AgentCertificate } from '../helpers/agent-certificates.js';
import { toAgentJson } from '../helpers/agent-json.js';
import { extractOnce, type AgentHost, type AgentLayout } from '../helpers/agent-layout.js';
import { startWrapper, toWindowsPath, wineEnv, type WineLane } from './wine.js';

export const WINDOWS_HANDLER_NAME = 'Microsoft.CPlat.Core.RunCommandWindows';

// The Windows agent under Wine: `cmd.exe /d /c <plugin folder>\<command> <verb>`, the Wine
// prefix's environment, Z: paths.
function makeWindowsHost(lane: WineLane): AgentHost {
  return {
    toArgv: (layout, commandLine) => {
      const [file = '', ...args] = commandLine.trim().split(/\s+/);
      return [lane.wine, 'cmd.exe', '/d', '/c', `${toWindowsPath(layout.baseDir)}\\${file}`, ...args];
    },
    toAgentPath: toWindowsPath,
    env: { ...wineEnv(lane), NO_COLOR: '1' },
  };
}

// HandlerEnvironment.json as the Windows agent writes it (protocol.md §3): Windows paths, and its
// extra keys as empty strings.
async function writeWindowsHandlerEnvironment(layout: AgentLayout): Promise<void> {
  const win = toWindowsPath;
  const environment = [
    {
      name: WINDOWS_HANDLER_NAME,
      version: 1,
      handlerEnvironment: {
        logFolder: win(layout.logFolder),
        configFolder: win(layout.configFolder),
        statusFolder: win(layout.statusFolder),
        heartbeatFile: win(path.join(layout.statusFolder, 'HeartBeat.Json')),
        deploymentid: '',
        rolename: '',
        instance: '',
        hostResolverAddress: '',
        eventsFolder: win(layout.eventsFolder),
      },
    },
  ];
  await writeFile(path.join(layout.baseDir, 'HandlerEnvironment.json'), toAgentJson(environment));
}

// Installs the Windows zip like the Windows agent into a fresh temp root; `libDir` is the
// `<Publisher.Type>` folder, whose `runcommand-handler` subfolder is the handler's state.
export async function makeWindowsAgentLayout(lane: WineLane, zip: string, version = '1.0.0'): Promise<AgentLayout> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'rch-winagent-'));
  const libDir = path.join(root, 'Packages', 'Plugins', WINDOWS_HANDLER_NAME);
  const baseDir = path.join(libDir, version);
  const logFolder = path.join(root, 'WindowsAzure', 'Logs', 'Plugins', WINDOWS_HANDLER_NAME, version);
  const layout: AgentLayout = {
    root,
    libDir,
    baseDir,
    configFolder: path.join(baseDir, 'RuntimeSettings'),
    statusFolder: path.join(baseDir, 'Status'),
    logFolder,
    eventsFolder: path.join(root, 'WindowsAzure', 'Logs', 'Plugins', WINDOWS_HANDLER_NAME, 'Events'),
    version,
    certificate: undefined,
    host: makeWindowsHost(lane),
  };
  await mkdir(libDir, { recursive: true });
  // Hard links to one extraction per zip, as for the Linux agent.
  await execa('cp', ['-al', await extractOnce(zip), baseDir]);
  for (const folder of [layout.configFolder, layout.statusFolder, layout.eventsFolder, layout.logFolder]) {
    await mkdir(folder, { recursive: true });
  }
  await writeWindowsHandlerEnvironment(layout);
  return layout;
}

// Puts a certificate with its private key into LocalMachine\My as the Windows agent provides the
// tenant certificate (protocol.md §1, §6): a PFX made by openssl, imported with a persisted machine
// key by the lane's pwsh.exe (under rch-exec.exe, which gives it the console it needs). Earlier
// test certificates (same subject) go first, by their registry keys: Wine 8.0 persists no
// X509Store.Remove, and drops the Add of a store session that removed one. The certificate becomes
// the layout's, so writeSettings encrypts protected settings to it.
export async function installCertificate(lane: WineLane, layout: AgentLayout): Promise<{ certificate: AgentCertificate; stdout: string }> {
  const certificate = await makeCertificate(layout);
  const dir = await mkdtemp(path.join(layout.root, 'certificate-'));
  const pfx = path.join(dir, 'tenant.pfx');
  await execa('openssl', ['pkcs12', '-export', '-in', certificate.crtPath, '-inkey', certificate.prvPath, '-out', pfx, '-passout', 'pass:']);
  const script = path.join(dir, 'install.ps1');
  await writeFile(script, `param([string]$Pfx)
$ErrorActionPreference = 'Stop'
$certificate = New-Object System.Security.Cryptography.X509Certificates.X509Certificate2($Pfx, '', 'MachineKeySet, PersistKeySet')
$store = New-Object System.Security.Cryptography.X509Certificates.X509Store('My', 'LocalMachine')
$store.Open('ReadOnly')
$earlier = @($store.Certificates | Where-Object Subject -eq $certificate.Subject | ForEach-Object Thumbprint)
$store.Close()
foreach ($thumbprint in $earlier) { Remove-Item -LiteralPath "HKLM:\\Software\\Microsoft\\SystemCertificates\\My\\Certificates\\$thumbprint" -Recurse }
$store.Open('ReadWrite')
$store.Add($certificate)
$store.Close()
Write-Output "added $($certificate.Thumbprint) HasPrivateKey=$($certificate.HasPrivateKey)"
`);
  const runDir = path.join(dir, 'run');
  await mkdir(runDir);
  const command = [toWindowsPath(lane.pwsh), '-NoProfile', '-NonInteractive', '-ExecutionPolicy', 'Bypass', '-File', toWindowsPath(script), '-Pfx', toWindowsPath(pfx)];
  const wrapper = await startWrapper(lane, dir, runDir, command).exited;
  const read = (file: string) => readFile(path.join(runDir, file), 'utf8').catch(() => '');
  const [exit, stdout, stderr] = await Promise.all([read('exit-status.json'), read('stdout'), read('stderr')]);
  if (wrapper.code !== 0 || exit !== '{"exitCode":0}\n') {
    throw new Error(`installing the certificate into LocalMachine\\My failed: wrapper exit ${String(wrapper.code)}, ${exit}\n${stdout}\n${stderr}\n${wrapper.stderr}`);
  }
  return { certificate, stdout };
}
