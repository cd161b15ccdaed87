#!/usr/bin/env bash
# Crash test of webhook ingestion: start the app, send N signed orders/create deliveries at concurrency C, SIGKILL the
# app once a third of them have been acknowledged, start it again, check that every acknowledged delivery is stored,
# re-send every delivery that was not acknowledged, and check in the database that each delivery and order is stored
# exactly once with all its lines. Prints its counts; exits non-zero if anything acknowledged was lost or stored twice.
# Usage: scripts/bench/crash.sh [N] [CONCURRENCY]
#   env: INGEST_APP_PORT=5090, INGEST_PG_PORT=55434 (its own cluster, "crash"; the same ports as ingest.sh: run one at a time), MAX_BATCH (Webhooks:Ingest:MaxBatch)
set -euo pipefail
ROOT_DIR="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT_DIR"
source scripts/lib/dotnet.sh
source scripts/lib/postgres.sh
source scripts/lib/app.sh
N="${1:-5000}"; C="${2:-32}"
PORT="${INGEST_APP_PORT:-5090}"; PG_BENCH_PORT="${INGEST_PG_PORT:-55434}"

mkdir -p .run
pg_reset crash
pg_up crash "$PG_BENCH_PORT"
trap 'app_stop; pg_down crash' EXIT
bench_app_env "$PORT" "$ROOT_DIR/.run/bench-keyring.pfx"
[ -z "${MAX_BATCH:-}" ] || export Webhooks__Ingest__MaxBatch="$MAX_BATCH"
LOADGEN=(dotnet scripts/bench/LoadGen/bin/Release/net10.0/LoadGen.dll crash --url "http://127.0.0.1:$PORT" --secret "$SECRET"
  --conn "$PG_CONN" --state .run/crash-state.json --concurrency "$C")

echo "$(date -u '+%d %b %Y %H:%M UTC'): N = $N, concurrency $C, max batch ${MAX_BATCH:-as configured}, load average $(cut -d' ' -f1-3 /proc/loadavg)"
app_start "$PORT" .run/crash-app-1.log
"${LOADGEN[@]}" --phase load --n "$N" --kill-pid "$APP_PID" --kill-after "$((N / 3))"
wait "$APP_PID" 2>/dev/null || true; APP_PID=""
app_start "$PORT" .run/crash-app-2.log
"${LOADGEN[@]}" --phase resend
