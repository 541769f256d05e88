// Checks the guest-agent simulator itself against a tiny fake handler package, so that the e2e
// suite's failures can be trusted to be the handler's.
import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { waitUntil } from '../helpers/scan.js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  cleanupLayout,
  updateHandler,
  decryptWithCertificate,
  makeAgentLayout,
  readStatus,
  removeRunCommand,
  runCommand,
  validateStatus,
  waitForStatus,
  writeSettings,
  type AgentLayout,
} from '../helpers/agent.js';

const VIEW = '{"executionState":"Running","executionMessage":"Execution in progress","output":"","error":"","exitCode":0,"startTime":"2026-11-26T10:00:00Z","endTime":""}';
const toStatusJson = (name: string, value = 'transitioning', view = VIEW): string =>
  JSON.stringify([{ version: 1, timestampUTC: '2026-11-26T10:00:00Z', status: { name, operation: 'Enable', status: value, formattedMessage: { lang: 'en', message: view } } }]);

// enable: writes a status file and starts a background sleep that holds none of its fds;
// disable: leaves a careless background sleep holding the capture files; install: hangs when
// HANG is set.
const FAKE_HANDLER = `#!/bin/sh
base=$(cd "$(dirname "$0")/.." && pwd)
cmd=$1
env > "$base/record.$cmd.env"
pwd > "$base/record.$cmd.cwd"
cat /proc/$$/stat > "$base/record.$cmd.stat"
case "$cmd" in
  enable)
    status="$base/status/$ConfigExtensionName.$ConfigSequenceNumber.status"
    cat "$base/status.template" | sed "s/@NAME@/$ConfigExtensionName/" > "$status.tmp" && mv "$status.tmp" "$status"
    sleep 30 </dev/null >/dev/null 2>&1 &
    echo $! > "$base/daemon.pid"
    echo enabled
    echo "a warning" >&2 ;;
  disable)
    sleep 30 &
    echo $! > "$base/careless.pid" ;;
  install)
    [ -z "$HANG" ] && exit 0
    sleep 1000 &
    echo $! > "$base/child.pid"
    sleep 1000 ;;
esac
exit 0
`;

const MANIFEST = [
  {
    version: 1.0,
    handlerManifest: {
      installCommand: 'bin/fake install',
      uninstallCommand: 'bin/fake uninstall',
      updateCommand: 'bin/fake update',
      enableCommand: 'bin/fake enable',
      // Some handlers start it with a slash; the agent strips it (WALinuxAgent issue #1170).
      disableCommand: '/bin/fake disable',
      rebootAfterInstall: false,
      reportHeartbeat: false,
      updateMode: 'UpdateWithInstall',
      supportsMultipleExtensions: true,
    },
  },
];

let workDir: string;
let fakeZip: string;
let layout: AgentLayout | undefined;

async function makeLayout(): Promise<AgentLayout> {
  layout = await makeAgentLayout({ zip: fakeZip, version: '9.9.9' });
  return layout;
}

async function readRecord(at: AgentLayout, file: string): Promise<string> {
  return readFile(path.join(at.baseDir, file), 'utf8');
}

function parseEnv(text: string): Record<string, string> {
  return Object.fromEntries(text.split('\n').filter((line) => line.includes('=')).map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]));
}

// Fields after the command name in /proc/<pid>/stat: state, ppid, pgrp, session.
function parseStat(text: string): { pgrp: number; session: number } {
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { pgrp: Number(fields[2]), session: Number(fields[3]) };
}

async function isGone(pid: number): Promise<boolean> {
  const text = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  return text === undefined || text.slice(text.lastIndexOf(')') + 2).startsWith('Z');
}

beforeAll(async () => {
  workDir = await mkdtemp(path.join(os.tmpdir(), 'rch-fake-package-'));
  const packageDir = path.join(workDir, 'package');
  await mkdir(path.join(packageDir, 'bin'), { recursive: true });
  await writeFile(path.join(packageDir, 'HandlerManifest.json'), JSON.stringify(MANIFEST));
  await writeFile(path.join(packageDir, 'status.template'), toStatusJson('@NAME@'));
  await writeFile(path.join(packageDir, 'bin', 'fake'), FAKE_HANDLER);
  // Not executable in the zip: the simulator must add the user-execute bit like the agent.
  await chmod(path.join(packageDir, 'bin', 'fake'), 0o644);
  fakeZip = path.join(workDir, 'fake-9.9.9.zip');
  await execa('zip', ['-r', '-X', '-q', fakeZip, '.'], { cwd: packageDir });
});

afterEach(async () => {
  if (layout) await cleanupLayout(layout);
  layout = undefined;
});

afterAll(async () => {
  await rm(workDir, { recursive: true, force: true });
});

