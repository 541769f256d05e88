// Windows PowerShell 5.1, always present on Windows, under the Windows folder (%SystemRoot%, which
// need not be C:\Windows): the script runner's default, the RunAs launcher's host and the
// protected-settings decryption's host.
export function toWindowsPowerShellPath(env: Readonly<Record<string, string | undefined>>): string {
  return `${env['SystemRoot'] ?? 'C:\\Windows'}\\System32\\WindowsPowerShell\\v1.0\\powershell.exe`;
}
