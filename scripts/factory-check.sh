#!/usr/bin/env bash
# The factory build of kf-station (`--no-default-features --features pcsc`)
# links neither the virtual fob (kf-card) nor the reference KLMS server
# (kf-klms), nor the benchmark and test crates; its simulator commands exit 2
# and say how to get them. Called by scripts/test.sh.
#
# --tree-only: the dependency tree alone. The Windows exe is the factory build, and
# scripts/windows-e2e.sh checks its contents and its simulator commands under Wine;
# scripts/test.sh passes it when that step runs, saving a build with other features.
set -euo pipefail
tree_only=0
[ "${1:-}" = "--tree-only" ] && tree_only=1
cd "$(dirname "$0")/.."

absent=(kf-card kf-klms kf-bench kf-testkit)

# Normal (linked) dependencies of kf-station, one package name a line.
linked() {
  cargo tree -q -p kf-station -e normal --prefix none --format '{p}' "$@" |
    awk '{print $1}' | sort -u
}

default_tree="$(linked --features pcsc)"
factory_tree="$(linked --no-default-features --features pcsc)"

# Control: the default build does link them, so the check below can fail.
for crate in kf-card kf-klms kf-bench; do
  if ! grep -qx "$crate" <<<"$default_tree"; then
    echo "factory check broken: $crate is not in the default build's tree" >&2
    exit 1
  fi
done
for crate in "${absent[@]}"; do
  if grep -qx "$crate" <<<"$factory_tree"; then
    echo "the factory build links $crate:" >&2
    cargo tree -p kf-station --no-default-features --features pcsc -e normal -i "$crate" >&2
    exit 1
  fi
done
# kf-transport's simulated cards and links (feature `sim`) stay out too; the
# default build turns the feature on, so the check can fail.
transport_features() {
  cargo tree -q -p kf-station -e features,normal -i kf-transport --prefix none "$@" |
    grep -o 'kf-transport feature "[a-z0-9-]*"' | sort -u
}
if ! transport_features --features pcsc | grep -q '"sim"'; then
  echo "factory check broken: the default build does not turn on kf-transport/sim" >&2
  exit 1
fi
if transport_features --no-default-features --features pcsc | grep -q '"sim"'; then
  echo "the factory build turns on kf-transport/sim:" >&2
  cargo tree -p kf-station --no-default-features --features pcsc -e features -i kf-transport >&2
  exit 1
fi
echo "factory build: $(wc -l <<<"$factory_tree") crates linked, none of ${absent[*]}, no simulated links"
[ "$tree_only" = 1 ] && exit 0

cargo test -q -p kf-station --no-default-features --features pcsc --test factory_build
