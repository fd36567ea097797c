#!/usr/bin/env bash
# The Windows release artifact: dist/keyfob-station-<version>-windows-x86_64.zip
# with kf-station.exe, the sample station.toml, README-windows.txt (CRLF line
# endings, for Notepad) and SHA256SUMS.txt; prints the zip's SHA-256 and size.
# Usage: scripts/package-windows.sh [EXE]
#   EXE  an already built kf-station.exe (default: scripts/windows-build.sh's,
#        built when missing or stale)
#   DIST_DIR  output directory (default dist)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v zip >/dev/null || scripts/setup-deps.sh --wine
exe="${1:-}"
[ -n "$exe" ] || exe="$(scripts/windows-build.sh)"
[ -f "$exe" ] || { echo "package-windows: no $exe" >&2; exit 1; }
head -c 2 "$exe" | grep -q MZ || { echo "package-windows: $exe is not a Windows executable" >&2; exit 1; }
version="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)"
name="keyfob-station-$version-windows-x86_64"
dist="${DIST_DIR:-dist}"
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/$name" "$dist"
cp "$exe" "$stage/$name/kf-station.exe"
for f in README-windows.txt station.toml; do
  sed 's/\r$//; s/$/\r/' "packaging/windows/$f" > "$stage/$name/$f"
done
(cd "$stage/$name" && sha256sum kf-station.exe | sed 's/$/\r/' > SHA256SUMS.txt)
zip_path="$PWD/$dist/$name.zip"
rm -f "$zip_path"
# Fixed timestamps: the same exe gives the same zip.
find "$stage/$name" -exec touch -d '2000-01-01 00:00:00 UTC' {} +
(cd "$stage" && TZ=UTC zip -q -X -r "$zip_path" "$name")
echo "$dist/$name.zip"
echo "  sha256 $(sha256sum "$zip_path" | cut -d' ' -f1)"
echo "  size   $(stat -c %s "$zip_path") bytes (kf-station.exe $(stat -c %s "$exe") bytes)"
