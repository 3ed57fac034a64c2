#!/usr/bin/env bash
# Listening-statistics benchmark (issue 13): 10 million generated listens
# (internal/listengen, fixed seed) bulk-loaded into PostgreSQL and into
# ClickHouse (chDB, in process) side by side — load rate, bytes per listen,
# p50/p95 of every query the product runs, client and server side — then end
# to end from POST /v1/listens (batches of 100, through the embedded
# platform's gateway, listens service, broker and stats-writer) until the
# listens are queryable, beside the bare store's bulk insert of the same rows.
# Writes docs/bench/stats.md. Run from the repository root (make bench does).
# Bounded by a one-hour timeout and ~8 GB of disk in a temporary directory
# (removed after); the committed run took 54 minutes on 2 cores shared with
# other work (load average ~25-38), most of it the two 10-million-row loads
# through Store.Write (PostgreSQL ~11,000/s, ClickHouse ~7,000/s there).
# OVERTURE_BENCH_STATS_LISTENS=200000 makes a quick run (its figures are not
# the committed ones).
set -euo pipefail
cd "$(dirname "$0")/../.."
bash hack/deps/chdb.sh
out="docs/bench/stats.md"
mkdir -p docs/bench
tmp="$(mktemp)"
trap 'rm -f "$tmp"' EXIT
listens="${OVERTURE_BENCH_STATS_LISTENS:-10000000}"
cmd=(go run ./hack/bench/stats -listens "$listens" -backends "${OVERTURE_BENCH_STATS_BACKENDS:-postgres,clickhouse}" -e2e "${OVERTURE_BENCH_STATS_E2E:-200000}" -batch 2500 -samples 100 -query-budget 15s)
start=$(date +%s)
load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
disk_before="$(df -h --output=avail "${TMPDIR:-/tmp}" | tail -1 | xargs)"
timeout 3600 "${cmd[@]}" > "$tmp"
load_after="$(cut -d' ' -f1-3 /proc/loadavg)"
{
  echo "# Listening statistics: PostgreSQL or ClickHouse"
  echo
  echo "Command: \`bash hack/bench/stats.sh\` (runs \`${cmd[*]}\`), $(date -u +%Y-%m-%d), $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo) RAM, $(go env GOVERSION), PostgreSQL $(/usr/lib/postgresql/15/bin/postgres --version | awk '{print $3}'), chDB 26.7.3-stable.1 (ClickHouse 26.7). ${disk_before} free on the temporary directory's disk before. Everything — generator, stores, platform, clients — shares the machine. Took $(( $(date +%s) - start )) s. Load average (1/5/15 min) before: ${load_before}, after: ${load_after} — on a machine shared with other work, read the figures with that in mind; the ratios within one run are the comparable part."
  echo
  cat "$tmp"
} > "$out"
echo "wrote $out"
