# Built-in command EnableRemotePS (run-command.md section 3): configures the machine for remote
# PowerShell: WinRM enabled, an HTTPS listener on port 5986 with a self-signed certificate for
# this computer's name, and an inbound firewall rule for that port.
$ErrorActionPreference = 'Stop'
Enable-PSRemoting -Force -SkipNetworkProfileCheck
$hostName = $env:COMPUTERNAME
$certificate = New-SelfSignedCertificate -DnsName $hostName -CertStoreLocation 'Cert:\LocalMachine\My'
Get-ChildItem -Path 'WSMan:\localhost\Listener' |
  Where-Object { $_.Keys -contains 'Transport=HTTPS' } |
  Remove-Item -Recurse -Force
New-Item -Path 'WSMan:\localhost\Listener' -Transport HTTPS -Address * -CertificateThumbPrint $certificate.Thumbprint -HostName $hostName -Force | Out-Null
$ruleName = 'RunCommand-WinRM-HTTPS-In'
if (-not (Get-NetFirewallRule -Name $ruleName -ErrorAction SilentlyContinue)) {
  New-NetFirewallRule -Name $ruleName -DisplayName 'Windows Remote Management (HTTPS-In)' -Direction Inbound -Action Allow -Protocol TCP -LocalPort 5986 -Profile Any | Out-Null
}
Write-Output "Remote PowerShell is enabled: WinRM HTTPS listener on port 5986, certificate $($certificate.Thumbprint)."
