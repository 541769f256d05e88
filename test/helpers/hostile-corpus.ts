// The hostile-input corpus of issue 5 (targets.md, reliability and security): settings that try to
// escape directories, fetch non-HTTP URLs, exhaust bounds, or confuse the decoder and the parser.
// Each entry says how it must end: a terminal status with an exit code and words of its message.
import type { AgentLayout, SettingsOptions } from './agent.js';
import { encryptForCertificate, makeCertificate } from './agent.js';

export interface Ending {
  readonly state: 'Succeeded' | 'Failed';
  readonly exitCode: number;
  // Lower-cased words the executionMessage (or, for Succeeded, the output) must contain.
  readonly words: readonly string[];
}

export interface HostileCase {
  readonly name: string;
  readonly what: string;
  readonly settings: (layout: AgentLayout) => Promise<SettingsOptions> | SettingsOptions;
  readonly ending: Ending;
}

const ok = { source: { script: 'echo ok' } };
const invalid = (...words: string[]): Ending => ({ state: 'Failed', exitCode: -202, words });
const lookup: Ending = { state: 'Failed', exitCode: -102, words: ['failed to lookup runas user'] };
const succeeded: Ending = { state: 'Succeeded', exitCode: 0, words: ['ok'] };
const artifact = (fileName: string) => ({ ...ok, artifacts: [{ id: 1, uri: 'https://a.example/tool.sh', fileName }] });
const file = (document: unknown) => ({ raw: JSON.stringify({ runtimeSettings: [{ handlerSettings: document }] }) });
const deep = (depth: number, open: string, close: string) => `${open.repeat(depth)}1${close.repeat(depth)}`;

async function encrypted(layout: AgentLayout, plaintext: string): Promise<SettingsOptions> {
  const certificate = layout.certificate ?? (await makeCertificate(layout));
  const protectedSettings = await encryptForCertificate(certificate, plaintext);
  return file({ publicSettings: ok, protectedSettings, protectedSettingsCertThumbprint: certificate.thumbprint });
}

