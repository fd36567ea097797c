#!/usr/bin/env bash
# The Windows station end to end: builds the release kf-station.exe
# (x86_64-pc-windows-gnu, no debug info) and runs it under Wine against the real
# PC/SC stack — pcscd + vsmartcard vpcd + the virtual fob (`kf-station sim serve`,
# the Linux build) — through WinSCard:
#
#   kf-station.exe ─WinSCard─▶ winscard.dll (test bridge, scripts/windows-bridge/)
#                  ─▶ libpcsclite.so.1 ─▶ pcscd ─▶ vpcd ─TCP─▶ sim serve (virtual fob)
#
# Steps: --version, readers, the bridge's own check (bridge-check.c), provision
# (PASS, then the same fob again: refused by the journal, and with
# --repersonalize by the fob), container packages with CRLF files from a path with spaces and non-ASCII
# characters, self-test, demo --fobs 5 (embedded KLMS, mTLS upload), run with
# three fobs tapped one after another then Ctrl-C, run stopped by each other
# console event (Ctrl-Break, close, logoff, shutdown: console-event.c), the
# %ProgramData% default journal, audit verify on every journal the exe wrote,
# every secret file the exe wrote owner-only (acl-check.c) while a journal and
# a certificate are not. Each step prints PASS/FAIL and its time; the script
# exits non-zero on the first failure.
#
# Needs root (apt packages, pcscd's /run/pcscd socket) on Debian 12. Environment:
#   WIN_TARGET_DIR   cargo target dir of the Windows build (default target/win-gnu)
#   KEEP_E2E_DIR=1   keep the work directory (Wine prefix, journals, logs)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
export LC_ALL=C.UTF-8

SCRIPT_START=$(date +%s%N)
ms_since() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
secs() { printf '%d.%03d s' $(($1 / 1000)) $(($1 % 1000)); }

WORK=""
PCSCD_PID=""
SIM_PID=""
RUN_PID=""
cleanup() {
  local rc=$?
  [ -n "$RUN_PID" ] && kill -TERM "$RUN_PID" 2>/dev/null || true
  [ -n "$SIM_PID" ] && kill -INT "$SIM_PID" 2>/dev/null || true
  [ -n "$PCSCD_PID" ] && kill -TERM "$PCSCD_PID" 2>/dev/null || true
  if [ -n "$WORK" ] && [ -d "$WORK/prefix" ]; then
    WINEPREFIX="$WORK/prefix" "$WINESERVER" -k 2>/dev/null || true
  fi
  wait 2>/dev/null || true
  if [ -n "$WORK" ]; then
    if [ "${KEEP_E2E_DIR:-0}" = "1" ] || [ $rc -ne 0 ]; then
      echo "windows-e2e: work directory kept: $WORK" >&2
    else
      rm -rf "$WORK"
    fi
  fi
  echo "windows-e2e: total $(secs "$(ms_since "$SCRIPT_START")")"
  exit $rc
}
trap cleanup EXIT

STEP_NAME=""
STEP_START=0
begin() { STEP_NAME="$1"; STEP_START=$(date +%s%N); }
pass() { printf 'PASS  %-58s %s\n' "$STEP_NAME" "$(secs "$(ms_since "$STEP_START")")"; }
fail() {
  printf 'FAIL  %-58s %s\n' "$STEP_NAME" "$(secs "$(ms_since "$STEP_START")")"
  echo "  $*" >&2
  [ -f "$WORK/out" ] && sed 's/^/  | /' "$WORK/out" | tail -40 >&2
  exit 1
}

# Waits (polling, overall timeout in seconds) until the command succeeds.
wait_until() {
  local timeout=$1
  shift
  local deadline=$(($(date +%s) + timeout))
  until "$@"; do
    [ "$(date +%s)" -lt "$deadline" ] || return 1
    sleep 0.1
  done
}

# --- packages, builds ----------------------------------------------------------

begin "system packages (Wine 8.0, mingw, rustc-web, pcscd, vpcd)"
scripts/setup-deps.sh --windows --wine || fail "apt install failed"
pass

begin "cargo build --release kf-station.exe (x86_64-pc-windows-gnu)"
EXE_BUILT="$(scripts/windows-build.sh)" || fail "Windows build failed"
pass
echo "      kf-station.exe: $(stat -c %s "$EXE_BUILT") bytes"

