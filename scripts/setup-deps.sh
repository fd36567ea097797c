#!/usr/bin/env bash
# Install the Debian packages the tests need, when they are missing.
# Usage: scripts/setup-deps.sh [--windows]   (--windows adds the cross-check toolchain)
set -euo pipefail
need=(libpcsclite-dev pcscd vsmartcard-vpcd opensc pcsc-tools pkg-config)
if [ "${1:-}" = "--windows" ]; then
  need+=(rustc-web cargo-web rust-web-src gcc-mingw-w64-x86-64-win32)
fi
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
