#!/usr/bin/env bash
# KLMS issuance for every key backend × ledger pairing (BENCHMARKS.md):
#   file key + SQLite, SoftHSM2 + SQLite, file key + PostgreSQL,
#   SoftHSM2 + PostgreSQL, and three instances on one PostgreSQL.
# Starts a throwaway SoftHSM2 token and a throwaway PostgreSQL (durable
# defaults: fsync and synchronous_commit on) on a random loopback port, and
# stops both at the end.
# Usage: scripts/bench-klms-backends.sh [REQUESTS=2000] [LEVELS=1,8,64]
set -euo pipefail
cd "$(dirname "$0")/.."
requests="${1:-2000}"
levels="${2:-1,8,64}"
cargo build -q --release -p kf-klms
bin="${CARGO_TARGET_DIR:-target}/release/kf-klms"
module=/usr/lib/softhsm/libsofthsm2.so
[ -f "$module" ] || { echo "SoftHSM2 missing: scripts/setup-deps.sh" >&2; exit 1; }
pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$pg_bin/initdb" ] || { echo "PostgreSQL missing: scripts/setup-deps.sh" >&2; exit 1; }

work=$(mktemp -d)
chmod 755 "$work"   # the postgres user must reach its data directory
pg_pid=""
as_pg=()
cleanup() {
  if [ -n "$pg_pid" ]; then "${as_pg[@]}" "$pg_bin/pg_ctl" -D "$work/pg/data" -m fast stop >/dev/null 2>&1 || kill "$pg_pid"; fi
  rm -rf "$work"
}
trap cleanup EXIT

# SoftHSM2 token with the master key generated inside it.
mkdir -p "$work/tokens"
printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' "$work/tokens" >"$work/softhsm2.conf"
export SOFTHSM2_CONF="$work/softhsm2.conf"
softhsm2-util --init-token --free --label klms-bench --so-pin 12345678 --pin 1234 >/dev/null
"$bin" pki init "$work/pki" --station bench-station >/dev/null
cat >>"$work/pki/klms.toml" <<EOF

[hsm]
module = "$module"
token_label = "klms-bench"
key_label = "kf-klms-master"
pin_env = "KF_BENCH_HSM_PIN"
EOF
export KF_BENCH_HSM_PIN=1234
"$bin" hsm init --config "$work/pki/klms.toml"

# PostgreSQL as the postgres user when run as root (initdb refuses root).
mkdir -p "$work/pg"
if [ "$(id -u)" -eq 0 ]; then
  chown -R postgres:postgres "$work/pg"
  as_pg=(runuser -u postgres --)
fi
"${as_pg[@]}" "$pg_bin/initdb" -D "$work/pg/data" -U kf --auth=trust -E UTF8 >/dev/null
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"${as_pg[@]}" "$pg_bin/pg_ctl" -D "$work/pg/data" -l "$work/pg/server.log" -w -o \
  "-p $port -k $work/pg -c listen_addresses=127.0.0.1 -c max_connections=300" start >/dev/null
pg_pid=$(head -1 "$work/pg/data/postmaster.pid")
"${as_pg[@]}" "$pg_bin/createdb" -h 127.0.0.1 -p "$port" -U kf klms
url="postgresql://kf@127.0.0.1:$port/klms"

run() {
  echo
  echo "== $1"
  shift
  # The server's log goes to a file; the figures to stdout.
  "$bin" bench --concurrency "$levels" --requests "$requests" --dir "$work/run-$RANDOM" "$@" 2>>"$work/server.log" \
    || { tail -20 "$work/server.log" >&2; exit 1; }
}
# A fresh database per PostgreSQL run, so every run starts from an empty ledger.
fresh_db() {
  "${as_pg[@]}" "$pg_bin/dropdb" -h 127.0.0.1 -p "$port" -U kf klms
  "${as_pg[@]}" "$pg_bin/createdb" -h 127.0.0.1 -p "$port" -U kf klms
}
echo "PostgreSQL $("${as_pg[@]}" "$pg_bin/postgres" --version | awk '{print $3}') (fsync on), $(softhsm2-util --version | head -1 | sed 's/^/SoftHSM /'), $(nproc) cores"
run "file key + SQLite"
run "SoftHSM2 + SQLite" --hsm-config "$work/pki/klms.toml"
run "file key + PostgreSQL" --ledger-url "$url"
fresh_db
run "SoftHSM2 + PostgreSQL" --hsm-config "$work/pki/klms.toml" --ledger-url "$url"
fresh_db
run "three instances, file key + PostgreSQL" --ledger-url "$url" --instances 3
fresh_db
run "three instances, SoftHSM2 + PostgreSQL" --hsm-config "$work/pki/klms.toml" --ledger-url "$url" --instances 3
