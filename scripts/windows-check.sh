#!/usr/bin/env bash
# Type-check the whole workspace for x86_64-pc-windows-gnu (the station's target OS).
# Route: Debian's rustc-web 1.96 + rust-web-src (std sources) + mingw, with -Zbuild-std.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-deps.sh --windows
# Another compiler: without the clippy wrapper scripts/test.sh sets.
unset RUSTC_WORKSPACE_WRAPPER CLIPPY_ARGS
export PATH=/usr/bin:$PATH RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc RUSTC_BOOTSTRAP=1
exec /usr/bin/cargo check --workspace --target x86_64-pc-windows-gnu \
  -Zbuild-std=std,panic_abort --target-dir "${WIN_TARGET_DIR:-target/win-gnu}" "$@"
