#!/usr/bin/env bash
# Search benchmark: p50/p99 of GET /v1/search at 200 requests/s over 100,000
# tracks on Bleve and on OpenSearch, each without and with the Redis hot cache,
# and commit-to-searchable latency at 2,000 changes/s through CDC and the
# search-indexer. Writes docs/bench/search.md. Run from the repository root
# (make bench does). Bounded: about 5 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash hack/deps/opensearch.sh
out="docs/bench/search.md"
mkdir -p docs/bench
tmp="$(mktemp)"
trap 'rm -f "$tmp"' EXIT
cmd=(go run ./hack/bench/search -tracks "${OVERTURE_BENCH_SEARCH_TRACKS:-100000}" -rate 200 -duration 15s -changes 2000 -change-warmup 10s -change-duration 10s)
start=$(date +%s)
load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
timeout 600 "${cmd[@]}" > "$tmp"
load_after="$(cut -d' ' -f1-3 /proc/loadavg)"
{
  echo "# Search read model"
  echo
  echo "Command: \`bash hack/bench/search.sh\` (runs \`${cmd[*]}\`), $(date -u +%Y-%m-%d), $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo) RAM, $(go env GOVERSION), OpenSearch 2.19.6 (1 GiB heap, one node on loopback), Bleve v2.6.3 (scorch), Redis $(redis-server --version | awk '{print $3}' | cut -d= -f2). Everything — load generator, services, databases — shares the machine. Took $(( $(date +%s) - start )) s. Load average (1/5/15 min) before: ${load_before}, after: ${load_after} — on a machine shared with other work, read the figures with that in mind; the ratios within one run are the comparable part."
  echo
  cat "$tmp"
} > "$out"
echo "wrote $out"
