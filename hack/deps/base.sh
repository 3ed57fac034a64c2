#!/usr/bin/env bash
# Installs the Debian packages the platform and its tests run for real:
# PostgreSQL server binaries, redis-server, ffmpeg, nginx, wrk, jq, chromium, CA certificates
# and (only when no java is on PATH) a Java 17 runtime. Idempotent and quick
# when everything is present: each need is checked first (dpkg -s or the
# binary itself), and apt-get runs only for what is missing, with one
# `apt-get update` before it. Works as root without a TTY (CI=true); as
# another user it uses sudo when there is something to install.
set -euo pipefail
cd "$(dirname "$0")/../.."

missing=()
need() { # need PACKAGE CHECK...: queue PACKAGE unless CHECK succeeds
  local pkg=$1; shift
  if ! "$@" >/dev/null 2>&1; then missing+=("$pkg"); fi
}
has_postgres() { compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null || [ -n "${PG_BINDIR:-}" ]; }

need postgresql has_postgres
need redis-server command -v redis-server
need ffmpeg command -v ffmpeg
need nginx-light command -v nginx
need wrk command -v wrk
need jq command -v jq  # the README tour reads JSON answers with it
need chromium command -v chromium  # hls.js plays HLS in a real browser (internal/steering TestPlaybackWithHLSJS)
need npm command -v npm  # hack/deps/hlsjs.sh fetches hls.js with npm pack
need ca-certificates dpkg -s ca-certificates
need openjdk-17-jre-headless command -v java
need shellcheck command -v shellcheck  # go test ./internal/deploy lints every hack/**/*.sh

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

SUDO=
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null || { echo "deps: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  SUDO=sudo
fi
echo "deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# Update the package lists once: skip when they are fresher than an hour.
if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*_Packages' -mmin -60 2>/dev/null | head -1)" ]; then
  $SUDO apt-get update -qq
fi
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null
# The postgresql package may start a system cluster on 5432; Overture runs its
# own servers and does not need it, but leaves it alone.
