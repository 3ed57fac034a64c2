#!/usr/bin/env bash
# Recommendation benchmark: a full recompute at 100,000 listeners × 50,000
# tracks × 10 million planted listens on 2 workers — per model (popularity,
# track and artist co-occurrence, ALS) the time to fold the listens, train and
# rank every listener's top 50, the peak resident memory of a process doing
# only that model, and the offline evaluation (precision@10, recall@50,
# NDCG@10, coverage) against popularity. Writes docs/bench/recommend.md. Run
# from the repository root (make bench does). About 15 minutes on 2 idle
# cores (bounded at two hours: on a loaded machine it takes much longer);
# OVERTURE_BENCH_RECOMMEND_LISTENS etc. shrink it. Then the whole recompute
# as the recompute function runs it (the same listens loaded into a
# PostgreSQL statistics store; recommendfn.Function.Recompute: reading,
# every model, the stored models, every listener's result), its phases, a
# CPU profile, and one listener's refresh (artifact.Store.Recommend and the
# refresh job) beside reading their stored result;
# OVERTURE_BENCH_RECOMMEND_WHOLE_ONLY=1 runs only that part and replaces
# only its section of the report. The serving part (GET
# /v1/me/recommendations and GET /v1/me/feed beside plain PostgreSQL and
# Redis reads of the same bytes) runs after it, about a minute;
# OVERTURE_BENCH_RECOMMEND_SERVE_ONLY=1 runs only that part and replaces
# only its section of the report.
set -euo pipefail
cd "$(dirname "$0")/../.."
out="docs/bench/recommend.md"
mkdir -p docs/bench
tmp="$(mktemp)"
bin="$(mktemp)"
prof="$(mktemp)"
trap 'rm -f "$tmp" "$bin" "$prof"' EXIT
go build -o "$bin" ./hack/bench/recommend
size=(-listeners "${OVERTURE_BENCH_RECOMMEND_LISTENERS:-100000}" -tracks "${OVERTURE_BENCH_RECOMMEND_TRACKS:-50000}" -artists "${OVERTURE_BENCH_RECOMMEND_ARTISTS:-5000}" -listens "${OVERTURE_BENCH_RECOMMEND_LISTENS:-10000000}" -weeks 12 -clusters 20 -workers 2)
# profile prints the whole recompute's CPU profile, the functions with the
# most cumulative time (OVERTURE_BENCH_RECOMMEND_PROFILE=file keeps the
# profile).
profile() {
  if [ -n "${OVERTURE_BENCH_RECOMMEND_PROFILE:-}" ]; then cp "$prof" "$OVERTURE_BENCH_RECOMMEND_PROFILE"; fi
  echo
  echo "CPU profile of the whole recompute (\`go tool pprof -top -cum\`, the 30 functions with the most cumulative time; the process's own CPU, not the machine's):"
  echo
  echo '```'
  go tool pprof -top -cum -nodecount=30 "$bin" "$prof" 2>/dev/null | sed -n '/^Showing\|^      flat/,$p'
  echo '```'
}
if [ "${OVERTURE_BENCH_RECOMMEND_WHOLE_ONLY:-}" = 1 ]; then
  load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
  start=$(date +%s)
  GOMAXPROCS=2 timeout 5400 "$bin" -whole-only -cpuprofile "$prof" "${size[@]}" > "$tmp"
  load_after="$(cut -d' ' -f1-3 /proc/loadavg)"
  sect="$(mktemp)"
  trap 'rm -f "$tmp" "$bin" "$prof" "$sect"' EXIT
  {
    sed -n '1,2p' "$tmp"
    echo "Command: \`OVERTURE_BENCH_RECOMMEND_WHOLE_ONLY=1 bash hack/bench/recommend.sh\` (runs \`go run ./hack/bench/recommend -whole-only -cpuprofile … ${size[*]}\`, GOMAXPROCS=2), $(date -u +%Y-%m-%d), took $(( $(date +%s) - start )) s (load included); load average (1/5/15 min) before: ${load_before}, after: ${load_after} — a shared machine: wall times and latencies are upper bounds (compare the CPU time)."
    echo
    sed -n '3,$p' "$tmp"
    profile
    echo
  } > "$sect"
  # Replace the section (or put it before the serving section).
  awk -v sect="$sect" '
    /^## The whole recompute/ { skip = 1; if (!done) { while ((getline l < sect) > 0) print l; done = 1 }; next }
    /^## / && skip { skip = 0 }
    /^## Serving/ && !done { while ((getline l < sect) > 0) print l; done = 1 }
    !skip { print }
    END { if (!done) { print ""; while ((getline l < sect) > 0) print l } }
  ' "$out" > "$tmp"
  cp "$tmp" "$out"
  echo "wrote the whole-recompute section of $out"
  exit 0
fi
if [ "${OVERTURE_BENCH_RECOMMEND_SERVE_ONLY:-}" = 1 ]; then
  load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
  start=$(date +%s)
  GOMAXPROCS=2 timeout 900 "$bin" -serve-only > "$tmp"
  load_after="$(cut -d' ' -f1-3 /proc/loadavg)"
  kept="$(mktemp)"
  trap 'rm -f "$tmp" "$bin" "$prof" "$kept"' EXIT
  sed '/^## Serving/,$d' "$out" > "$kept"
  {
    cat "$kept"
    sed -n '1,2p' "$tmp"
    echo "Command: \`OVERTURE_BENCH_RECOMMEND_SERVE_ONLY=1 bash hack/bench/recommend.sh\` (runs \`go run ./hack/bench/recommend -serve-only\`, GOMAXPROCS=2), $(date -u +%Y-%m-%d), took $(( $(date +%s) - start )) s; load average (1/5/15 min) before: ${load_before}, after: ${load_after} — a shared machine: latencies are upper bounds."
    echo
    sed -n '3,$p' "$tmp"
  } > "$out"
  echo "wrote the serving section of $out"
  exit 0
fi
args=("${size[@]}")
start=$(date +%s)
load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
GOMAXPROCS=2 timeout 7200 "$bin" -cpuprofile "$prof" "${args[@]}" > "$tmp"
load_after="$(cut -d' ' -f1-3 /proc/loadavg)"
{
  echo "# Recommendations: full recompute"
  echo
  echo "Command: \`bash hack/bench/recommend.sh\` (runs \`go run ./hack/bench/recommend ${args[*]}\`, GOMAXPROCS=2), $(date -u +%Y-%m-%d), $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo) RAM, $(go env GOVERSION), gonum v0.17.0. Took $(( $(date +%s) - start )) s. Load average (1/5/15 min) before: ${load_before}, after: ${load_after} — the machine is shared with other work: wall times are upper bounds, the evaluation figures do not depend on load."
  echo
  # The whole recompute's CPU profile goes at the end of its section.
  awk '/^## Serving/ { exit } { print }' "$tmp"
  profile
  echo
  awk '/^## Serving/ { p = 1 } p { print }' "$tmp"
} > "$out"
echo "wrote $out"
