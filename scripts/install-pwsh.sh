#!/usr/bin/env bash
# Installs PowerShell as a .NET global tool when dotnet is present and pwsh is not (idempotent).
# PowerShell tests run whenever pwsh is there and fail on a machine with dotnet but no pwsh; where
# there is no dotnet they are skipped, so no dotnet is not an error here.
set -euo pipefail

version=7.6.9
tools="$HOME/.dotnet/tools"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

if ! command -v dotnet >/dev/null 2>&1; then
  echo "install-pwsh: dotnet not found; PowerShell $version not installed (pwsh tests will be skipped)"
  exit 0
fi

if existing=$(command -v pwsh 2>/dev/null); then
  echo "install-pwsh: pwsh already on PATH"
  echo "$existing"
  exit 0
fi

if [ ! -x "$tools/pwsh" ]; then
  dotnet tool install --global PowerShell --version "$version"
fi
echo "$tools/pwsh"
