#!/usr/bin/env bash
# Fetches chDB — ClickHouse as a shared library, the embedded engine of the
# statistics store's ClickHouse backend (STATS_BACKEND=clickhouse, see
# docs/stats.md) — from the npm package @chdb/lib-linux-x64-gnu into
# ./.cache/chdb/<version>/libchdb.so, where internal/stats finds it
# (CHDB_LIB_PATH overrides). Idempotent and quick: does nothing when that
# version is there. The tarball is ~178 MB, the library ~566 MB: never commit
# it (.cache/ is gitignored). The exact version is named because the
# package's `latest` tag is older. `npm pack` only downloads the tarball; it
# runs no install scripts.
set -euo pipefail
cd "$(dirname "$0")/../.."
VERSION="${CHDB_VERSION:-26.7.3-stable.1}"
DIR=".cache/chdb/$VERSION"

if [ -s "$DIR/libchdb.so" ]; then
  exit 0
fi
command -v npm >/dev/null || { echo "chdb: npm is required (hack/deps/base.sh installs it)" >&2; exit 1; }
echo "chdb: fetching @chdb/lib-linux-x64-gnu@$VERSION (~178 MB)" >&2
mkdir -p .cache/chdb
tmp=$(mktemp -d .cache/chdb/tmp.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
tgz=$(cd "$tmp" && npm pack --silent "@chdb/lib-linux-x64-gnu@$VERSION")
tar -xzf "$tmp/$tgz" -C "$tmp"
rm -f "$tmp/$tgz"
lib=$(find "$tmp/package" -name 'libchdb.so' -type f | head -1)
test -n "$lib" || { echo "chdb: $tgz has no libchdb.so" >&2; exit 1; }
mkdir -p "$DIR"
# Same file system (.cache/chdb/tmp.*): the rename is atomic, so a reader
# never sees half a library.
mv "$lib" "$DIR/libchdb.so.tmp"
mv "$DIR/libchdb.so.tmp" "$DIR/libchdb.so"
echo "chdb: $DIR/libchdb.so" >&2
