#!/usr/bin/env bash
# Interop with software nobody on this project wrote, through the real PC/SC
# stack: pcscd + vpcd + `kf-station sim serve`, then
#   - opensc-tool reads the UID and selects the key-fob applet; pcsc_scan sees its ATR,
#   - Yubico's yubikit (PyPI yubikey-manager, over pyscard) opens an SCP03
#     level-33 channel and exchanges protected STORE DATA (bench/interop_scp03.py).
# Needs root (pcscd) and the packages of scripts/setup-deps.sh. Fails loudly.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
"$PYTHON" -c 'import smartcard, yubikit.core.smartcard.scp' 2>/dev/null \
  || "$PYTHON" -m pip install --quiet --disable-pip-version-check pyscard yubikey-manager
if pgrep -x pcscd >/dev/null; then
  echo "interop: a pcscd is already running; stop it first" >&2
  exit 1
fi
bin="$(scripts/build-bins.sh)/kf-station"
log="$(mktemp -d)"
pcscd --foreground > "$log/pcscd.log" 2>&1 &
pcscd_pid=$!
sim_pid=""
cleanup() {
  [ -n "$sim_pid" ] && kill -INT "$sim_pid" 2>/dev/null || true
  kill -TERM "$pcscd_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$log"
}
trap cleanup EXIT
# the virtual fob retries its vpcd connection until pcscd listens
"$bin" sim serve --vpcd 127.0.0.1:35963 --uid 04DD0000000000000004 > "$log/sim.log" 2>&1 &
sim_pid=$!
present=""
for _ in $(seq 150); do
  if "$bin" readers --json 2>/dev/null | grep -q '"card_present": true'; then present=1; break; fi
  sleep 0.2
done
[ -n "$present" ] || { cat "$log/pcscd.log" "$log/sim.log" >&2; echo "interop: no fob seen in 30 s" >&2; exit 1; }
reader="$("$bin" readers --json | "$PYTHON" -c 'import json,sys; print(next(r["name"] for r in json.load(sys.stdin) if r["card_present"]))')"
echo "interop: virtual fob in $reader"
out="$(opensc-tool --reader 0 -s FFCA000000 -s 00A4040005A00000085700 2>&1)"
echo "$out" | grep -q "04 DD 00 00 00 00 00 00 00 04" || { echo "$out" >&2; echo "opensc-tool: UID not read" >&2; exit 1; }
echo "$out" | grep -c "SW1=0x90, SW2=0x00" | grep -q 2 || { echo "$out" >&2; echo "opensc-tool: SELECT failed" >&2; exit 1; }
echo "interop: opensc-tool read the UID and selected the applet"
scan="$(pcsc_scan -c -n 2>&1 || true)"
echo "$scan" | grep -q "3B 8A 80 01 80 73 C0 01 C0 54 4A 43 4F 50" || { echo "$scan" >&2; echo "pcsc_scan: fob ATR not seen" >&2; exit 1; }
echo "interop: pcsc_scan sees the fob's ATR"
"$PYTHON" bench/interop_scp03.py "$reader"
