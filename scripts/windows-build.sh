#!/usr/bin/env bash
# Builds the release kf-station.exe for x86_64-pc-windows-gnu with Debian's
# rustc-web, its std sources (-Zbuild-std) and mingw; prints the exe's path on
# stdout. It is the factory build (`--no-default-features --features pcsc`):
# PC/SC through WinSCard, no simulators, no debug info, symbols stripped.
# Used by scripts/windows-e2e.sh and scripts/package-windows.sh.
#   WIN_TARGET_DIR   cargo target dir (default target/win-gnu)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-deps.sh --windows >&2
target_dir="${WIN_TARGET_DIR:-target/win-gnu}"
# Built by another compiler: without the clippy wrapper scripts/test.sh sets.
unset RUSTC_WORKSPACE_WRAPPER CLIPPY_ARGS
(
  export PATH=/usr/bin:$PATH RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc RUSTC_BOOTSTRAP=1
  export CARGO_PROFILE_RELEASE_DEBUG=0 CARGO_PROFILE_RELEASE_STRIP=symbols
  export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER=x86_64-w64-mingw32-gcc
  /usr/bin/cargo build --release -q -p kf-station --no-default-features --features pcsc \
    --target x86_64-pc-windows-gnu -Zbuild-std=std,panic_abort --target-dir "$target_dir" >&2
)
case "$target_dir" in /*) ;; *) target_dir="$PWD/$target_dir" ;; esac
exe="$target_dir/x86_64-pc-windows-gnu/release/kf-station.exe"
[ -f "$exe" ] || { echo "windows-build: no $exe" >&2; exit 1; }
echo "$exe"
