#!/usr/bin/env bash
# Webhook ingestion benchmark: N signed orders/create deliveries at concurrency C, each sent twice, against the app on a
# private PostgreSQL; the ceiling is the same bodies posted to an endpoint with no database, measured in the same run.
# One run per group-commit batch size (Webhooks:Ingest:MaxBatch; 1 = one transaction per delivery), each on a freshly
# started app, then a summary table: batch size against throughput, latency and the ratio to the ceiling.
# With INSTANCES=4, four app instances share the database and the load (C per instance).
# Usage: scripts/bench/ingest.sh [N] [CONCURRENCY]
#   env: BATCHES="1 8 32 64" (max batch sizes to run), INSTANCES=1, WRITERS (Webhooks:Ingest:Writers, default the app's;
#        at batch 1, WRITERS_AT_BATCH_1, default CONCURRENCY: one transaction per delivery, as many as in flight),
#        INGEST_APP_PORT=5090 (first instance; the others take the next ports), INGEST_PG_PORT=55434,
#        WARM=0 (deliveries of another store written first, then ANALYZE, as a database in season holds history and
#        statistics; 0, the default, measures a freshly created database),
#        WARM_APP=min(N,3000) (deliveries of another shop sent to each freshly started app before its measured pass, then
#        its risk scoring let finish, in phases until the JIT compiles under 1 % of a phase, at most ten: a running app
#        has compiled its hot code; 0 measures a cold app),
#        RISK=off (the measured and warm-up shops' order risk switched off, as a merchant can: what ingestion costs without the
#        risk scoring each order queues; on by default, as the aims ask),
#        INGEST_LATENCY_DUMP=FILE (each first delivery's start and latency in ms, after a line "# began UNIX_MS"),
#        TRAFFIC=0 (visitors the measured shop has seen, as a store in season: each exposed to its two experiments and shown
#        five recommendations, a fifth of them the orders' customers; 0 measures a store with no traffic yet),
#        ADDRESSES=254 (browser addresses the orders are drawn from: 254 gives each about 118 orders of a 30,000-order month,
#        the shape of every run before 6 Dec 2026; a store's shoppers come from about as many addresses as there are shoppers)
set -euo pipefail
ROOT_DIR="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT_DIR"
source scripts/lib/dotnet.sh
source scripts/lib/postgres.sh
source scripts/lib/app.sh
N="${1:-20000}"; C="${2:-32}"
PORT="${INGEST_APP_PORT:-5090}"; PG_BENCH_PORT="${INGEST_PG_PORT:-55434}"
BATCHES="${BATCHES:-1 8 32 64}"; INSTANCES="${INSTANCES:-1}"; WARM="${WARM:-0}"

mkdir -p .run
[ -n "${KEEP_BENCH_DB:-}" ] || pg_reset bench   # a fresh cluster: every run measures the same thing
pg_up bench "$PG_BENCH_PORT"
PIDS=()
stop_apps() { for p in "${PIDS[@]}"; do APP_PID="$p" app_stop; done; PIDS=(); }
trap 'stop_apps; pg_down bench' EXIT
bench_app_env "$PORT" "$ROOT_DIR/.run/bench-keyring.pfx"
# Metrics on (as in production), so the app's warm-up can read the JIT's compilation time.
OPERATOR_TOKEN="$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export Scheduling__DashboardToken="$OPERATOR_TOKEN"

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB; app and load generator share it; load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "N = $N per pass, concurrency $C per instance, $INSTANCES instance(s), max batch sizes: $BATCHES"
RESULTS=()
RUN=0
if [ "$WARM" != 0 ]; then
  unset Webhooks__Ingest__MaxBatch Webhooks__Ingest__Writers
  app_start "$PORT" ".run/bench-app-warm.log"; PIDS+=("$APP_PID")
  echo "--- warming: $WARM deliveries of another store, then ANALYZE"
  dotnet scripts/bench/LoadGen/bin/Release/net10.0/LoadGen.dll ingest --url "http://127.0.0.1:$PORT" --secret "$SECRET" \
    --conn "$PG_CONN" --n "$WARM" --concurrency "$C" --label warm --run 99 | grep -E '^orders stored' || { echo "warming failed"; exit 1; }
  stop_apps
  runuser -u postgres -- psql -h 127.0.0.1 -p "$PG_BENCH_PORT" -U postgres -d pluginapp -qc "ANALYZE"
fi
for batch in $BATCHES; do
  export Webhooks__Ingest__MaxBatch="$batch"
  # Why 32 writers at batch 1: one transaction per delivery with as many in flight as the load sends, as before group commit.
  if [ "$batch" = 1 ]; then export Webhooks__Ingest__Writers="${WRITERS_AT_BATCH_1:-$C}"
  elif [ -n "${WRITERS:-}" ]; then export Webhooks__Ingest__Writers="$WRITERS"; else unset Webhooks__Ingest__Writers; fi
  URLS=""
  for i in $(seq 0 $((INSTANCES - 1))); do
    app_start "$((PORT + i))" ".run/bench-app-$i.log"; PIDS+=("$APP_PID")
    URLS="${URLS:+$URLS,}http://127.0.0.1:$((PORT + i))"
  done
  echo "--- max batch $batch"
  out="$(dotnet scripts/bench/LoadGen/bin/Release/net10.0/LoadGen.dll ingest --url "$URLS" --secret "$SECRET" \
    --conn "$PG_CONN" --n "$N" --concurrency "$((C * INSTANCES))" --label "$batch" --run "$RUN" \
    --warm-app "${WARM_APP:-$(( N < 3000 ? N : 3000 ))}" --token "$OPERATOR_TOKEN" --risk "${RISK:-on}" --traffic "${TRAFFIC:-0}" --addresses "${ADDRESSES:-254}")" || { echo "$out"; exit 1; }
  echo "$out" | grep -v '^RESULT|'
  RESULTS+=("$(echo "$out" | grep '^RESULT|')")
  stop_apps
  RUN=$((RUN + 1))
done

echo
echo "=== $(date -u '+%d %b %Y %H:%M UTC'): $INSTANCES instance(s), concurrency $((C * INSTANCES)), N = $N, warmed with $WARM, order risk ${RISK:-on}, traffic ${TRAFFIC:-0} visitors, ${ADDRESSES:-254} browser addresses, load average now $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-10s %10s %12s %9s %9s %12s %12s %16s %14s\n' "max batch" "ceiling/s" "first/s" "p50 ms" "p99 ms" "repeated/s" "per commit" "first/ceiling" "CPU ms/first"
for r in "${RESULTS[@]}"; do
  IFS='|' read -r _ label ceiling first p50 p99 repeat per ratio failures ok cpu <<<"$r"
  printf '%-10s %10s %12s %9s %9s %12s %12s %16s %14s%s\n' "$label" "$ceiling" "$first" "$p50" "$p99" "$repeat" "$per" "$ratio" "$cpu" \
    "$([ "$failures" = 0 ] && [ "$ok" = True ] || echo "  (failures $failures, orders stored ok: $ok)")"
done
