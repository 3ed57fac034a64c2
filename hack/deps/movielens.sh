#!/usr/bin/env bash
# Fetches MovieLens-100K (943 users × 1,682 movies, 100,000 timestamped
# ratings; GroupLens terms) as the PyPI wheel recbole==1.2.1 ships it, and
# leaves ./.cache/movielens/ml-100k.inter (RecBole's atomic file: a header
# line, then user, item, rating, timestamp separated by tabs). The
# recommendation evaluation (internal/recommend TestMovieLens, docs/
# recommendations.md) runs on it as a second, public check of its code. The
# file is never committed. Idempotent and quick: does nothing when the file
# is there. Needs pip (installs python3-pip with apt-get when missing);
# `pip download --no-deps` fetches the wheel only and runs nothing from it.
set -euo pipefail
cd "$(dirname "$0")/../.."
VERSION="${RECBOLE_VERSION:-1.2.1}"
DIR=".cache/movielens"
OUT="$DIR/ml-100k.inter"

if [ -s "$OUT" ]; then
  exit 0
fi
pip=()
if command -v pip3 >/dev/null 2>&1; then
  pip=(pip3)
elif python3 -m pip --version >/dev/null 2>&1; then
  pip=(python3 -m pip)
else
  SUDO=
  if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
  echo "movielens: installing python3-pip" >&2
  export DEBIAN_FRONTEND=noninteractive
  if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*_Packages' -mmin -60 2>/dev/null | head -1)" ]; then
    $SUDO apt-get update -qq
  fi
  $SUDO apt-get install -y -qq --no-install-recommends python3-pip </dev/null
  pip=(python3 -m pip)
fi
echo "movielens: fetching recbole==$VERSION (MovieLens-100K inside)" >&2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"${pip[@]}" download --quiet --no-deps --only-binary=:all: --dest "$tmp" "recbole==$VERSION" >&2
whl=$(ls "$tmp"/recbole-"$VERSION"-*.whl)
python3 - "$whl" "$tmp/ml-100k.inter" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, open(sys.argv[2], "wb") as out:
    out.write(z.read("recbole/dataset_example/ml-100k/ml-100k.inter"))
PY
rows=$(($(wc -l < "$tmp/ml-100k.inter") - 1))
if [ "$rows" != 100000 ]; then
  echo "movielens: expected 100000 ratings in ml-100k.inter, found $rows" >&2
  exit 1
fi
mkdir -p "$DIR"
mv "$tmp/ml-100k.inter" "$OUT"
