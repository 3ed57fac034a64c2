#!/usr/bin/env bash
# Bundles the web app (web/src + hls.js from ./.cache/hlsjs, which
# hack/deps/hlsjs.sh fetched before this script: deps run in alphabetical
# order) into internal/webapp/dist with esbuild's Go API — no Node involved.
# The overture binary embeds that directory; it is ignored by git and rebuilt
# on every `make deps` (a second or two once the command is compiled).
set -euo pipefail
cd "$(dirname "$0")/../.."
bash hack/deps/hlsjs.sh
go run ./internal/webapp/build
