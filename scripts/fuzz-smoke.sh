#!/usr/bin/env bash
# Short smoke run of every fuzz target (FUZZING.md): builds the fuzz crate with
# cargo-fuzz (installed when missing), seeds the corpora from the test vectors
# and runs each target for FUZZ_SECONDS (default 2) seconds. Any crash, leak,
# timeout or out-of-memory fails the run and leaves the input in
# fuzz/artifacts/TARGET/.
#
# FUZZ_SANITIZER: `none` (default: a fast build, libFuzzer's coverage guidance
# without ASan; a panic still fails) or `address` (ASan, as in the long runs).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${FUZZ_SECONDS:-2}"
sanitizer="${FUZZ_SANITIZER:-none}"
# FUZZ_TARGET_DIR: a build directory other than fuzz/target (e.g. to time a cold build).
dir_args=()
[ -n "${FUZZ_TARGET_DIR:-}" ] && dir_args=(--target-dir "$FUZZ_TARGET_DIR")

if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install --locked cargo-fuzz
fi
# cargo-fuzz passes -Z flags (the sanitizer); the stable toolchain accepts them
# with RUSTC_BOOTSTRAP=1, for this build only.
export RUSTC_BOOTSTRAP=1
scripts/fuzz-seeds.sh >/dev/null
cd fuzz
cargo fuzz build "${dir_args[@]}" --sanitizer "$sanitizer"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for target in $(cargo fuzz list); do
  mkdir -p "$work/$target"
  start=$(date +%s)
  cargo fuzz run "${dir_args[@]}" --sanitizer "$sanitizer" "$target" "$work/$target" "corpus/$target" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    >"$work/$target.log" 2>&1 || { cat "$work/$target.log"; echo "fuzz target $target failed"; exit 1; }
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$target.log")
  printf '%-22s %8s runs  %3d s\n' "$target" "${runs:-?}" $(( $(date +%s) - start ))
done
