#!/usr/bin/env bash
# The project's one test command (README, CI): installs missing Debian packages,
# then format check, clippy (-D warnings), all tests (including pcscd + vpcd),
# bench smoke runs, the Windows exe end to end under Wine and its release zip.
set -euo pipefail
cd "$(dirname "$0")/.."
# Each step's wall time is printed as it ends and summed up at exit.
t0=$(date +%s); t_step=$t0; name=""; times=()
step() {
  local now; now=$(date +%s)
  [ -n "$name" ] && times+=("$(printf '%6d s  %s' $((now - t_step)) "$name")")
  name="$*"; t_step=$now
  printf '\n==> %s  [%s]\n' "$*" "$(date -u +%H:%M:%S)"
}
summary() {
  local rc=$? now; now=$(date +%s)
  # A Windows build still running in the background (a failed step ended the run) goes too.
  [ -n "${win_build:-}" ] && kill -- "-$win_build" 2>/dev/null
  [ -n "$name" ] && times+=("$(printf '%6d s  %s' $((now - t_step)) "$name")")
  printf '\n==> step times (exit %d)\n' "$rc"; printf '%s\n' "${times[@]}"
  printf '%6d s  total\n' $((now - t0))
}
trap summary EXIT

windows=1
[ "${SKIP_WINDOWS_E2E:-0}" = "1" ] && windows=0
step "system packages"
if [ "$windows" = 1 ]; then scripts/setup-deps.sh --windows --wine; else scripts/setup-deps.sh; fi
# Link the Linux builds with mold (installed above): the test build alone links about a
# hundred binaries. Every later step, cargo-fuzz's build included, inherits the setting.
if [ "$(uname -sm)" = "Linux x86_64" ]; then
  export CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER="$PWD/scripts/cc-mold.sh"
fi

step "cargo fmt --check"
cargo fmt --all -- --check

# One build both lints and compiles: clippy's driver compiles the workspace's own crates in
# place of rustc (what `cargo clippy` does, with code generation), with every lint and
# warning an error, as `cargo clippy --workspace --all-targets --all-features -- -D warnings`.
# A separate `cargo clippy` would check the whole dependency graph a second time. Every
# later cargo command of the run inherits the wrapper, so it reuses these builds; the fuzz
# and Windows builds, made with other compilers, unset it.
export RUSTC_WORKSPACE_WRAPPER="$(command -v clippy-driver)"
export CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"

# One feature set for the whole run (--workspace --all-features): every later
# script reuses these binaries through scripts/build-bins.sh.
step "cargo test: build every target, clippy -D warnings"
cargo test --workspace --all-features --all-targets --no-run

# The Windows release build has nothing to check until the Windows step: it runs in the
# background at the lowest priority from here on, on the cores the test run leaves idle (the
# tests wait on daemons, timeouts and fsync far more than they compute; a nice-19 process
# yields the CPU to them at once; idle I/O class for its disk writes) and beside the smoke
# steps, and the Windows step waits for it.
# It gets a process group of its own (job control, stopped at exit) but stays in this
# session: with the kernel's autogroup scheduling a new session (setsid) would be a group of
# its own that takes half the CPU whatever its nice value.
if [ "$windows" = 1 ]; then
  win_log=$(mktemp)
  set -m
  nice -n 19 ionice -c 3 scripts/windows-build.sh >/dev/null 2>"$win_log" &
  win_build=$!
  set +m
fi

step "cargo test: run"
# Every test that starts a process bounds its own waits; this bound catches any other hang
# (the test harness names a test running for over 60 s in the log).
timeout --kill-after=30 1800 cargo test --workspace --all-features

# The behavioural SKS suite again, on the durable SQLite store instead of memory.
step "SKS behavioural tests on SQLite"
# `--workspace --all-features` as above, so the test build is reused, not rebuilt with the
# feature set `-p sks` alone would resolve.
SKS_TEST_STORAGE=sqlite cargo test --workspace --all-features --test pin_puk --test user_api \
  --test post_provisioning --test provisioning_objects --test session_lifecycle --test extensions

if [ -x scripts/bench-smoke.sh ]; then
  step "benchmark smoke runs"
  scripts/bench-smoke.sh
fi

step "fuzz smoke runs: every fuzz target for a few seconds"
scripts/fuzz-smoke.sh

step "interop: opensc-tool and yubikit's SCP03 host against the virtual fob"
scripts/interop.sh

step "factory build: no virtual fob, KLMS server, bench or test crate"
if [ "$windows" = 1 ]; then
  # The Windows exe is the factory build: the Windows step checks the binary itself.
  scripts/factory-check.sh --tree-only
else
  # Builds kf-station with a second feature set.
  scripts/factory-check.sh
fi

if [ "$windows" = 1 ]; then
  step "Windows: waiting for the background build of kf-station.exe"
  if ! wait "$win_build"; then
    cat "$win_log"; echo "the Windows build failed" >&2; exit 1
  fi
  win_build=""
  step "Windows: kf-station.exe under Wine through WinSCard, pcscd + vpcd"
  scripts/windows-e2e.sh
  step "Windows: release zip"
  scripts/package-windows.sh "$(scripts/windows-build.sh)"
fi
step "all checks passed"
