#!/usr/bin/env bash
# Fetches liblistenbrainz, MetaBrainz's own Python client of the ListenBrainz
# API, into ./.cache/liblistenbrainz/<version>/ as its wheel (pure Python,
# imported straight from the zip), where the listens service's client test
# (internal/listens TestLiblistenbrainzClient) runs it against the service.
# Idempotent and quick: does nothing when that version is there. Needs
# python3 with pip and the requests module (Debian: python3-pip,
# python3-requests); `pip download --no-deps` only downloads, it installs
# and runs nothing.
set -euo pipefail
cd "$(dirname "$0")/../.."
VERSION="${LIBLISTENBRAINZ_VERSION:-0.7.0}"
DIR=".cache/liblistenbrainz/$VERSION"
WHEEL="liblistenbrainz-$VERSION-py3-none-any.whl"

if [ -f "$DIR/$WHEEL" ]; then
  exit 0
fi
command -v python3 >/dev/null || { echo "listenbrainz: python3 is required" >&2; exit 1; }
python3 -c 'import requests' 2>/dev/null || { echo "listenbrainz: the python3 requests module is required (apt-get install python3-requests)" >&2; exit 1; }
echo "listenbrainz: fetching liblistenbrainz==$VERSION" >&2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --no-deps -d "$tmp" "liblistenbrainz==$VERSION"
test -f "$tmp/$WHEEL" || { echo "listenbrainz: pip did not fetch $WHEEL" >&2; exit 1; }
mkdir -p "$DIR"
mv "$tmp/$WHEEL" "$DIR/$WHEEL"
