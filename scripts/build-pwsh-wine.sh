#!/bin/sh
# Builds a PowerShell 7 for Windows console host (pwsh.exe, win-x64, self-contained) from the NuGet
# package Microsoft.PowerShell.SDK, as shared/windows-under-wine.md §1 describes, so the Windows lane
# can run .ps1 scripts under Wine. It is the real engine and command line, not the real pwsh.exe:
# no profile, only the built-in modules. The output (130 MB) is never committed.
# Usage: scripts/build-pwsh-wine.sh [outdir]   (default: .cache/pwsh-wine)
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-"$root/.cache/pwsh-wine"}
mkdir -p "$out"
out=$(cd "$out" && pwd)

if [ -f "$out/pwsh.exe" ] && [ -d "$out/Modules" ] \
  && [ "$out/pwsh.exe" -nt "$root/scripts/windows/pwsh-wine.csproj" ] \
  && [ "$out/pwsh.exe" -nt "$root/scripts/windows/Program.cs" ]; then
  echo "build-pwsh-wine: $out/pwsh.exe is up to date"
  exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$root/scripts/windows/pwsh-wine.csproj" "$root/scripts/windows/Program.cs" "$work/"
echo "build-pwsh-wine: publishing to $out"
DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 \
  dotnet publish "$work/pwsh-wine.csproj" -c Release -o "$out" -nologo -v quiet
test -f "$out/pwsh.exe" && test -d "$out/Modules"
echo "build-pwsh-wine: built $out/pwsh.exe"
