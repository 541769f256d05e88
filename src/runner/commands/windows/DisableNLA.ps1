# Built-in command DisableNLA (run-command.md section 3): turns Network Level Authentication off for the
# RDP listener (and in local policy, which would override it). The VM must be restarted afterwards.
$ErrorActionPreference = 'Stop'
$listener = 'HKLM:\SYSTEM\CurrentControlSet\Control\Terminal Server\WinStations\RDP-Tcp'
$policy = 'HKLM:\SOFTWARE\Policies\Microsoft\Windows NT\Terminal Services'
Set-ItemProperty -Path $listener -Name 'UserAuthentication' -Value 0 -Type DWord
if ($null -ne (Get-ItemProperty -Path $policy -Name 'UserAuthentication' -ErrorAction SilentlyContinue)) {
  Set-ItemProperty -Path $policy -Name 'UserAuthentication' -Value 0 -Type DWord
}
Write-Output 'Network Level Authentication is disabled. Restart the VM for the change to take effect.'
