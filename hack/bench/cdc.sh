#!/usr/bin/env bash
# CDC benchmark: (1) changes/s decoded from the WAL into typed change events,
# beside pg_recvlogical draining an identical pgoutput slot of the same WAL;
# (2) changes/s from a committed backlog to acknowledgement by the embedded
# broker. Writes docs/bench/cdc.md. Run from the repository root (make bench does).
set -euo pipefail
cd "$(dirname "$0")/../.."
out="docs/bench/cdc.md"
mkdir -p docs/bench
rm -f "$out"
changes="${OVERTURE_BENCH_CDC_CHANGES:-200000}"
OVERTURE_BENCH_CDC_OUT="$PWD/$out" OVERTURE_BENCH_CDC_CHANGES="$changes" \
  go test -count=1 -timeout 20m -run '^TestCDCBenchReport$' -v ./cdc | grep -E 'bench_test|^(ok|FAIL|---)' || true
test -s "$out" || { echo "CDC benchmark wrote nothing to $out" >&2; exit 1; }
echo "wrote $out"
