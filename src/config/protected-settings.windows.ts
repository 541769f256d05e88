// Decryption of protectedSettings on Windows (protocol.md §1, §6): the certificate is in the
// LocalMachine\My store, found by thumbprint, and PowerShell's EnvelopedCms decrypts the CMS
// EnvelopedData. The script is passed -EncodedCommand (it holds no secret); the ciphertext goes in
// on stdin and the plaintext comes out on stdout — neither is ever on a command line or in a message.
import { execa } from 'execa';
import { SettingsError } from '../errors.js';
import { toWindowsPowerShellPath } from '../util/windows-powershell.js';

// Where the certificate comes from: the machine store, or a PFX file (tests, under pwsh).
export type CertificateSource = { readonly kind: 'store' } | { readonly kind: 'pfx'; readonly path: string };

export interface WindowsDecryptOptions {
  // powershell.exe, or pwsh.
  readonly powershell?: string;
  readonly certificate?: CertificateSource;
  readonly timeoutMs?: number;
}

const thumbprintField = 'protectedSettingsCertThumbprint';
// How long after the timeout the decryption still waits for PowerShell's output pipes to close.
const abandonGraceMs = 5000;
const protectedField = 'protectedSettings';

function quotePowerShell(text: string): string {
  return `'${text.replace(/'/g, "''")}'`;
}

function toCertificateLookup(thumbprint: string, source: CertificateSource): string {
  if (source.kind === 'pfx') {
    return `$certificates = New-Object System.Security.Cryptography.X509Certificates.X509Certificate2Collection
$certificates.Import(${quotePowerShell(source.path)}, '', 'Exportable')
$certificates = $certificates.Find('FindByThumbprint', '${thumbprint}', $false)`;
  }
  return `$store = New-Object System.Security.Cryptography.X509Certificates.X509Store('My', 'LocalMachine')
$store.Open('ReadOnly, OpenExistingOnly')
$certificates = $store.Certificates.Find('FindByThumbprint', '${thumbprint}', $false)`;
}

// The PowerShell that decrypts stdin's base64 EnvelopedData with certificate `thumbprint`
// (already checked to be 40 hex digits) and writes the plaintext bytes to stdout. A failure is one
// plain stderr line naming the step and the innermost exception's message (a crypto error, never
// the data): an exception left to PowerShell would reach stderr as CLIXML (`#< CLIXML` first), as
// PowerShell serialises errors under -EncodedCommand when stderr is redirected.
export function toDecryptScript(thumbprint: string, source: CertificateSource = { kind: 'store' }): string {
  return `$ErrorActionPreference = 'Stop'
$step = 'loading System.Security'
trap { [Console]::Error.WriteLine("$step failed: $($_.Exception.GetBaseException().Message)"); exit 4 }
if ($PSVersionTable.PSEdition -ne 'Core') { Add-Type -AssemblyName System.Security }
$step = 'finding the certificate'
${toCertificateLookup(thumbprint, source)}
if ($certificates.Count -eq 0) { [Console]::Error.WriteLine('certificate not found in LocalMachine\\My'); exit 3 }
$step = 'decoding the CMS envelope (EnvelopedCms.Decode)'
$cms = New-Object System.Security.Cryptography.Pkcs.EnvelopedCms
$cms.Decode([System.Convert]::FromBase64String([Console]::In.ReadToEnd().Trim()))
$step = 'decrypting with the private key of the certificate (EnvelopedCms.Decrypt)'
$cms.Decrypt($certificates)
$step = 'writing the plaintext'
$content = $cms.ContentInfo.Content
$stdout = [Console]::OpenStandardOutput()
$stdout.Write($content, 0, $content.Length)
$stdout.Flush()
`;
}

// The argument vector that runs `script`: -EncodedCommand is base64 of its UTF-16LE text.
export function toEncodedCommandArgs(script: string): string[] {
  return ['-NoProfile', '-NonInteractive', '-ExecutionPolicy', 'Bypass', '-EncodedCommand', Buffer.from(script, 'utf16le').toString('base64')];
}

function normalizeThumbprint(thumbprint: string | undefined): string {
  const trimmed = thumbprint?.trim() ?? '';
  if (trimmed === '') throw new SettingsError(thumbprintField, 'is required when protectedSettings is present');
  if (!/^[0-9A-Fa-f]{40}$/.test(trimmed)) throw new SettingsError(thumbprintField, 'must be 40 hexadecimal characters (SHA-1)');
  return trimmed.toUpperCase();
}

// First printable line of PowerShell's stderr, short (it never holds the input or the output).
function toCause(stderr: Uint8Array, fallback: string): string {
  const line = Buffer.from(stderr).toString('utf8').split(/\r?\n/).find((text) => text.trim() !== '') ?? fallback;
  const printable = line.trim().replace(/[^\x20-\x7e]/g, '?');
  return printable.length > 200 ? `${printable.slice(0, 200)}…` : printable;
}

// Decrypts base64 protected settings with the certificate `thumbprint` and parses the JSON.
// Same contract as the Linux decryptProtectedSettings; `certDir` is unused (the store holds it).
export async function decryptProtectedSettings(base64: string, thumbprint: string | undefined, _certDir: string, options: WindowsDecryptOptions = {}): Promise<unknown> {
  const tp = normalizeThumbprint(thumbprint);
  const compact = base64.replace(/\s+/g, '');
  if (compact === '' || !/^[A-Za-z0-9+/]+={0,2}$/.test(compact)) throw new SettingsError(protectedField, 'is not valid base64');
  const timeoutMs = options.timeoutMs ?? 60_000;
  const subprocess = execa(options.powershell ?? toWindowsPowerShellPath(process.env), toEncodedCommandArgs(toDecryptScript(tp, options.certificate)), {
    input: compact,
    encoding: 'buffer',
    reject: false,
    stripFinalNewline: false,
    timeout: timeoutMs,
    // Plain-text errors: pwsh colours them even when stderr is not a terminal.
    env: { NO_COLOR: '1' },
  });
  // execa's result waits for stdout and stderr to close, not only for PowerShell to exit: a process
  // that inherited them (seen: Wine's explorer, started for the first process needing a desktop)
  // would hold the run Pending for ever. Past the timeout and a grace, the pipes are given up.
  let abandon: NodeJS.Timeout | undefined;
  const abandoned = new Promise<'abandoned'>((resolve) => {
    abandon = setTimeout(() => resolve('abandoned'), timeoutMs + abandonGraceMs);
  });
  const result = await Promise.race([subprocess, abandoned]).finally(() => clearTimeout(abandon));
  if (result === 'abandoned') {
    subprocess.kill('SIGKILL');
    for (const stream of [subprocess.stdin, subprocess.stdout, subprocess.stderr]) stream?.destroy();
    void subprocess.catch(() => undefined);
    throw new SettingsError(protectedField, `could not be decrypted with certificate ${tp}: PowerShell timed out (its output was still held open ${abandonGraceMs / 1000} s after)`);
  }
  if (result.failed) {
    const fallback = result.timedOut ? 'PowerShell timed out' : `PowerShell exit code ${String(result.exitCode)}`;
    throw new SettingsError(protectedField, `could not be decrypted with certificate ${tp}: ${toCause(result.stderr, fallback)}`);
  }
  try {
    return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(result.stdout));
  } catch {
    throw new SettingsError(protectedField, 'decrypted protected settings are not JSON');
  }
}
