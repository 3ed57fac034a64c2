#!/usr/bin/env bash
# Audio-processing benchmark: internal/media's Process on a generated 4-minute
# track (FLAC and MP3, each with a cover) against the bare ffmpeg commands
# doing the same probe, loudness, transcodes, peaks and covers, wall and CPU
# seconds side by side; then the pipeline end to end in the same run (the
# embedded platform: S3 PUT acknowledged → upload record ready, and a batch of
# 20 distinct 30-second tracks), each beside bare ffmpeg on the same files.
# Writes docs/bench/ingest.md. Run from the repository root (make bench does).
# About 12 minutes on 2 idle cores; OVERTURE_BENCH_INGEST_E2E=false skips the
# end-to-end part.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash hack/deps/base.sh
out="docs/bench/ingest.md"
mkdir -p docs/bench
tmp="$(mktemp)"
trap 'rm -f "$tmp"' EXIT
cmd=(go run ./hack/bench/ingest -seconds "${OVERTURE_BENCH_INGEST_SECONDS:-240}" -runs "${OVERTURE_BENCH_INGEST_RUNS:-3}"
  -e2e="${OVERTURE_BENCH_INGEST_E2E:-true}" -batch "${OVERTURE_BENCH_INGEST_BATCH:-20}" -batch-seconds "${OVERTURE_BENCH_INGEST_BATCH_SECONDS:-30}")
start=$(date +%s)
load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
timeout 1800 "${cmd[@]}" > "$tmp"
load_after="$(cut -d' ' -f1-3 /proc/loadavg)"
{
  echo "# Ingestion: audio processing and the pipeline end to end"
  echo
  echo "Command: \`bash hack/bench/ingest.sh\` (runs \`${cmd[*]}\`), $(date -u +%Y-%m-%d), $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo) RAM, $(go env GOVERSION), $(ffmpeg -version | head -1 | cut -d' ' -f1-3). Took $(( $(date +%s) - start )) s. Load average (1/5/15 min) before: ${load_before}, after: ${load_after} — on a machine shared with other work, read the figures with that in mind; the ratios within one run are the comparable part."
  echo
  cat "$tmp"
} > "$out"
echo "wrote $out"
