#!/bin/sh
# Creates (or refreshes) a Wine prefix set up as shared/windows-under-wine.md measured it:
# win10 (node.exe refuses older), DOTNET_EnableWriteXorExecute=0 (pwsh crashes in the CLR otherwise),
# NO_COLOR=1 (no ANSI escapes in PowerShell errors), winedbg disabled (it would write a crash dump
# into the program's stdout and make wine exit 0), and Z: volume queries silenced (they print
# "Read access denied" into the script's stderr). A marker file makes a second run a no-op.
# Usage: scripts/make-wine-prefix.sh <dir>
set -eu

if [ $# -ne 1 ]; then
  echo "usage: $0 <prefix-dir>" >&2
  exit 2
fi
mkdir -p "$1"
WINEPREFIX=$(cd "$1" && pwd)
export WINEPREFIX WINEDEBUG=-all WINEDLLOVERRIDES=winedbg.exe=d
marker="$WINEPREFIX/.rch-prefix-v1"

if [ -f "$marker" ]; then
  echo "make-wine-prefix: $WINEPREFIX is ready"
  exit 0
fi

if command -v wine >/dev/null 2>&1; then wine=wine
elif command -v wine64 >/dev/null 2>&1; then wine=wine64
elif [ -x /usr/lib/wine/wine64 ]; then wine=/usr/lib/wine/wine64
else
  echo "make-wine-prefix: no wine; run scripts/install-windows-toolchain.sh" >&2
  exit 1
fi

echo "make-wine-prefix: initialising $WINEPREFIX"
"$wine" wineboot -i
"$wine" reg add 'HKCU\Software\Wine' /v Version /d win10 /f >/dev/null
"$wine" reg add 'HKCU\Environment' /v DOTNET_EnableWriteXorExecute /d 0 /f >/dev/null
"$wine" reg add 'HKCU\Environment' /v NO_COLOR /d 1 /f >/dev/null
ln -sfn /dev/null "$WINEPREFIX/dosdevices/z::"
# Registry writes reach the files only when the wineserver saves them: wait for it.
if command -v wineserver >/dev/null 2>&1; then wineserver -w; else /usr/lib/wine/wineserver -w; fi
touch "$marker"
echo "make-wine-prefix: $WINEPREFIX is ready"
