# Built-in command RDPSettings (run-command.md section 3): checks the Remote Desktop settings in the
# registry and in policy. Policy that blocks RDP on a domain member is reported with the change to
# make in the domain (a local change would be overwritten); otherwise the settings are reset to
# their defaults, the service started and the firewall rules enabled.
$ErrorActionPreference = 'Stop'
$server = 'HKLM:\SYSTEM\CurrentControlSet\Control\Terminal Server'
$listener = "$server\WinStations\RDP-Tcp"
$policy = 'HKLM:\SOFTWARE\Policies\Microsoft\Windows NT\Terminal Services'
$defaults = @(
  @{ Path = $server; Name = 'fDenyTSConnections'; Value = 0 },
  @{ Path = $listener; Name = 'PortNumber'; Value = 3389 },
  @{ Path = $listener; Name = 'fEnableWinStation'; Value = 1 },
  @{ Path = $listener; Name = 'LanAdapter'; Value = 0 }
)

function Get-Setting([string] $Path, [string] $Name) {
  $item = Get-ItemProperty -Path $Path -Name $Name -ErrorAction SilentlyContinue
  if ($null -eq $item) { return $null }
  return $item.$Name
}

$domainMember = (Get-CimInstance -ClassName Win32_ComputerSystem).PartOfDomain
$deniedByPolicy = (Get-Setting $policy 'fDenyTSConnections') -eq 1
if ($deniedByPolicy -and $domainMember) {
  Write-Output 'Remote Desktop is denied by domain policy (fDenyTSConnections = 1).'
  Write-Output "Suggested action: in the domain's Group Policy, enable 'Computer Configuration > Administrative Templates > Windows Components > Remote Desktop Services > Remote Desktop Session Host > Connections > Allow users to connect remotely by using Remote Desktop Services'."
} elseif ($deniedByPolicy) {
  Set-ItemProperty -Path $policy -Name 'fDenyTSConnections' -Value 0 -Type DWord
  Write-Output 'Local policy denied Remote Desktop: fDenyTSConnections reset to 0.'
}
foreach ($setting in $defaults) {
  $current = Get-Setting $setting.Path $setting.Name
  if ($current -ne $setting.Value) {
    Set-ItemProperty -Path $setting.Path -Name $setting.Name -Value $setting.Value -Type DWord
    Write-Output "$($setting.Name): $current -> $($setting.Value) (default)"
  } else {
    Write-Output "$($setting.Name): $current (default)"
  }
}
Set-Service -Name 'TermService' -StartupType Manual
Start-Service -Name 'TermService'
# The 'Remote Desktop' rule group by its resource id, which does not depend on the display language.
Enable-NetFirewallRule -Group '@FirewallAPI.dll,-28752'
Write-Output 'Remote Desktop settings checked; the Remote Desktop service is running and its firewall rules are enabled.'