# The workspace's own debug build (one feature set for the whole test run: nothing to
# rebuild after scripts/test.sh's test build).
begin "cargo build kf-station (Linux, pcsc: the virtual fob)"
LIN_DIR="$(scripts/build-bins.sh)" || fail "Linux build failed"
LIN="$LIN_DIR/kf-station"
pass

WORK="$(mktemp -d /tmp/kf-windows-e2e.XXXXXX)"
WINE=/usr/lib/wine/wine64
WINESERVER=/usr/lib/wine/wineserver
[ -x "$WINE" ] || WINE="$(command -v wine64)"
[ -x "$WINESERVER" ] || WINESERVER="$(command -v wineserver)"
export PATH="/usr/lib/wine:$PATH"

begin "test bridge and tools (winegcc, mingw): bridge-check, console-event, acl-check"
mkdir -p "$WORK/bridge"
for m in winscard bcryptprimitives; do
  winegcc -O2 -Wall -Wextra -Werror -shared -o "$WORK/bridge/$m.dll" \
    "scripts/windows-bridge/$m.spec" "scripts/windows-bridge/$m.c" -ldl -lpthread \
    > "$WORK/out" 2>&1 || fail "winegcc $m failed"
  [ -f "$WORK/bridge/$m.dll.so" ] || fail "no $m.dll.so"
done
mingw() { x86_64-w64-mingw32-gcc -O2 -Wall -Wextra -Werror -o "$WORK/bridge/$1.exe" "${@:2}" > "$WORK/out" 2>&1 || fail "$1.exe build failed"; }
mingw bridge-check scripts/windows-bridge/bridge-check.c -lwinscard
mingw console-event scripts/windows-bridge/console-event.c
mingw acl-check -municode scripts/windows-bridge/acl-check.c -ladvapi32
pass

export WINEPREFIX="$WORK/prefix" WINEDEBUG=-all WINEARCH=win64
# The bridge sits in system32 as a native DLL (an ELF Winelib module, which
# Wine 8.0 loads from there); "n" makes Wine take it instead of its own stub.
# mscoree/mshtml off: no Mono/Gecko installer prompts in a headless prefix.
export WINEDLLOVERRIDES="winscard=n;bcryptprimitives=n;mscoree=;mshtml="
begin "Wine prefix (wineboot) with the bridge in system32"
mkdir -p "$WINEPREFIX"
# One persistent wineserver for every run below (stopped with -k at exit).
"$WINESERVER" -p
"$WINE" wineboot -i > "$WORK/out" 2>&1 || fail "wineboot failed"
SYS32="$WINEPREFIX/drive_c/windows/system32"
[ -d "$SYS32" ] || fail "no system32 in the prefix"
cp "$WORK/bridge/winscard.dll.so" "$SYS32/winscard.dll"
cp "$WORK/bridge/bcryptprimitives.dll.so" "$SYS32/bcryptprimitives.dll"
pass

# The exe and its data live under a path with spaces and non-ASCII characters.
APP_UNIX="$WINEPREFIX/drive_c/Keyfob Stätion ü"
APP_WIN='C:\Keyfob Stätion ü'
mkdir -p "$APP_UNIX/data"
cp "$EXE_BUILT" "$APP_UNIX/kf-station.exe"
EXE="$APP_UNIX/kf-station.exe"

# Runs the exe under Wine: stdout+stderr to $WORK/out; returns its exit code.
winrun() { "$WINE" "$EXE" "$@" > "$WORK/out" 2>&1; }
expect_ok() { winrun "$@" || fail "exit code $? from: kf-station.exe $*"; }
expect_out() { grep -q -- "$1" "$WORK/out" || fail "output lacks \"$1\""; }

# --- pcscd + vpcd + the virtual fob --------------------------------------------

begin "pcscd with a vpcd reader"
if [ -f /run/pcscd/pcscd.pid ] && kill -0 "$(cat /run/pcscd/pcscd.pid)" 2>/dev/null; then
  pcscd_busy() { ! { [ -f /run/pcscd/pcscd.pid ] && kill -0 "$(cat /run/pcscd/pcscd.pid)" 2>/dev/null; }; }
  wait_until 120 pcscd_busy || fail "another pcscd is running (pid $(cat /run/pcscd/pcscd.pid)); stop it first"
