#!/usr/bin/env bash
# CDN benchmark: the edge POP against nginx proxy_cache, side by side in one
# run, in front of the same versitygw origin: cache-hit throughput (64 KiB
# segments, 1 MiB files, and an HLS playlist the edge rewrites per request so
# its URIs carry the listener's token; same wrk load), miss-path time to
# first byte, and RSS growth per cached GiB (about half a GiB cached). Writes
# docs/bench/cdn.md. Run from the repository root (make bench does). Takes
# about five minutes.
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v nginx >/dev/null || { echo "cdn bench: nginx not installed (apt-get install nginx-light)" >&2; exit 1; }
command -v wrk >/dev/null || { echo "cdn bench: wrk not installed (apt-get install wrk)" >&2; exit 1; }
mkdir -p .cache/bench
go build -o .cache/bench/cdnbench ./hack/bench/cdn
.cache/bench/cdnbench -out docs/bench/cdn.md -duration "${CDN_BENCH_DURATION:-10s}" -connections 64 -threads 2
echo "wrote docs/bench/cdn.md" >&2