describe('agent simulator', () => {
  it('lays the package out like /var/lib/waagent with HandlerEnvironment.json and user-executable files', async () => {
    const at = await makeLayout();
    expect(at.baseDir).toBe(path.join(at.libDir, 'Microsoft.CPlat.Core.RunCommandHandlerLinux-9.9.9'));
    const text = await readFile(path.join(at.baseDir, 'HandlerEnvironment.json'), 'utf8');
    expect(text).toContain('"version": 1.0,');
    const [environment] = JSON.parse(text) as Array<{ name: string; handlerEnvironment: Record<string, string> }>;
    expect(environment?.name).toBe('Microsoft.CPlat.Core.RunCommandHandlerLinux');
    expect(environment?.handlerEnvironment).toEqual({
      logFolder: at.logFolder,
      configFolder: at.configFolder,
      statusFolder: at.statusFolder,
      heartbeatFile: path.join(at.baseDir, 'heartbeat.log'),
      eventsFolder: at.eventsFolder,
      eventsFolder_preview: at.eventsFolder,
    });
    expect(at.logFolder).toBe(path.join(at.root, 'log', 'azure', 'Microsoft.CPlat.Core.RunCommandHandlerLinux'));
    expect((await stat(path.join(at.baseDir, 'bin', 'fake'))).mode & 0o777).toBe(0o744);
    for (const dir of [at.configFolder, at.statusFolder, at.eventsFolder]) expect((await stat(dir)).isDirectory()).toBe(true);
  });

  it('runs enable in a new session, in the base dir, with the agent environment, and captures its output', async () => {
    const at = await makeLayout();
    const result = await runCommand(at, 'enable', { name: 'first', seq: 3, extra: { EXTRA_VAR: 'x' } });
    expect(result).toMatchObject({ exitCode: 0, timedOut: false, stdout: 'enabled\n', stderr: 'a warning\n', captureHeldOpen: false });
    expect((await readRecord(at, 'record.enable.cwd')).trim()).toBe(at.baseDir);
    const env = parseEnv(await readRecord(at, 'record.enable.env'));
    expect(env).toMatchObject({
      ConfigSequenceNumber: '3',
      ConfigExtensionName: 'first',
      AZURE_GUEST_AGENT_EXTENSION_PATH: at.baseDir,
      AZURE_GUEST_AGENT_EXTENSION_VERSION: '9.9.9',
      AZURE_GUEST_AGENT_WIRE_PROTOCOL_ADDRESS: '168.63.129.16',
      AZURE_GUEST_AGENT_EXTENSION_SUPPORTED_FEATURES: '[{"Key": "ExtensionTelemetryPipeline", "Value": "1.0"}]',
      AZURE_GUEST_AGENT_UNINSTALL_CMD_EXIT_CODE: 'NOT_RUN',
      EXTRA_VAR: 'x',
    });
    expect(env.VITEST).toBeUndefined();
    const own = parseStat(await readFile('/proc/self/stat', 'utf8'));
    const handler = parseStat(await readRecord(at, 'record.enable.stat'));
    expect(handler.session).not.toBe(own.session);
    expect(handler.pgrp).toBe(handler.session);
    const report = await readStatus(at, 'first', 3);
    expect(report?.instanceView.executionState).toBe('Running');
  });

  it('strips a leading slash, omits the uninstall exit code for disable and notices a process holding the capture files', async () => {
    const at = await makeLayout();
    const result = await runCommand(at, 'disable', { name: 'first', seq: 1 });
    expect(result.exitCode).toBe(0);
    expect(result.captureHeldOpen).toBe(true);
    expect(parseEnv(await readRecord(at, 'record.disable.env')).AZURE_GUEST_AGENT_UNINSTALL_CMD_EXIT_CODE).toBeUndefined();
    const careless = Number(await readRecord(at, 'careless.pid'));
    await cleanupLayout(at);
    layout = undefined;
    expect(await isGone(careless)).toBe(true);
  });

  it('SIGKILLs the whole process group when the time limit elapses', async () => {
    const at = await makeLayout();
    const result = await runCommand(at, 'install', { extra: { HANG: '1' } }, { timeLimitMs: 500 });
    expect(result).toMatchObject({ timedOut: true, exitCode: -9, signal: 'SIGKILL' });
    expect(result.durationMs).toBeLessThan(10_000);
    const child = Number(await readRecord(at, 'child.pid'));
    await waitUntil(() => isGone(child), 10_000, 'the grandchild to be killed with its group');
  });

  it('writes settings as one line of ASCII JSON with protected settings encrypted to the lib dir certificate', async () => {
    const at = await makeLayout();
    const file = await writeSettings(at, 'first', 0, { publicSettings: { script: 'echo é ✓' }, protectedSettings: { secret: 'ünïcode' } });
    const text = await readFile(file, 'utf8');
    expect(text).toMatch(/^[\x20-\x7e]+$/);
    expect(text).toContain('\\u00e9');
    const parsed = JSON.parse(text) as { runtimeSettings: Array<{ handlerSettings: Record<string, string> }> };
    const settings = parsed.runtimeSettings[0]?.handlerSettings ?? {};
    expect(Object.keys(settings)).toEqual(['publicSettings', 'protectedSettings', 'protectedSettingsCertThumbprint']);
    expect(settings.publicSettings).toEqual({ script: 'echo é ✓' });
    const certificate = at.certificate!;
    expect(settings.protectedSettingsCertThumbprint).toBe(certificate.thumbprint);
    expect(certificate.crtPath).toBe(path.join(at.libDir, `${certificate.thumbprint}.crt`));
    expect(JSON.parse(await decryptWithCertificate(certificate, settings.protectedSettings ?? ''))).toEqual({ secret: 'ünïcode' });
    const plain = await readFile(await writeSettings(at, 'second', 1, { publicSettings: { a: 1 }, publicAsString: true }), 'utf8');
    expect(plain).toBe('{"runtimeSettings": [{"handlerSettings": {"publicSettings": "{\\"a\\":1}", "protectedSettings": null, "protectedSettingsCertThumbprint": null}}]}');
  });

  it('removes a run command like the agent: settings rewritten, disable with its name, then its files deleted', async () => {
    const at = await makeLayout();
    await writeSettings(at, 'first', 2, { publicSettings: {} });
    await writeSettings(at, 'other', 1, { publicSettings: {} });
    await runCommand(at, 'enable', { name: 'first', seq: 2 });
    await writeFile(path.join(at.configFolder, 'first.HandlerState'), 'Enabled');
    const result = await removeRunCommand(at, 'first');
    expect(result?.exitCode).toBe(0);
    expect(parseEnv(await readRecord(at, 'record.disable.env'))).toMatchObject({ ConfigExtensionName: 'first', ConfigSequenceNumber: '2' });
    expect(await readStatus(at, 'first', 2)).toBeUndefined();
    for (const gone of ['first.2.settings', 'first.HandlerState']) await expect(stat(path.join(at.configFolder, gone))).rejects.toThrow();
    expect((await stat(path.join(at.configFolder, 'other.1.settings'))).isFile()).toBe(true);
  });

  it('updates like the agent: old disable, new update, old uninstall, old dir gone, new install and enable', async () => {
    const from = await makeLayout();
    await writeSettings(from, 'first', 1, { publicSettings: {} });
    await runCommand(from, 'enable', { name: 'first', seq: 1 });
    const { layout: to, steps } = await updateHandler(from, { zip: fakeZip, version: '9.9.10' });
    expect(steps.map(({ step, result }) => `${step}:${result.exitCode}`)).toEqual([
      'old disable first:0', 'new update:0', 'old uninstall:0', 'new install:0', 'new enable first:0',
    ]);
    expect(parseEnv(await readRecord(to, 'record.update.env'))).toMatchObject({
      VERSION: '9.9.10',
      AZURE_GUEST_AGENT_UPDATING_FROM_VERSION: '9.9.9',
      AZURE_GUEST_AGENT_DISABLE_CMD_EXIT_CODES_MULTIPLE_EXTENSIONS: '[{"extensionName": "first", "exitCode": "0"}]',
    });
    expect(parseEnv(await readRecord(to, 'record.install.env')).AZURE_GUEST_AGENT_UNINSTALL_CMD_EXIT_CODE).toBe('0');
    await expect(stat(from.baseDir)).rejects.toThrow();
    expect((await stat(path.join(to.configFolder, 'first.1.settings'))).isFile()).toBe(true);
  });
});

