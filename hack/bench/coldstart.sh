#!/usr/bin/env bash
# Cold start of a function binary: exec-to-ready (first 200 from
# /health/readiness) of `overture func noop`, side by side with a minimal Go
# net/http server built in the same run. Writes docs/bench/coldstart.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS="${RUNS:-100}"
OUT=docs/bench/coldstart.md
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

go build -trimpath -ldflags='-s -w' -o "$TMP/overture" ./cmd/overture
go build -trimpath -ldflags='-s -w' -o "$TMP/reference" ./hack/bench/coldstart/reference
go build -o "$TMP/coldstart" ./hack/bench/coldstart

# One warm-up each so that both binaries are in the page cache, as a node
# that has pulled the image would have them.
"$TMP/coldstart" -n 3 "$TMP/reference" >/dev/null
"$TMP/coldstart" -n 3 "$TMP/overture" func noop >/dev/null

ref=$("$TMP/coldstart" -n "$RUNS" -label "reference: minimal net/http server" "$TMP/reference")
fn=$("$TMP/coldstart" -n "$RUNS" -label "overture func noop" "$TMP/overture" func noop)
p50() { awk -F'|' '{gsub(/ ms| /,"",$4); print $4}' <<<"$1"; }
ratio=$(awk -v a="$(p50 "$fn")" -v b="$(p50 "$ref")" 'BEGIN { printf "%.2f", a / b }')

mkdir -p docs/bench
cat > "$OUT" <<MD
## Function cold start (exec to ready)

Time from \`exec\` of the binary to the first \`200\` from \`GET /health/readiness\`,
polled every 0.2 ms; the process is then stopped and started again. The
reference is the smallest Go server answering the same endpoint, built in the
same run. Goal: under 50 ms.

| binary | runs | p50 | p90 | p99 | min |
| --- | --- | --- | --- | --- | --- |
$ref
$fn

p50 ratio overture / reference: **$ratio**. Binary sizes: overture $(du -h "$TMP/overture" | cut -f1), reference $(du -h "$TMP/reference" | cut -f1).

Command: \`RUNS=$RUNS bash hack/bench/coldstart.sh\` — $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(go env GOVERSION), $(date -u +%Y-%m-%d).
MD
cat "$OUT"
