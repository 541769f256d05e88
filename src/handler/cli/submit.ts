// `submit`: writes a settings file for NAME with the next sequence number, as the agent would
// (one line of ASCII JSON, protected values encrypted to the local certificate), then nudges the daemon.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseSettingsFileName, toSettingsFileName } from '../../config/settings-file.js';
import { isValidName } from '../../config/run-command.js';
import { writeFileAtomic } from '../../util/atomic-file.js';
import type { HandlerContext } from '../infra/context.js';
import { encryptToCertificate, findLocalCertificate } from './local-layout.js';

type Flags = ReadonlyMap<string, readonly string[]>;

function toParameters(values: readonly string[] | undefined): { name?: string; value: string }[] {
  return (values ?? []).map((entry) => {
    const match = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/s.exec(entry);
    return match ? { name: match[1] ?? '', value: match[2] ?? '' } : { value: entry };
  });
}

async function nextSequenceNumber(configFolder: string, name: string): Promise<number> {
  const seqs = (await readdir(configFolder).catch(() => [] as string[]))
    .map(parseSettingsFileName)
    .flatMap((parsed) => (parsed.kind === 'settings' && parsed.name === name ? [parsed.seq] : []));
  return seqs.length === 0 ? 0 : Math.max(...seqs) + 1;
}

async function toPublicSettings(flags: Flags): Promise<Record<string, unknown>> {
  const last = (key: string): string | undefined => flags.get(key)?.at(-1);
  const scriptFile = last('script-file');
  const script = scriptFile === undefined ? last('script') : await readFile(scriptFile, 'utf8');
  const source = { script, scriptUri: last('script-uri'), commandId: last('command-id') };
  const timeout = last('timeout');
  return {
    source,
    parameters: toParameters(flags.get('param')),
    ...(timeout === undefined ? {} : { timeoutInSeconds: Number(timeout) }),
    ...(flags.has('async') ? { asyncExecution: true } : {}),
    ...(flags.has('treat-failure-as-deployment-failure') ? { treatFailureAsDeploymentFailure: true } : {}),
    ...(last('run-as-user') === undefined ? {} : { runAsUser: last('run-as-user') }),
    ...(last('output-blob-uri') === undefined ? {} : { outputBlobUri: last('output-blob-uri') }),
    ...(last('error-blob-uri') === undefined ? {} : { errorBlobUri: last('error-blob-uri') }),
    ...(flags.has('depends-on') ? { dependsOn: flags.get('depends-on') } : {}),
    ...(flags.has('artifact') ? { artifacts: flags.get('artifact')?.map((uri, index) => ({ id: String(index + 1), uri })) } : {}),
  };
}

function toProtectedSettings(flags: Flags): Record<string, unknown> | undefined {
  const settings: Record<string, unknown> = {};
  if (flags.has('protected-param')) settings['protectedParameters'] = toParameters(flags.get('protected-param'));
  const password = flags.get('run-as-password')?.at(-1);
  if (password !== undefined) settings['runAsPassword'] = password;
  const sasToken = flags.get('source-sas-token')?.at(-1);
  if (sasToken !== undefined) settings['sourceSASToken'] = sasToken;
  return Object.keys(settings).length > 0 ? settings : undefined;
}

// One line of ASCII JSON, non-ASCII escaped as \uXXXX, as the agent writes settings (protocol.md §5).
export function toAgentJson(value: unknown): string {
  return JSON.stringify(value).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

// Submits a run command; returns the process exit code.
export async function runSubmit(context: HandlerContext, name: string | undefined, flags: Flags): Promise<number> {
  if (name === undefined || !isValidName(name)) throw new Error('submit needs a NAME matching [A-Za-z0-9][A-Za-z0-9._-]* (at most 128 characters)');
  const { configFolder } = context.paths;
  const seq = await nextSequenceNumber(configFolder, name);
  const protectedSettings = toProtectedSettings(flags);
  const certificate = protectedSettings ? await findLocalCertificate(context.paths.certDir) : undefined;
  if (protectedSettings && certificate === undefined) throw new Error(`no certificate in ${context.paths.certDir} to encrypt protected settings`);
  const handlerSettings = {
    publicSettings: await toPublicSettings(flags),
    protectedSettings: protectedSettings && certificate ? await encryptToCertificate(JSON.stringify(protectedSettings), certificate.crtPath) : null,
    protectedSettingsCertThumbprint: certificate?.thumbprint ?? null,
  };
  await writeFileAtomic(join(configFolder, toSettingsFileName(name, seq)), toAgentJson({ runtimeSettings: [{ handlerSettings }] }), { mode: 0o600 });
  const reply = await context.daemon.enable(name, seq);
  process.stdout.write(`submitted ${name} (sequence number ${seq})${reply ? '' : ' — no daemon is running: start one with `npm start`'}\n`);
  return 0;
}
