#!/usr/bin/env bash
# Embedded broker benchmark: events/s delivered durably to a no-op function
# (in-process and HTTP ingress) beside a plain PostgreSQL INSERT+DELETE queue on
# the same server, and ingress-to-handler latency at half the in-process rate.
# Writes docs/bench/broker.md. Run from the repository root (make bench does).
set -euo pipefail
cd "$(dirname "$0")/../.."
out="docs/bench/broker.md"
mkdir -p docs/bench
rm -f "$out"
events="${OVERTURE_BENCH_BROKER_EVENTS:-30000}"
OVERTURE_BENCH_BROKER_OUT="$PWD/$out" OVERTURE_BENCH_BROKER_EVENTS="$events" \
  go test -count=1 -timeout 20m -run '^TestBrokerBenchReport$' -v ./internal/broker | grep -E 'bench_test|^(ok|FAIL|---)' || true
test -s "$out" || { echo "broker benchmark wrote nothing to $out" >&2; exit 1; }
echo "wrote $out"
