# Built-in command SetRDPPort (run-command.md section 3): sets the Remote Desktop port (3389 unless the
# RDPPort parameter says otherwise), allows it through the firewall and restarts the service.
param([int] $RDPPort = 3389)
$ErrorActionPreference = 'Stop'
if ($RDPPort -lt 1 -or $RDPPort -gt 65535) { throw "RDPPort must be from 1 to 65535, got $RDPPort." }
$listener = 'HKLM:\SYSTEM\CurrentControlSet\Control\Terminal Server\WinStations\RDP-Tcp'
Set-ItemProperty -Path $listener -Name 'PortNumber' -Value $RDPPort -Type DWord
$ruleName = 'RunCommand-RDP-Port-In'
Remove-NetFirewallRule -Name $ruleName -ErrorAction SilentlyContinue
New-NetFirewallRule -Name $ruleName -DisplayName "Remote Desktop (TCP-In $RDPPort)" -Direction Inbound -Action Allow -Protocol TCP -LocalPort $RDPPort -Profile Any | Out-Null
Restart-Service -Name 'TermService' -Force
Write-Output "Remote Desktop listens on port $RDPPort."