fi
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
PORT=0
for _ in $(seq 50); do
  p=$((20000 + RANDOM % 40000))
  if port_free "$p" && port_free $((p + 1)); then PORT=$p; break; fi
done
[ "$PORT" -ne 0 ] || fail "no free TCP port pair"
VPCD_DRIVER="${KF_VPCD_DRIVER:-/usr/lib/pcsc/drivers/serial/libifdvpcd.so}"
[ -f "$VPCD_DRIVER" ] || fail "libifdvpcd.so not found (vsmartcard-vpcd)"
mkdir -p "$WORK/reader.conf.d" /run/pcscd
printf 'FRIENDLYNAME "Virtual PCD"\nDEVICENAME   /dev/null:0x%04X\nLIBPATH      %s\nCHANNELID    0x%04X\n' \
  "$PORT" "$VPCD_DRIVER" "$PORT" > "$WORK/reader.conf.d/vpcd"
pcscd --foreground -c "$WORK/reader.conf.d" > "$WORK/pcscd.log" 2>&1 &
PCSCD_PID=$!
READER="Virtual PCD 00 00"
reader_listed() { "$LIN" readers 2>/dev/null | grep -q "^$READER"; }
wait_until 20 reader_listed || fail "pcscd did not list $READER"
pass

# Inserts a virtual fob with UID $1 into slot 0 (a new `sim serve` process).
fob_present() { "$LIN" readers 2>/dev/null | grep -q "^$READER.*card present"; }
fob_absent() { "$LIN" readers 2>/dev/null | grep -q "^$READER.*empty"; }
insert_fob() {
  "$LIN" sim serve --vpcd "127.0.0.1:$PORT" --uid "$1" > "$WORK/sim-$1.log" 2>&1 &
  SIM_PID=$!
  wait_until 20 fob_present || fail "fob $1 not seen in $READER"
}
remove_fob() {
  kill -INT "$SIM_PID"
  wait "$SIM_PID" || true
  SIM_PID=""
  wait_until 20 fob_absent || fail "fob not removed from $READER"
}

# --- the exe under Wine ----------------------------------------------------------

VERSION="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)"
begin "kf-station.exe --version"
expect_ok --version
expect_out "kf-station $VERSION"
pass

UID1=04E2E000000000000001
insert_fob "$UID1"
begin "kf-station.exe readers (WinSCard -> pcscd)"
expect_ok readers
grep -q "^$READER	card present	ATR 3B" "$WORK/out" || fail "reader with a card not listed"
pass

begin "bridge check: W calls, AUTOALLOCATE, PnP reader, PCI, reconnect"
"$WINE" "$WORK/bridge/bridge-check.exe" "$READER" "$UID1" > "$WORK/out" 2>&1 || fail "bridge-check failed"
expect_out "checks passed"
pass

J_PROV="$APP_WIN"'\data\provision journal.db'
begin "kf-station.exe provision --reader \"$READER\""
expect_ok provision --reader "$READER" --journal "$J_PROV"
expect_out "PASS"
expect_out "$UID1"
pass

# The journal knows the fob by its chip serial: a second personalization is
# refused before any key is fetched, naming the earlier record and reader.
begin "kf-station.exe provision of the same fob again: refused by the journal"
rc=0
winrun provision --reader "$READER" --journal "$J_PROV" || rc=$?
[ $rc -eq 1 ] || fail "exit code $rc (expected 1) for a second personalization"
expect_out "FAIL  $UID1"
expect_out "fob already personalized"
expect_out "on reader Virtual_PCD_00_00"
pass

# Forced with --repersonalize, the fob itself refuses: its applet no longer
# accepts STORE DATA.
begin "kf-station.exe provision --repersonalize of that fob: refused by the fob"
rc=0
winrun provision --reader "$READER" --journal "$J_PROV" --repersonalize || rc=$?
[ $rc -eq 1 ] || fail "exit code $rc (expected 1) for a forced second personalization"
expect_out "FAIL  $UID1"
expect_out "6985"
pass
remove_fob

