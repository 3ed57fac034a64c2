#!/usr/bin/env bash
# Fetches hls.js (the player the web app will use) from npm and unpacks it into
# ./.cache/hlsjs/<version>/package, where the browser playback test
# (internal/steering TestPlaybackWithHLSJS) serves dist/hls.min.js to headless
# Chromium. Idempotent and quick: does nothing when that version is unpacked.
# Needs npm (Node 20 is on the machine); `npm pack` only downloads the tarball,
# it runs no install scripts.
set -euo pipefail
cd "$(dirname "$0")/../.."
VERSION="${HLSJS_VERSION:-1.7.4}"
DIR=".cache/hlsjs/$VERSION"

if [ -f "$DIR/package/dist/hls.min.js" ]; then
  exit 0
fi
command -v npm >/dev/null || { echo "hlsjs: npm is required (Node 20)" >&2; exit 1; }
echo "hlsjs: fetching hls.js@$VERSION" >&2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
tgz=$(cd "$tmp" && npm pack --silent "hls.js@$VERSION")
tar -xzf "$tmp/$tgz" -C "$tmp"
test -f "$tmp/package/dist/hls.min.js" || { echo "hlsjs: $tgz has no dist/hls.min.js" >&2; exit 1; }
mkdir -p "$DIR"
rm -rf "$DIR/package"
mv "$tmp/package" "$DIR/package"
