@echo off
rem Entry point named by HandlerManifest.windows.json: the Windows agent runs it with cwd = the
rem plugin folder. The package carries its own node.exe next to this file (a VM has no Node).
setlocal
set "here=%~dp0"
if exist "%here%node.exe" (
  "%here%node.exe" "%here%..\dist\cli.js" %*
) else (
  node "%here%..\dist\cli.js" %*
)
exit /b %ERRORLEVEL%