// name → settings → ending; names are valid run command names, each used once.
export const hostileCorpus: readonly HostileCase[] = [
  {
    name: 'art-dotdot', what: 'artifact fileName ../../etc/cron.d/evil',
    settings: () => ({ publicSettings: artifact('../../etc/cron.d/evil') }),
    ending: invalid('artifacts[0].filename'),
  },
  {
    name: 'art-absolute', what: 'artifact fileName /etc/passwd',
    settings: () => ({ publicSettings: artifact('/etc/passwd') }),
    ending: invalid('artifacts[0].filename'),
  },
  {
    name: 'art-nul', what: 'artifact fileName with NUL',
    settings: () => ({ publicSettings: artifact('a\u0000b') }),
    ending: invalid('artifacts[0].filename'),
  },
  {
    name: 'art-newline', what: 'artifact fileName with a newline',
    settings: () => ({ publicSettings: artifact('a\nb') }),
    ending: invalid('artifacts[0].filename'),
  },
  {
    name: 'art-dots', what: 'artifact fileName ..',
    settings: () => ({ publicSettings: artifact('..') }),
    ending: invalid('artifacts[0].filename'),
  },
  {
    name: 'art-backslash', what: 'artifact fileName ..\\..\\x',
    settings: () => ({ publicSettings: artifact('..\\..\\x') }),
    ending: invalid('artifacts[0].filename'),
  },
  {
    name: 'uri-file', what: 'scriptUri file:///etc/passwd',
    settings: () => ({ publicSettings: { source: { scriptUri: 'file:///etc/passwd' } } }),
    ending: invalid('source.scripturi', 'http'),
  },
  {
    name: 'uri-ftp', what: 'scriptUri ftp://',
    settings: () => ({ publicSettings: { source: { scriptUri: 'ftp://a.example/s.sh' } } }),
    ending: invalid('source.scripturi'),
  },
  {
    name: 'uri-javascript', what: 'scriptUri javascript:',
    settings: () => ({ publicSettings: { source: { scriptUri: 'javascript:alert(1)' } } }),
    ending: invalid('source.scripturi'),
  },
  {
    name: 'uri-data', what: 'scriptUri data:',
    settings: () => ({ publicSettings: { source: { scriptUri: 'data:text/plain,id' } } }),
    ending: invalid('source.scripturi'),
  },
  {
    name: 'uri-relative', what: 'scriptUri without scheme',
    settings: () => ({ publicSettings: { source: { scriptUri: '//a.example/s.sh' } } }),
    ending: invalid('source.scripturi'),
  },
  {
    name: 'art-uri-file', what: 'artifact uri file:///etc/shadow',
    settings: () => ({ publicSettings: { ...ok, artifacts: [{ id: 1, uri: 'file:///etc/shadow' }] } }),
    ending: invalid('artifacts[0].uri'),
  },
  {
    name: 'blob-gopher', what: 'outputBlobUri gopher://',
    settings: () => ({ publicSettings: { ...ok, outputBlobUri: 'gopher://a.example/c/o' } }),
    ending: invalid('outputbloburi'),
  },
  {
    name: 'big-file', what: 'settings file of 4 MiB + 1 KiB',
    settings: () => ({ raw: `{"x":"${'a'.repeat(4 * 1024 * 1024 + 1024)}"}` }),
    ending: invalid('larger than 4194304 bytes'),
  },
  {
    name: 'big-script', what: 'inline script of 2 MiB + 1 byte',
    settings: () => ({ publicSettings: { source: { script: `#${'x'.repeat(2 * 1024 * 1024)}` } } }),
    ending: invalid('source.script', 'at most 2097152 bytes'),
  },
  {
    name: 'many-params', what: '257 parameters',
    settings: () => ({ publicSettings: { ...ok, parameters: Array.from({ length: 257 }, (_, i) => ({ value: `v${i}` })) } }),
    ending: invalid('parameters', 'at most 256'),
  },
  {
    name: 'huge-param-array', what: '1,000,000 empty parameter objects (3 MB)',
    settings: () => ({ raw: JSON.stringify({ runtimeSettings: [{ handlerSettings: { publicSettings: { ...ok } } }] }).replace('"source"', `"parameters":[${'{},'.repeat(1_000_000)}{}],"source"`) }),
    ending: invalid('parameters', 'at most 256'),
  },
  {
    name: 'big-param', what: 'parameter value of 32 KiB + 1 byte',
    settings: () => ({ publicSettings: { ...ok, parameters: [{ name: 'P', value: 'x'.repeat(32 * 1024 + 1) }] } }),
    ending: invalid('parameters[0].value', 'at most 32768 bytes'),
  },
  {
    name: 'param-nul', what: 'parameter value with NUL',
    settings: () => ({ publicSettings: { ...ok, parameters: [{ name: 'P', value: 'a\u0000b' }] } }),
    ending: invalid('parameters[0].value', 'nul'),
  },
  {
    // Compat (run-command.md §1, 12-01): any name without '=' or NUL is accepted and passed as an
    // environment variable only — never interpreted by a shell — so the script runs as written.
    name: 'param-injection', what: "parameter name 'A;rm -rf /'",
    settings: () => ({ publicSettings: { source: { script: 'printenv "A;rm -rf /"' }, parameters: [{ name: 'A;rm -rf /', value: 'ok-passed' }] } }),
    ending: { state: 'Succeeded', exitCode: 0, words: ['ok-passed'] },
  },
  {
    name: 'param-name-equals', what: "parameter name 'A=B'",
    settings: () => ({ publicSettings: { ...ok, parameters: [{ name: 'A=B', value: 'x' }] } }),
    ending: invalid('parameters[0].name', "must not contain '='"),
  },
  {
    name: 'param-name-nul', what: 'parameter name with NUL',
    settings: () => ({ publicSettings: { ...ok, parameters: [{ name: 'A\u0000B', value: 'x' }] } }),
    ending: invalid('parameters[0].name', 'nul'),
  },
  {
    name: 'runas-newline', what: 'runAsUser with a newline',
    settings: () => ({ publicSettings: { ...ok, runAsUser: 'bob\nroot' } }),
    ending: invalid('runasuser', 'control characters'),
  },
  {
    name: 'runas-option', what: "runAsUser '--help'",
    settings: () => ({ publicSettings: { ...ok, runAsUser: '--help' } }),
    ending: lookup,
  },
  {
    name: 'runas-path', what: "runAsUser '../../root'",
    settings: () => ({ publicSettings: { ...ok, runAsUser: '../../root' } }),
    ending: lookup,
  },
  {
    name: 'non-utf8', what: 'bytes that are not UTF-8',
    settings: () => ({ raw: Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]) }),
    ending: invalid('utf-8'),
  },
  {
    name: 'utf16-bom', what: 'UTF-16LE with BOM',
    settings: () => ({ raw: Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(JSON.stringify({ runtimeSettings: [{ handlerSettings: { publicSettings: ok } }] }), 'utf16le')]) }),
    ending: invalid('utf-8'),
  },
  {
    name: 'utf8-bom', what: 'UTF-8 with BOM (valid)',
    settings: () => ({ raw: `\uFEFF${JSON.stringify({ runtimeSettings: [{ handlerSettings: { publicSettings: ok } }] })}` }),
    ending: succeeded,
  },
  {
    name: 'deep-public', what: '20,000 nested arrays in publicSettings',
    settings: () => ({ raw: `{"runtimeSettings":[{"handlerSettings":{"publicSettings":${deep(20_000, '[', ']')}}}]}` }),
    ending: invalid('deeper than'),
  },
  {
    name: 'deep-string', what: 'publicSettings as a JSON string of 5,000 nested objects',
    settings: () => file({ publicSettings: deep(5000, '{"a":', '}') }),
    ending: invalid('deeper than'),
  },
  {
    name: 'deep-protected', what: 'decrypted protected settings nested 5,000 deep',
    settings: (layout) => encrypted(layout, deep(5000, '{"a":', '}')),
    ending: invalid('protectedsettings', 'deeper than'),
  },
  {
    name: 'prot-not-json', what: 'protected settings that decrypt to non-JSON',
    settings: (layout) => encrypted(layout, 'runAsPassword=hunter2'),
    ending: invalid('protectedsettings', 'not json'),
  },
  {
    name: 'many-keys', what: '150,000 unknown keys (3.4 MB), valid otherwise',
    settings: () => ({ raw: JSON.stringify({ runtimeSettings: [{ handlerSettings: { publicSettings: { ...ok, ...Object.fromEntries(Array.from({ length: 150_000 }, (_, i) => [`k${i}`, i])) } } }] }) }),
    ending: succeeded,
  },
  {
    name: 'proto-keys', what: '__proto__ and constructor keys carrying a source',
    settings: () => ({ raw: '{"runtimeSettings":[{"handlerSettings":{"publicSettings":{"__proto__":{"source":{"script":"echo polluted"}},"constructor":{"prototype":{"source":1}}}}}]}' }),
    ending: invalid('exactly one of source.script'),
  },
  {
    name: 'case-duplicate', what: 'keys "source" and "SOURCE"',
    settings: () => ({ raw: '{"runtimeSettings":[{"handlerSettings":{"publicSettings":{"source":{"script":"echo a"},"SOURCE":{"script":"echo b"}}}}]}' }),
    ending: invalid('duplicate key'),
  },
  {
    name: 'timeout-infinity', what: 'timeoutInSeconds 1e400',
    settings: () => ({ raw: '{"runtimeSettings":[{"handlerSettings":{"publicSettings":{"source":{"script":"echo ok"},"timeoutInSeconds":1e400}}}]}' }),
    ending: invalid('timeoutinseconds'),
  },
  {
    name: 'two-entries', what: 'two runtimeSettings entries',
    settings: () => ({ raw: JSON.stringify({ runtimeSettings: [{ handlerSettings: { publicSettings: ok } }, { handlerSettings: { publicSettings: ok } }] }) }),
    ending: invalid('exactly one entry'),
  },
  {
    name: 'public-array', what: 'publicSettings is an array',
    settings: () => file({ publicSettings: [ok] }),
    ending: invalid('publicsettings', 'must be an object'),
  },
  {
    name: 'blank-file', what: '1 MiB of whitespace',
    settings: () => ({ raw: ' '.repeat(1024 * 1024) }),
    ending: invalid('no settings'),
  },
  {
    name: 'lone-surrogate', what: 'script with a lone UTF-16 surrogate escape',
    settings: () => ({ raw: '{"runtimeSettings":[{"handlerSettings":{"publicSettings":{"source":{"script":"echo ok #\\ud800"}}}}]}' }),
    ending: succeeded,
  },
];
