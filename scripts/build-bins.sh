#!/usr/bin/env bash
# Builds every binary and example of the workspace with the one feature set the
# test run uses (--workspace --all-features), so that scripts reuse what
# `cargo test` already compiled instead of resolving another feature set and
# rebuilding the dependency graph. Prints the directory holding the binaries.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q --workspace --all-features --bins --examples >&2
echo "${CARGO_TARGET_DIR:-$PWD/target}/debug"