describe('status validation', () => {
  it('accepts the shape Microsoft writes', () => {
    expect(validateStatus(Buffer.from(toStatusJson('first')), 'first').instanceView.executionState).toBe('Running');
  });

  it('rejects a BOM, a status value outside the agent set and instance view keys out of order', () => {
    const bom = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(toStatusJson('first'))]);
    expect(() => validateStatus(bom, 'first')).toThrow(/BOM/);
    expect(() => validateStatus(Buffer.from(toStatusJson('first', 'Success')), 'first')).toThrow(/status\.status must be one of/);
    const reordered = '{"executionMessage":"","executionState":"Running","output":"","error":"","exitCode":0,"startTime":"","endTime":""}';
    expect(() => validateStatus(Buffer.from(toStatusJson('first', 'success', reordered)), 'first')).toThrow(/keys must be exactly/);
    expect(() => validateStatus(Buffer.from(toStatusJson('other')), 'first')).toThrow(/status\.name/);
    expect(() => validateStatus(Buffer.from('{}'), 'first')).toThrow(/array/);
  });

  it('times out waiting for a status with the last one seen', async () => {
    const at = await makeLayout();
    await runCommand(at, 'enable', { name: 'first', seq: 0 });
    await expect(waitForStatus(at, 'first', 0, (report) => report.topStatus.status.status === 'success', 300)).rejects.toThrow(
      /last seen: .*transitioning/,
    );
  });
});
