// The PowerShell bootstrap: `-File rch-invoke.ps1 <script> <public args…>` runs <script> with the
// public arguments, then the protected parameters read from RCH_PS_PROTECTED (removed before the
// script starts), so a protected value is never on a command line (run-command.md §4). It also
// makes the output UTF-8 (Windows PowerShell writes the console code page otherwise) and exits with
// the script's exit code. Its variables are private: the script cannot see them.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';

// Its name in the script's directory (rch-* names are the handler's: downloads never take them).
export const bootstrapFileName = 'rch-invoke.ps1';

// The bootstrap's text (PowerShell 5.1 and 7).
export const bootstrapScript = `# Written by runcommand-handler: runs a run command's script with its parameters.
[Console]::OutputEncoding = New-Object System.Text.UTF8Encoding $false
$private:rchScript = $args[0]
$private:rchArguments = @($args | Select-Object -Skip 1)
$private:rchProtected = & {
  $named = @{}
  $positional = @()
  if ($env:RCH_PS_PROTECTED) {
    foreach ($entry in $env:RCH_PS_PROTECTED.Split(';')) {
      $at = $entry.IndexOf(':')
      $value = [System.Text.Encoding]::UTF8.GetString([System.Convert]::FromBase64String($entry.Substring($at + 1)))
      if ($at -eq 0) { $positional += $value } else { $named[[System.Text.Encoding]::UTF8.GetString([System.Convert]::FromBase64String($entry.Substring(0, $at)))] = $value }
    }
    Remove-Item -Path Env:RCH_PS_PROTECTED
  }
  @{ Named = $named; Positional = $positional }
}
$private:rchNamed = $rchProtected.Named
$private:rchPositional = @($rchProtected.Positional)
$global:LASTEXITCODE = 0
& $rchScript @rchArguments @rchPositional @rchNamed
exit $LASTEXITCODE
`;

// Writes the bootstrap into `dir` (UTF-8 with a BOM, which every PowerShell reads); returns its path.
export async function writeBootstrap(dir: string): Promise<string> {
  const path = join(dir, bootstrapFileName);
  await writeFile(path, `\uFEFF${bootstrapScript}`, { mode: 0o600 });
  return path;
}
