#!/usr/bin/env bash
# Install the Debian packages the tests need, when they are missing.
# Usage: scripts/setup-deps.sh [--windows] [--wine]
#   --windows  the Windows cross toolchain (Debian's rustc-web + std sources, mingw)
#   --wine     Wine 8.0 and winegcc (scripts/windows-e2e.sh), zip (scripts/package-windows.sh)
set -euo pipefail
need=(libpcsclite-dev pcscd vsmartcard-vpcd opensc pcsc-tools pkg-config)
# SoftHSM2: the PKCS#11 token of the KLMS key-store tests (crates/kf-klms/tests/hsm.rs).
need+=(softhsm2)
# The KLMS ledger tests start a throwaway PostgreSQL (initdb + pg_ctl).
need+=(postgresql)
# chromium + chromium-driver: the operator console's browser test (headless, WebDriver).
need+=(chromium chromium-driver)
# mold: the linker of the Linux builds in scripts/test.sh (scripts/cc-mold.sh).
need+=(mold)
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
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
apt_install() {
  echo "setup-deps: installing $*" >&2
  if [ -n "$SUDO" ]; then
    command -v sudo >/dev/null || { echo "setup-deps: need root (or sudo) to install: $*" >&2; exit 1; }
  fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
[ ${#missing[@]} -eq 0 ] || apt_install "${missing[@]}"

# The independent journal vector generator (crates/kf-audit/tests/independent) needs
# Python 3; the independent SKS issuer (crates/sks/tests/independent_issuer) and the
# independent SCP03 vector generator (crates/kf-scp03/tests/independent) also need Python's
# `cryptography` (PyPI); Debian's python3-cryptography when pip may not install into
# the system interpreter.
PYTHON="${PYTHON:-python3}"
command -v "$PYTHON" >/dev/null || apt_install python3
if ! "$PYTHON" -c 'import cryptography' 2>/dev/null; then
  echo "setup-deps: installing cryptography (PyPI) for $PYTHON" >&2
  "$PYTHON" -m pip install --quiet --disable-pip-version-check cryptography 2>/dev/null \
    || apt_install python3-cryptography
  "$PYTHON" -c 'import cryptography'
fi
