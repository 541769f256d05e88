# Built-in command EnableAdminAccount (run-command.md section 3): enables the built-in local
# Administrator account if it is disabled. It is found by its well-known RID 500, since it may
# have been renamed.
$ErrorActionPreference = 'Stop'
$account = Get-CimInstance -ClassName Win32_UserAccount -Filter "LocalAccount = TRUE AND SID LIKE 'S-1-5-21-%-500'"
if ($null -eq $account) { throw 'The built-in Administrator account was not found.' }
if (-not $account.Disabled) {
  Write-Output "The account '$($account.Name)' is already enabled."
  exit 0
}
& net.exe user $account.Name /active:yes | Out-Null
if ($LASTEXITCODE -ne 0) { throw "net user $($account.Name) /active:yes failed with exit code $LASTEXITCODE" }
Write-Output "The account '$($account.Name)' was disabled and is now enabled."
