# Built-in command EnableWindowsUpdate (run-command.md section 3): turns Windows Update automatic
# updates back on (NoAutoUpdate = 0) and makes sure the Windows Update service can start.
$ErrorActionPreference = 'Stop'
$policy = 'HKLM:\SOFTWARE\Policies\Microsoft\Windows\WindowsUpdate\AU'
if (-not (Test-Path -Path $policy)) { New-Item -Path $policy -Force | Out-Null }
Set-ItemProperty -Path $policy -Name 'NoAutoUpdate' -Value 0 -Type DWord
$service = Get-Service -Name 'wuauserv'
if ($service.StartType -eq 'Disabled') { Set-Service -Name 'wuauserv' -StartupType Manual }
Write-Output 'Windows Update automatic updates are enabled.'
