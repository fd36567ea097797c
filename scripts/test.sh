#!/usr/bin/env bash
# The project's one test command (README, CI): installs missing Debian packages,
# then format check, clippy (-D warnings), all tests (including pcscd + vpcd),
# bench smoke runs and the Windows cross-check.
set -euo pipefail
cd "$(dirname "$0")/.."
step() { printf '\n==> %s  [%s]\n' "$*" "$(date -u +%H:%M:%S)"; }

step "system packages"
scripts/setup-deps.sh

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --all-features -- -D warnings

step "cargo test"
cargo test --workspace --all-features

if [ -x scripts/bench-smoke.sh ]; then
  step "benchmark smoke runs"
  scripts/bench-smoke.sh
fi

step "interop: opensc-tool and yubikit's SCP03 host against the virtual fob"
scripts/interop.sh

# Last of the Linux steps: it builds kf-station with another feature set.
step "factory build: no virtual fob, KLMS server, bench or test crate"
scripts/factory-check.sh

if [ "${SKIP_WINDOWS_CHECK:-0}" != "1" ]; then
  step "Windows cross-check (x86_64-pc-windows-gnu)"
  scripts/windows-check.sh
fi
step "all checks passed"
