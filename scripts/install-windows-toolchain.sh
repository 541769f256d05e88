#!/bin/sh
# Installs what the Windows lane needs (docs/windows-wrapper.md): Debian's Wine (wine64: the 64-bit
# loader, under /usr/lib/wine only; wine: the `wine`, `wineboot`, `wineserver` commands on PATH) to
# run Windows programs, and the mingw-w64 cross compiler to build rch-exec.exe. Idempotent; as root.
# It runs `apt-get update` once, and only when a package is missing.
set -eu

packages="wine64 wine gcc-mingw-w64-x86-64"
missing=""
for pkg in $packages; do
  if dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
    echo "install-windows-toolchain: $pkg already installed"
  else
    missing="$missing $pkg"
  fi
done

if [ -z "$missing" ]; then
  echo "install-windows-toolchain: nothing to do"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "install-windows-toolchain: missing:$missing; run me as root" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
echo "install-windows-toolchain: apt-get update"
apt-get update -qq
echo "install-windows-toolchain: installing$missing"
# shellcheck disable=SC2086 # word splitting of the package list is intended
apt-get install -y -qq --no-install-recommends $missing
echo "install-windows-toolchain: installed$missing"
