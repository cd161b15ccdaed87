#!/usr/bin/env bash
# Backfill benchmark: the whole Online Retail set served as bulk-operation JSONL by the stand-in Admin API and
# imported by the app's backfill job; the baseline is a plain COPY of the same JSONL lines into an empty table.
# Also prints the app's resident memory: at rest before the backfill, and its peak during the backfill (VmHWM).
# Usage: scripts/bench/backfill.sh   (ports: BENCH_APP_PORT, default 5091; BENCH_PG_PORT, default 55434)
set -euo pipefail
ROOT_DIR="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT_DIR"
source scripts/lib/dotnet.sh
source scripts/lib/postgres.sh
source scripts/lib/app.sh
PORT="${BENCH_APP_PORT:-5091}"
PG_PORT="${BENCH_PG_PORT:-55434}"
mkdir -p .run
pg_reset bench
pg_up bench "$PG_PORT"
cleanup() { app_stop; [ -n "${STANDIN_PID:-}" ] && kill "$STANDIN_PID" 2>/dev/null || true; pg_down bench; }
trap cleanup EXIT

dotnet build app/PluginApp.csproj -c Release -nologo -v q >/dev/null
dotnet build tests/ShopifyStandIn -c Release -nologo -v q >/dev/null
if [ ! -f .run/bench-bulk/orders.jsonl ]; then
  echo "[bench] writing the whole Online Retail set as bulk JSONL"
  scripts/replay.sh --jsonl-out .run/bench-bulk --seed 7 >/dev/null
fi
lines=$(cat .run/bench-bulk/*.jsonl | wc -l)
bytes=$(cat .run/bench-bulk/*.jsonl | wc -c)

SECRET="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
rm -f .run/bench-standin-url
dotnet tests/ShopifyStandIn/bin/Release/net10.0/ShopifyStandIn.dll --secret "$SECRET" --bulk-dir .run/bench-bulk \
  --port-file .run/bench-standin-url > .run/bench-standin.log 2>&1 &
STANDIN_PID=$!
for _ in $(seq 1 60); do [ -s .run/bench-standin-url ] && break; sleep 0.25; done

# The Demo environment installs demo-store.myshopify.com at start, which queues its backfill.
export ASPNETCORE_ENVIRONMENT=Demo Logging__LogLevel__Default=Warning
export ConnectionStrings__Postgres="$PG_CONN" Shopify__ClientId=bench-client Shopify__ClientSecret="$SECRET"
export Shopify__AppUrl="http://127.0.0.1:$PORT" Shopify__ShopUrlTemplate="$(cat .run/bench-standin-url)/shops/{shop}"
export Backfill__PollInterval="00:00:00.100" Backfill__ChunkSize=1000
app_keyring "$ROOT_DIR/.run/bench-keyring.pfx"
app_start "$PORT" .run/bench-backfill-app.log
kib() { awk -v k="$1" '$1 == k":" {print $2}' "/proc/$APP_PID/status"; }
rest_kib=$(kib VmRSS)

psql_q() { runuser -u postgres -- psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -d pluginapp -tAc "$1"; }
for _ in $(seq 1 6000); do
  state=$(psql_q "SELECT state FROM backfill_runs ORDER BY id DESC LIMIT 1")
  [ "$state" = completed ] && break
  [ "$state" = failed ] && { echo "backfill failed: $(psql_q 'SELECT error FROM backfill_runs ORDER BY id DESC LIMIT 1')"; exit 1; }
  sleep 0.1
done
# Why read at once: the trainings the backfill queues start only when the job server next polls its queue.
peak_kib=$(kib VmHWM)
read -r rows secs <<<"$(psql_q "SELECT rows_done, extract(epoch FROM finished_at - started_at) FROM backfill_runs ORDER BY id DESC LIMIT 1" | tr '|' ' ')"
counts=$(psql_q "SELECT (SELECT count(*) FROM products)||' products, '||(SELECT count(*) FROM variants)||' variants, '||(SELECT count(*) FROM customers)||' customers, '||(SELECT count(*) FROM orders)||' orders, '||(SELECT count(*) FROM order_lines)||' lines, '||(SELECT count(*) FROM refunds)||' refunds'")
app_stop

psql_q "CREATE TABLE copy_baseline (doc jsonb)" >/dev/null
start=$(date +%s.%N)
for f in products customers orders; do
  # Why these delimiters: JSONL holds commas, quotes and backslashes that CSV or text format would interpret.
  psql_q "COPY copy_baseline FROM '$ROOT_DIR/.run/bench-bulk/$f.jsonl' WITH (FORMAT csv, QUOTE E'\\x01', DELIMITER E'\\x02')" >/dev/null
done
copy_secs=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN {print b - a}')

awk -v lines="$lines" -v bytes="$bytes" -v rows="$rows" -v secs="$secs" -v copy="$copy_secs" -v counts="$counts" -v rest="$rest_kib" -v peak="$peak_kib" 'BEGIN {
  printf "bulk JSONL: %d lines, %.0f MB\n", lines, bytes / 1048576
  printf "backfill (bulk queries, download, parse, staged COPY, set-based idempotent merge): %d objects in %.1f s = %.0f rows/s\n", rows, secs, rows / secs
  printf "stored: %s\n", counts
  printf "baseline COPY of the same lines into one jsonb column: %.1f s = %.0f rows/s\n", copy, lines / copy
  printf "backfill/COPY time ratio: %.2f\n", secs / copy
  printf "app resident memory: %.0f MB at rest before the backfill, peak %.0f MB during it (VmHWM)\n", rest / 1024, peak / 1024
}'
