#!/usr/bin/env bash
# The Windows station end to end: builds the release kf-station.exe
# (x86_64-pc-windows-gnu, the factory build: no simulators, no debug info) and
# runs it under Wine against the real PC/SC stack — pcscd + vsmartcard vpcd + the
# virtual fob (`kf-station sim serve`, the Linux build) — through WinSCard, and
# against the reference KLMS (`kf-klms serve`, the Linux build) over mutual TLS:
#
#   kf-station.exe ─WinSCard─▶ winscard.dll (test bridge, scripts/windows-bridge/)
#                  ─▶ libpcsclite.so.1 ─▶ pcscd ─▶ vpcd ─TCP─▶ sim serve (virtual fob)
#   kf-station.exe ─HTTPS, client certificate─▶ kf-klms serve
#
# Steps: --version, the factory build (no simulator crate in the exe; its
# simulator commands exit 2 and say so), readers, the bridge's own check
# (bridge-check.c), provision (PASS, then the same fob again: refused by the
# journal, and with --repersonalize by the fob), container packages with CRLF
# files from a path with spaces and non-ASCII characters, the %ProgramData%
# defaults (journal, the shipped station.toml naming the reader), the KLMS
# source (keys per fob from the KLMS, journal uploaded and anchored), run with
# three fobs tapped one after another then Ctrl-C, run stopped by each other
# console event (Ctrl-Break, close, logoff, shutdown: console-event.c), audit
# verify on every journal the exe wrote, every secret file the exe wrote
# owner-only (acl-check.c) while a journal and an audit file are not. Each step
# prints PASS/FAIL and its time; the script exits non-zero on the first failure.
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
KLMS_PID=""
cleanup() {
  local rc=$?
  [ -n "$RUN_PID" ] && kill -TERM "$RUN_PID" 2>/dev/null || true
  [ -n "$SIM_PID" ] && kill -INT "$SIM_PID" 2>/dev/null || true
  [ -n "$KLMS_PID" ] && kill -TERM "$KLMS_PID" 2>/dev/null || true
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
begin "cargo build kf-station, kf-klms (Linux: the virtual fob, the KLMS)"
LIN_DIR="$(scripts/build-bins.sh)" || fail "Linux build failed"
LIN="$LIN_DIR/kf-station"
KLMS="$LIN_DIR/kf-klms"
pass

# Crate paths survive in the exe (panic locations, log call sites): a crate that is
# not linked leaves none. The linked ones are the control that the search works.
begin "factory build: no virtual fob, KLMS server, bench or test crate in the exe"
crate_paths="$(grep -a -o 'crates[/\\]kf-[a-z0-9-]*' "$EXE_BUILT" | sort | uniq -c || true)"
for linked in kf-transport kf-perso kf-source kf-audit kf-station; do
  grep -q " crates.$linked\$" <<<"$crate_paths" || fail "$linked not found in the exe: the check is broken"
done
for absent in kf-card kf-klms kf-bench kf-testkit; do
  if grep -q " crates.$absent\$" <<<"$crate_paths"; then fail "the exe links $absent"; fi
done
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

# The factory build's simulator commands: exit 2, nothing on stdout, one line on stderr that
# says how to get them, no file written (each runs in an empty folder).
begin "factory build: simulator commands exit 2 and say how to get them"
mkdir -p "$WORK/refused"
for args in "demo" "demo --fobs 3 --data-dir d" "self-test" "sim serve --vpcd 127.0.0.1:35963" \
  "bench --fobs 2 --transport loopback" "provision --sim --journal j.db"; do
  rc=0
  # shellcheck disable=SC2086 # one word per argument
  (cd "$WORK/refused" && "$WINE" "$EXE" $args > "$WORK/refused.out" 2> "$WORK/out") || rc=$?
  [ $rc -eq 2 ] || fail "kf-station.exe $args: exit code $rc (expected 2)"
  [ ! -s "$WORK/refused.out" ] || fail "kf-station.exe $args wrote to stdout"
  [ "$(tr -d '\r' < "$WORK/out" | grep -c .)" -eq 1 ] || fail "kf-station.exe $args: not one line on stderr"
  tr -d '\r' < "$WORK/out" | grep -q '^error: `.*factory build.*`sim` feature' || fail "kf-station.exe $args: no hint"
done
[ -z "$(ls -A "$WORK/refused")" ] || fail "a refused command left files: $(ls -A "$WORK/refused")"
expect_ok --help
for command in demo self-test bench sim; do
  tr -d '\r' < "$WORK/out" | grep -q "^ *$command .*Not in this factory build" || fail "--help does not mark $command"
done
for command in provision run audit fixtures scp03 readers; do
  tr -d '\r' < "$WORK/out" | grep -q "^ *$command " || fail "no $command in --help"
done
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
insert_fob 04E2E000000000000002
expect_ok provision --reader "$READER" --source container --source-dir "$APP_WIN"'\pool ü' --journal "$APP_WIN"'\data\container.db'
expect_out "PASS"
remove_fob
pass

begin "defaults under %ProgramData%\\keyfob-station: journal, station.toml (CRLF)"
PD="$WINEPREFIX/drive_c/ProgramData/keyfob-station"
[ ! -e "$PD" ] || fail "$PD exists before the first run"
insert_fob 04E2E000000000000003
expect_ok provision --reader "$READER"
expect_out "PASS"
remove_fob
[ -f "$PD/station-journal.db" ] || fail "no station-journal.db in $PD"
expect_ok audit verify
# The sample configuration of the release zip, as shipped (CRLF), read by default, with
# this line's station id and reader: `provision` takes the reader from it.
sed 's/\r$//; s/^station_id = .*/station_id = "E2E-WINE-01"/; s/^reader = .*/reader = "'"$READER"'"/; s/$/\r/' \
  packaging/windows/station.toml > "$PD/station.toml"
grep -q "^reader = \"$READER\"" "$PD/station.toml" || fail "no reader line in the sample station.toml"
insert_fob 04E2E000000000000004
expect_ok provision
expect_out "PASS"
remove_fob
expect_ok audit export --format json
expect_out 'E2E-WINE-01'
pass

# The reference KLMS (the Linux build) with its development PKI: the exe takes each fob's
# keys from it over mutual TLS and uploads and anchors its journal there.
begin "KLMS source: keys per fob over mutual TLS, journal uploaded and anchored"
PKI="$WORK/pki"
"$KLMS" pki init "$PKI" --station E2E-WINE-01 > "$WORK/out" 2>&1 || fail "kf-klms pki init failed"
KLMS_PORT=0
for _ in $(seq 50); do
  p=$((20000 + RANDOM % 40000))
  if port_free "$p"; then KLMS_PORT=$p; break; fi
done
[ "$KLMS_PORT" -ne 0 ] || fail "no free TCP port for the KLMS"
sed -i "s/^bind = .*/bind = \"127.0.0.1:$KLMS_PORT\"/" "$PKI/klms.toml"
"$KLMS" serve --config "$PKI/klms.toml" > "$WORK/klms.log" 2>&1 &
KLMS_PID=$!
klms_listening() { ! port_free "$KLMS_PORT"; }
wait_until 30 klms_listening || { cp "$WORK/klms.log" "$WORK/out"; fail "kf-klms serve did not listen"; }
# The station's identity and the KLMS CA, where a line PC keeps them.
mkdir -p "$APP_UNIX/pki"
cp -p "$PKI/ca.pem" "$PKI/E2E-WINE-01.pem" "$PKI/E2E-WINE-01.key" "$APP_UNIX/pki/"
printf '%s\r\n' 'station_id = "E2E-WINE-01"' '[source]' 'kind = "klms"' '[klms]' \
  "url = \"https://127.0.0.1:$KLMS_PORT\"" \
  "ca = '$APP_WIN\\pki\\ca.pem'" "cert = '$APP_WIN\\pki\\E2E-WINE-01.pem'" \
  "key = '$APP_WIN\\pki\\E2E-WINE-01.key'" 'reader_id = "LINE_E2E_READER_01"' > "$APP_UNIX/klms station.toml"
J_KLMS="$APP_WIN"'\data\klms journal.db'
AUDIT_FILE="$APP_UNIX/data/klms audit.jsonl"
MASTER="$(tr -d '\r\n' < "$PKI/master-key.hex")"
for uid in 04E2E000000000000041 04E2E000000000000042; do
  # A fob whose static keys are the KLMS's KDF3 keys for its UID (key version 1).
  "$KLMS" derive --master-key "$MASTER" --uid "$uid" > "$WORK/keys.json" 2> "$WORK/out" || fail "kf-klms derive failed"
  keys="$(python3 -c 'import json,sys; k=json.load(open(sys.argv[1])); print(k["enc"]+":"+k["mac"]+":"+k["dek"])' "$WORK/keys.json")" \
    || fail "kf-klms derive: no keys in $(cat "$WORK/keys.json")"
  "$LIN" sim serve --vpcd "127.0.0.1:$PORT" --uid "$uid" --kvn 1 --keys "$keys" > "$WORK/sim-$uid.log" 2>&1 &
  SIM_PID=$!
  wait_until 20 fob_present || fail "fob $uid not seen in $READER"
  expect_ok provision --reader "$READER" --config "$APP_WIN"'\klms station.toml' --journal "$J_KLMS" \
    --audit-file "$APP_WIN"'\data\klms audit.jsonl'
  expect_out "PASS  $uid"
  remove_fob
done
# Both outcomes uploaded (acknowledged, none pending), and the KLMS anchored the journal's
# last record.
expect_ok audit list --journal "$J_KLMS"
tr -d '\r' < "$WORK/out" > "$WORK/list"
[ "$(grep -c '  outcome  .*  acknowledged$' "$WORK/list")" -eq 2 ] || fail "the two outcomes are not acknowledged by the KLMS"
last_seq=$(tail -1 "$WORK/list" | awk '{print $1}')
"$KLMS" chain state --config "$PKI/klms.toml" > "$WORK/out" 2>&1 || fail "kf-klms chain state failed"
grep -q "^E2E-WINE-01 *$last_seq " "$WORK/out" || fail "the KLMS did not anchor record $last_seq of E2E-WINE-01"
[ "$(grep -c . "$AUDIT_FILE")" -ge 2 ] || fail "no audit records in $AUDIT_FILE"
kill -TERM "$KLMS_PID"
wait "$KLMS_PID" || true
KLMS_PID=""
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

begin "kf-station.exe audit verify (provision, container, KLMS, run journals)"
for j in "$J_PROV" "$APP_WIN"'\data\container.db' "$J_KLMS" "$J_RUN"; do
  expect_ok audit verify --journal "$j"
done
pass

# Every secret file the exe wrote (journal keys: all *.key, outside the pool and the
# station's KLMS identity that the Linux tools wrote) must
# be owner-only. acl-check.exe probes whether this Wine keeps a DACL as written
# (wine-staging) and then demands exactly kf-secret-file's DACL; Debian's Wine
# 8.0 keeps only Unix mode bits and rebuilds the DACL from them (server/file.c:
# sd_to_mode when creating, mode_to_sd when queried), so there the DACL must
# name no one but the owner and SYSTEM, and the mode no "other" bits (Everyone).
# The group bits never appear in Wine's DACL: sd_to_mode gives a SID of the
# creating token (here Administrators) user+group bits, hence 750 for 770 & ~022.
# A journal and an audit file (created without a DACL) must come out open: the
# check can fail.
begin "secret files owner-only (acl-check.exe, mode); journal, audit file not"
to_win() { local p="${1#"$WINEPREFIX"/drive_c/}"; printf 'C:\\%s' "${p//\//\\}"; }
SDDL="$(sed -n 's/^pub const WINDOWS_SDDL: &str = "\(.*\)";$/\1/p' crates/kf-secret-file/src/lib.rs)"
[ -n "$SDDL" ] || fail "WINDOWS_SDDL not found in kf-secret-file"
mapfile -t KEYS < <(find "$APP_UNIX" "$PD" -name '*.key' -not -path "$POOL_UNIX/*" -not -path "$APP_UNIX/pki/*" | sort)
# A journal key per journal: provision, container, the %ProgramData% default, KLMS,
# five runs.
[ ${#KEYS[@]} -ge 9 ] || fail "only ${#KEYS[@]} key files: ${KEYS[*]}"
WIN_KEYS=()
for k in "${KEYS[@]}"; do
  mode=$(stat -c %a "$k")
  [ $((8#$mode & 7)) -eq 0 ] || fail "$k: mode $mode gives others access"
  WIN_KEYS+=("$(to_win "$k")")
done
"$WINE" "$WORK/bridge/acl-check.exe" "$SDDL" "${WIN_KEYS[@]}" > "$WORK/out" 2>&1 || fail "a secret file is not owner-only"
RULE="$(tr -d '\r' < "$WORK/out" | sed -n 's/^acl-check: .* owner-only (\(.*\))$/\1/p')"
"$WINE" "$WORK/bridge/acl-check.exe" "$SDDL" --open "$(to_win "$APP_UNIX/data/run journal.db")" "$(to_win "$AUDIT_FILE")" \
  > "$WORK/out" 2>&1 || fail "the negative control (journal, audit file) was reported owner-only"
pass
echo "      ${#KEYS[@]} key files, rule: $RULE, modes: $(stat -c %a "${KEYS[@]}" | sort -u | tr '\n' ' ')"

echo "windows-e2e: all steps passed"
