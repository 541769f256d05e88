# Built-in command EnableEMS (run-command.md section 3): enables Emergency Management Services on COM1 at
# 115200 baud, with the boot manager's EMS, so the serial console can be used for troubleshooting.
# Takes effect at the next restart.
$ErrorActionPreference = 'Stop'
$steps = @(
  @('/set', '{bootmgr}', 'displaybootmenu', 'yes'),
  @('/set', '{bootmgr}', 'timeout', '5'),
  @('/set', '{bootmgr}', 'bootems', 'yes'),
  @('/ems', '{current}', 'on'),
  @('/emssettings', 'EMSPORT:1', 'EMSBAUDRATE:115200')
)
foreach ($step in $steps) {
  & bcdedit.exe @step
  if ($LASTEXITCODE -ne 0) { throw "bcdedit $($step -join ' ') failed with exit code $LASTEXITCODE" }
}
Write-Output 'Emergency Management Services are enabled (COM1, 115200 baud). Restart the VM for the change to take effect.'
