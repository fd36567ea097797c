#!/usr/bin/env bash
# Install the Debian packages the tests need, when they are missing.
# Usage: scripts/setup-deps.sh [--windows] [--wine]
#   --windows  the Windows cross toolchain (Debian's rustc-web + std sources, mingw)
#   --wine     Wine 8.0 and winegcc (scripts/windows-e2e.sh), zip (scripts/package-windows.sh)
set -euo pipefail
need=(libpcsclite-dev pcscd vsmartcard-vpcd opensc pcsc-tools pkg-config)
for arg in "$@"; do
  case "$arg" in
    --windows) need+=(rustc-web cargo-web rust-web-src gcc-mingw-w64-x86-64-win32) ;;
    --wine) need+=(wine64 wine64-tools libwine-dev gcc libc6-dev zip) ;;
    *) echo "setup-deps: unknown option $arg" >&2; exit 2 ;;
  esac
done
missing=()
for p in "${need[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "setup-deps: installing ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "setup-deps: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  SUDO="sudo"
fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