begin "container packages: CRLF files, path with spaces and non-ASCII"
POOL_UNIX="$APP_UNIX/pool ü"
"$LIN" fixtures generate "$POOL_UNIX" --count 2 --seed 7 > "$WORK/out" 2>&1 || fail "fixtures generate failed"
for f in "$POOL_UNIX"/*/FESN.txt "$POOL_UNIX"/*/irk_keyfob.key; do
  printf '%s\r\n' "$(tr -d '\r\n' < "$f")" > "$f.crlf" && mv "$f.crlf" "$f"
done
grep -q $'\r$' "$(ls "$POOL_UNIX"/*/FESN.txt | head -1)" || fail "FESN.txt has no CRLF"
expect_ok provision --sim --source container --source-dir "$APP_WIN"'\pool ü' --journal "$APP_WIN"'\data\container.db'
expect_out "PASS"
pass

begin "kf-station.exe self-test"
expect_ok self-test
pass

begin "defaults under %ProgramData%\\keyfob-station: journal, station.toml (CRLF)"
PD="$WINEPREFIX/drive_c/ProgramData/keyfob-station"
[ ! -e "$PD" ] || fail "$PD exists before the first run"
expect_ok provision --sim
expect_out "PASS"
[ -f "$PD/station-journal.db" ] || fail "no station-journal.db in $PD"
expect_ok audit verify
# The sample configuration of the release zip, as shipped (CRLF), read by default.
sed 's/\r$//; s/^station_id = .*/station_id = "E2E-WINE-01"/; s/$/\r/' packaging/windows/station.toml > "$PD/station.toml"
expect_ok provision --sim
expect_out "PASS"
expect_ok audit export --format json
expect_out 'E2E-WINE-01'
pass

begin "kf-station.exe demo --fobs 5 (embedded KLMS, mTLS upload)"
expect_ok demo --fobs 5 --data-dir "$APP_WIN"'\demo data'
expect_out "provisioned 5/5 fobs"
expect_out "KLMS (mutual TLS): journal records anchored 10, pending 0, rejected 0"
pass

# `run` in the background on journal $1 (a Windows path): output in run.out/run.err.
run_start() {
  : > "$WORK/run.out"
  "$WINE" "$EXE" run --reader "$READER" --journal "$1" > "$WORK/run.out" 2> "$WORK/run.err" &
  RUN_PID=$!
  waiting() { grep -q 'present a fob' "$WORK/run.err"; }
  wait_until 60 waiting || { cp "$WORK/run.err" "$WORK/out"; fail "run did not start"; }
}
# Taps fob $1 on the running `run` and waits for its PASS line (the $2-th).
run_tap() {
  local want=$2
  insert_fob "$1"
  tapped() { [ "$(grep -c '^PASS' "$WORK/run.out" 2>/dev/null || true)" -ge "$want" ]; }
  wait_until 60 tapped || { cat "$WORK/run.out" "$WORK/run.err" > "$WORK/out"; fail "fob $1: no PASS"; }
  grep -q "$1" "$WORK/run.out" || { cp "$WORK/run.out" "$WORK/out"; fail "fob $1 not in the output"; }
  remove_fob
}
# Waits for the stopped `run`: exit code 0 and the summary "stopped: good $1, failed 0".
run_stopped() {
  local rc=0
  wait "$RUN_PID" || rc=$?
  RUN_PID=""
  cat "$WORK/run.out" "$WORK/run.err" > "$WORK/out"
  [ $rc -eq 0 ] || fail "run exited with $rc after $2"
  expect_out "stopped: good $1, failed 0"
}

begin "kf-station.exe run: three fobs tapped one after another, Ctrl-C"
J_RUN="$APP_WIN"'\data\run journal.db'
run_start "$J_RUN"
n=0
for uid in 04E2E000000000000011 04E2E000000000000012 04E2E000000000000013; do
  n=$((n + 1))
  run_tap "$uid" "$n"
done
# Ctrl-C: Wine turns SIGINT into CTRL_C_EVENT for the console handler.
kill -INT "$RUN_PID"
run_stopped 3 Ctrl-C
pass

