# Built-in command ResetRDPCert (run-command.md section 3): removes the TLS certificate bound to the RDP
# listener and restores the listener's security settings to their defaults; the Remote Desktop
# service is restarted and makes itself a new self-signed certificate.
$ErrorActionPreference = 'Stop'
$listener = 'HKLM:\SYSTEM\CurrentControlSet\Control\Terminal Server\WinStations\RDP-Tcp'
Remove-ItemProperty -Path $listener -Name 'SSLCertificateSHA1Hash' -ErrorAction SilentlyContinue
Set-ItemProperty -Path $listener -Name 'SecurityLayer' -Value 2 -Type DWord
Set-ItemProperty -Path $listener -Name 'MinEncryptionLevel' -Value 2 -Type DWord
$store = 'Cert:\LocalMachine\Remote Desktop'
if (Test-Path -Path $store) { Get-ChildItem -Path $store | Remove-Item -Force }
Restart-Service -Name 'TermService' -Force
Write-Output 'The RDP listener certificate was reset; Remote Desktop uses a new self-signed certificate.'
