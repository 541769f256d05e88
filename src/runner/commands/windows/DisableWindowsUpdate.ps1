# Built-in command DisableWindowsUpdate (run-command.md section 3): turns Windows Update automatic
# updates off through the AU policy (NoAutoUpdate = 1).
$ErrorActionPreference = 'Stop'
$policy = 'HKLM:\SOFTWARE\Policies\Microsoft\Windows\WindowsUpdate\AU'
if (-not (Test-Path -Path $policy)) { New-Item -Path $policy -Force | Out-Null }
Set-ItemProperty -Path $policy -Name 'NoAutoUpdate' -Value 1 -Type DWord
Write-Output 'Windows Update automatic updates are disabled.'