# The other console events, one run each. Wine 8.0 makes CTRL_C_EVENT only
# (from SIGINT) and its GenerateConsoleCtrlEvent refuses CTRL_BREAK_EVENT, so
# console-event.exe delivers each as Windows does: a thread in the station at
# kernelbase!CtrlRoutine. Close, logoff and shutdown end the process when the
# handler returns: the station must finish the fob and close the journal first.
J_EVENTS=()
n=20
for event in ctrl-break close logoff shutdown; do
  begin "kf-station.exe run: one fob, then $event (console-event.exe)"
  J_EVENTS+=("$APP_WIN"'\data\run '"$event"'.db')
  run_start "${J_EVENTS[-1]}"
  n=$((n + 1))
  run_tap "04E2E0000000000000$n" 1
  "$WINE" "$WORK/bridge/console-event.exe" kf-station.exe "$event" > "$WORK/event.out" 2>&1 \
    || { cp "$WORK/event.out" "$WORK/out"; fail "console-event.exe $event failed"; }
  run_stopped 1 "$event"
  expect_ok audit verify --journal "${J_EVENTS[-1]}"
  pass
done

begin "kf-station.exe audit verify (provision, container, demo, run journals)"
for j in "$J_PROV" "$APP_WIN"'\data\container.db' "$APP_WIN"'\demo data\journal.db' "$J_RUN"; do
  expect_ok audit verify --journal "$j"
done
pass

# Every secret file the exe wrote (journal keys, storage keys, the demo's KLMS
# private keys: all *.key, outside the pool that the Linux tool generated) must
# be owner-only. acl-check.exe probes whether this Wine keeps a DACL as written
# (wine-staging) and then demands exactly kf-secret-file's DACL; Debian's Wine
# 8.0 keeps only Unix mode bits and rebuilds the DACL from them (server/file.c:
# sd_to_mode when creating, mode_to_sd when queried), so there the DACL must
# name no one but the owner and SYSTEM, and the mode no "other" bits (Everyone).
# The group bits never appear in Wine's DACL: sd_to_mode gives a SID of the
# creating token (here Administrators) user+group bits, hence 750 for 770 & ~022.
# A journal and a certificate (created without a DACL) must come out open: the
# check can fail.
begin "secret files owner-only (acl-check.exe, mode); journal, certificate not"
to_win() { local p="${1#"$WINEPREFIX"/drive_c/}"; printf 'C:\\%s' "${p//\//\\}"; }
SDDL="$(sed -n 's/^pub const WINDOWS_SDDL: &str = "\(.*\)";$/\1/p' crates/kf-secret-file/src/lib.rs)"
[ -n "$SDDL" ] || fail "WINDOWS_SDDL not found in kf-secret-file"
mapfile -t KEYS < <(find "$APP_UNIX" "$PD" -name '*.key' -not -path "$POOL_UNIX/*" | sort)
# A journal key per journal (provision, container, the %ProgramData% default,
# demo, five runs) and the demo's KLMS keys.
[ ${#KEYS[@]} -ge 10 ] || fail "only ${#KEYS[@]} key files: ${KEYS[*]}"
WIN_KEYS=()
for k in "${KEYS[@]}"; do
  mode=$(stat -c %a "$k")
  [ $((8#$mode & 7)) -eq 0 ] || fail "$k: mode $mode gives others access"
  WIN_KEYS+=("$(to_win "$k")")
done
"$WINE" "$WORK/bridge/acl-check.exe" "$SDDL" "${WIN_KEYS[@]}" > "$WORK/out" 2>&1 || fail "a secret file is not owner-only"
RULE="$(tr -d '\r' < "$WORK/out" | sed -n 's/^acl-check: .* owner-only (\(.*\))$/\1/p')"
CA_PEM="$(find "$APP_UNIX/demo data" -name ca.pem | head -1)"
[ -n "$CA_PEM" ] || fail "no ca.pem in the demo data"
"$WINE" "$WORK/bridge/acl-check.exe" "$SDDL" --open "$(to_win "$APP_UNIX/data/run journal.db")" "$(to_win "$CA_PEM")" \
  > "$WORK/out" 2>&1 || fail "the negative control (journal, certificate) was reported owner-only"
pass
echo "      ${#KEYS[@]} key files, rule: $RULE, modes: $(stat -c %a "${KEYS[@]}" | sort -u | tr '\n' ' ')"

echo "windows-e2e: all steps passed"
