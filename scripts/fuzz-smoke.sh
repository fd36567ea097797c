#!/usr/bin/env bash
# Short smoke run of every fuzz target (FUZZING.md): builds the fuzz crate with
# cargo-fuzz (installed when missing), seeds the corpora from the test vectors
# and runs each target for FUZZ_SECONDS (default 2) seconds, FUZZ_JOBS (default: one per
# core) targets at a time. Any crash, leak,
# timeout or out-of-memory fails the run and leaves the input in
# fuzz/artifacts/TARGET/.
#
# FUZZ_SANITIZER: `none` (default: a fast build, libFuzzer's coverage guidance
# without ASan; a panic still fails) or `address` (ASan, as in the long runs).
# FUZZ_OPT_LEVEL: the build's optimization level (default 1; 3 as in the long runs).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${FUZZ_SECONDS:-2}"
sanitizer="${FUZZ_SANITIZER:-none}"
# FUZZ_TARGET_DIR: a build directory other than fuzz/target (e.g. to time a cold build;
# relative to fuzz/).
target_dir="$(cd fuzz && realpath -m "${FUZZ_TARGET_DIR:-target}")"

if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install --locked cargo-fuzz
fi
# cargo-fuzz passes -Z flags (the sanitizer); the stable toolchain accepts them
# with RUSTC_BOOTSTRAP=1, for this build only.
export RUSTC_BOOTSTRAP=1
# An instrumented build of its own: without the clippy wrapper scripts/test.sh sets.
unset RUSTC_WORKSPACE_WRAPPER CLIPPY_ARGS
scripts/fuzz-seeds.sh >/dev/null
# A smoke run needs working fuzzers, not fast ones: optimization level FUZZ_OPT_LEVEL (default 1;
# the long runs use cargo-fuzz's release default, 3) cuts the cold build of every dependency
# (cargo-fuzz compiles each crate as one codegen unit). The network, database, HSM and CLI
# stacks that the station and KLMS crates link but no parser runs are not optimized at all.
# Cargo reads per-package settings from the working directory's .cargo/config.toml, so the
# build runs from a scratch directory holding one (the long runs build without it).
config_dir=$(mktemp -d)
trap 'rm -rf "$config_dir"' EXIT
mkdir "$config_dir/.cargo"
{
  for crate in tokio tokio-util tokio-rustls tokio-postgres tokio-postgres-rustls postgres \
    postgres-protocol postgres-types hyper hyper-util h2 http http-body http-body-util axum \
    axum-core tower tower-http reqwest rustls rustls-webpki cryptoki cryptoki-sys clap \
    clap_builder tracing-subscriber regex-automata regex-syntax rcgen url idna \
    icu_normalizer icu_properties icu_collections icu_locale_core mio socket2 futures-util; do
    printf '[profile.release.package.%s]\nopt-level = 0\n' "$crate"
  done
} > "$config_dir/.cargo/config.toml"
fuzz_dir="$PWD/fuzz"
(cd "$config_dir" && CARGO_PROFILE_RELEASE_OPT_LEVEL="${FUZZ_OPT_LEVEL:-1}" \
  cargo fuzz build --fuzz-dir "$fuzz_dir" --target-dir "$target_dir" --sanitizer "$sanitizer")
rm -rf "$config_dir"
cd fuzz
bin_dir="$target_dir/x86_64-unknown-linux-gnu/release"
work=$(mktemp -d)
trap 'rm -rf "$work" "$config_dir"' EXIT
# The built binaries run directly (what `cargo fuzz run` does after its own no-op build), one
# per core at a time; each records its exit status for the check at the end.
smoke() {
  local target=$1 start rc=0 runs
  mkdir -p "$work/$target" "artifacts/$target"
  start=$(date +%s)
  "$bin_dir/$target" -artifact_prefix="artifacts/$target/" "$work/$target" "corpus/$target" \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    >"$work/$target.log" 2>&1 || rc=$?
  echo "$rc" >"$work/$target.rc"
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$target.log")
  printf '%-22s %8s runs  %3d s%s\n' "$target" "${runs:-?}" $(( $(date +%s) - start )) \
    "$([ "$rc" = 0 ] || echo "  FAILED (exit $rc)")"
}
parallel="${FUZZ_JOBS:-$(nproc)}"
targets=$(cargo fuzz list)
for target in $targets; do
  while [ "$(jobs -rp | wc -l)" -ge "$parallel" ]; do wait -n || true; done
  smoke "$target" &
done
wait
failed=0
for target in $targets; do
  if [ "$(cat "$work/$target.rc" 2>/dev/null)" != 0 ]; then
    cat "$work/$target.log"
    echo "fuzz target $target failed; its input is in fuzz/artifacts/$target/"
    failed=1
  fi
done
exit "$failed"
