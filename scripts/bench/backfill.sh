#!/usr/bin/env bash
# Backfill benchmark: the whole Online Retail set served as bulk-operation JSONL by the stand-in Admin API and
# imported by the app's backfill job; the baseline is a plain COPY of the same JSONL lines into an empty table.
# The app runs as deployed (Production) and shops install as an embedded first load installs them (token exchange with
# the stand-in). Each round backfills a new shop between two COPYs (the machine's speed drifts; a round's ratio is to the
# mean of the two) and lets the trainings its backfill queues end; the ratio printed last is the rounds' median. The first
# round's app has just started; later rounds' tables hold the earlier shops' rows.
# Also prints the app's resident memory: at rest, and per round at its start, its peak (VmHWM) during the backfill, and
# with the trainings after it.
# Usage: scripts/bench/backfill.sh [ROUNDS, default 3]   (ports: BENCH_APP_PORT, default 5091; BENCH_PG_PORT, default 55434)
#        BULK_INVOICES=N scripts/bench/backfill.sh ...   the set's first N invoices only (a smaller store, for the slope)
set -euo pipefail
ROOT_DIR="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT_DIR"
source scripts/lib/bench-store.sh
PORT="${BENCH_APP_PORT:-5091}"
ROUNDS="${1:-3}"
PG_PORT="$BENCH_PG_PORT"
mkdir -p .run
pg_reset bench
pg_up bench "$PG_PORT"
cleanup() { app_stop; [ -n "${STANDIN_PID:-}" ] && kill "$STANDIN_PID" 2>/dev/null || true; pg_down bench; }
trap cleanup EXIT

dotnet build app/PluginApp.csproj -c Release -nologo -v q >/dev/null
dotnet build tests/ShopifyStandIn -c Release -nologo -v q >/dev/null
dotnet build scripts/bench/LoadGen -c Release -nologo -v q >/dev/null
bench_bulk
lines=$(cat "$BULK"/*.jsonl | wc -l)
bytes=$(cat "$BULK"/*.jsonl | wc -c)

SECRET="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
rm -f .run/bench-standin-url
dotnet tests/ShopifyStandIn/bin/Release/net10.0/ShopifyStandIn.dll --secret "$SECRET" --bulk-dir "$BULK" \
  --port-file .run/bench-standin-url > .run/bench-standin.log 2>&1 &
STANDIN_PID=$!
for _ in $(seq 1 60); do [ -s .run/bench-standin-url ] && break; sleep 0.25; done

# Why warm the stand-in: Shopify's files come from its storage, whose work is not on this machine, and a freshly started
# stand-in spent 0.7-1 s of CPU compiling its serving code during the first round's download, on the same two cores.
# An orders bulk operation of a warm-up shop, polled until its file is ready, and the file downloaded twice.
warm_standin() {
  local gql op url
  gql="$(cat .run/bench-standin-url)/shops/warm-up.myshopify.com/admin/api/2026-01/graphql.json"
  post() { curl -sf -X POST "$gql" -H 'Content-Type: application/json' -H 'X-Shopify-Access-Token: warm-up' -d "$1"; }
  op=$(post '{"query":"mutation Run($query: String!) { bulkOperationRunQuery(query: $query) { bulkOperation { id } userErrors { message } } }","variables":{"query":"{ orders { edges { node { id } } } }"}}' \
    | sed -n 's/.*"id":"\([^"]*\)".*/\1/p')
  for _ in $(seq 1 20); do
    url=$(post "{\"query\":\"query Op(\$id: ID!) { node(id: \$id) { ... on BulkOperation { status url } } }\",\"variables\":{\"id\":\"$op\"}}" \
      | sed -n 's/.*"url":"\([^"]*\)".*/\1/p')
    [ -n "$url" ] && break
  done
  [ -n "$url" ] || { echo "the stand-in served no orders file" >&2; exit 1; }
  for _ in 1 2; do curl -sf -o /dev/null "$url"; done
}
warm_standin

export ASPNETCORE_ENVIRONMENT=Production Logging__LogLevel__Default=Warning
export ConnectionStrings__Postgres="$PG_CONN" Shopify__ClientId=bench-client Shopify__ClientSecret="$SECRET"
export Shopify__AppUrl="http://127.0.0.1:$PORT" Shopify__ShopUrlTemplate="$(cat .run/bench-standin-url)/shops/{shop}"
# Why poll every 100 ms (3 s by default): the stand-in finishes a bulk query at its second poll; Shopify takes minutes.
export Backfill__PollInterval="00:00:00.100"
app_keyring "$ROOT_DIR/.run/bench-keyring.pfx"
app_start "$PORT" .run/bench-backfill-app.log
kib() { awk -v k="$1" '$1 == k":" {print $2}' "/proc/$APP_PID/status"; }
rest_kib=$(kib VmRSS)
psql_q() { bench_psql "$1"; }
# CPU seconds since boot: the whole machine's (/proc/stat, in USER_HZ ticks), or one process's (/proc/PID/stat).
machine_cpu() { awk -v hz="$(getconf CLK_TCK)" '/^cpu / {print ($2 + $3 + $4 + $7 + $8) / hz}' /proc/stat; }
process_cpu() { awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$1/stat"; }

# An embedded first load of SHOP's admin (LoadGen install): the app exchanges the session token for an offline token,
# installs the shop and queues its backfill.
install_shop() {
  dotnet scripts/bench/LoadGen/bin/Release/net10.0/LoadGen.dll install --url "http://127.0.0.1:$PORT" --secret "$SECRET" \
    --client-id bench-client --shop "$1" || { tail -n 20 .run/bench-backfill-app.log; exit 1; }
}

# backfill SHOP -> "objects seconds" of its finished run. Why poll four times a second: the time is the run's own
# (finished_at - started_at); each poll costs a few milliseconds of CPU inside it.
backfill() {
  local shop="$1" state run="(SELECT max(r.id) FROM backfill_runs r JOIN shops s ON s.id = r.shop_id WHERE s.domain = '$1')"
  install_shop "$shop"
  for _ in $(seq 1 2400); do
    state=$(psql_q "SELECT state FROM backfill_runs WHERE id = $run")
    [ "$state" = completed ] && break
    [ "$state" = failed ] && { echo "backfill failed: $(psql_q "SELECT error FROM backfill_runs WHERE id = $run")" >&2; exit 1; }
    sleep 0.25
  done
  [ "$state" = completed ] || { echo "the backfill of $shop did not finish within 10 minutes" >&2; exit 1; }
  psql_q "SELECT rows_done, extract(epoch FROM finished_at - started_at) FROM backfill_runs WHERE id = $run" | tr '|' ' '
}

# copy_baseline -> "seconds cpu_seconds" of a bare COPY of the same lines (PostgreSQL reading the files itself) into a new
# table, with the whole machine's CPU seconds meanwhile.
copy_baseline() {
  local start secs f cpu0 cpu
  psql_q "SET client_min_messages = warning; DROP TABLE IF EXISTS copy_baseline; CREATE TABLE copy_baseline (doc jsonb)" >/dev/null
  start=$(date +%s.%N) cpu0=$(machine_cpu)
  for f in products customers orders; do
    # Why these delimiters: JSONL holds commas, quotes and backslashes that CSV or text format would interpret.
    psql_q "COPY copy_baseline FROM '$BULK/$f.jsonl' WITH (FORMAT csv, QUOTE E'\\x01', DELIMITER E'\\x02')" >/dev/null
  done
  secs=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN {print b - a}')
  cpu=$(awk -v a="$cpu0" -v b="$(machine_cpu)" 'BEGIN {print b - a}')
  psql_q "DROP TABLE copy_baseline" >/dev/null
  echo "$secs $cpu"
}

printf "bulk JSONL: %d lines, %.0f MB; %d rounds, each a new shop's backfill between two COPYs of the same lines\n" "$lines" "$((bytes / 1048576))" "$ROUNDS"
echo "app resident memory at rest: $((rest_kib / 1024)) MB"
read -r copy_prev copy_prev_cpu <<<"$(copy_baseline)"
ratios=()
for round in $(seq 1 "$ROUNDS"); do
  shop="store-$round.myshopify.com"
  # Why: VmHWM from here on is this round's alone (writing 5 to clear_refs resets it to the current size).
  echo 5 > "/proc/$APP_PID/clear_refs"
  start_kib=$(kib VmRSS)
  cpu0=$(machine_cpu) app0=$(process_cpu "$APP_PID") standin0=$(process_cpu "$STANDIN_PID")
  read -r rows secs <<<"$(backfill "$shop")"
  cpu=$(awk -v a="$cpu0" -v b="$(machine_cpu)" 'BEGIN {print b - a}')
  app_cpu=$(awk -v a="$app0" -v b="$(process_cpu "$APP_PID")" 'BEGIN {print b - a}')
  standin_cpu=$(awk -v a="$standin0" -v b="$(process_cpu "$STANDIN_PID")" 'BEGIN {print b - a}')
  # Why read at once: the trainings the backfill queues start only when the job server next polls its queue.
  peak_kib=$(kib VmHWM)
  if [ "$round" = 1 ]; then
    shop_id=$(psql_q "SELECT id FROM shops WHERE domain = '$shop'")
    echo "stored by each: $(psql_q "SELECT concat_ws(', ', $(for t in products variants customers orders order_lines refunds; do
      printf "(SELECT count(*) FROM %s WHERE shop_id = %s)||' %s', " "$t" "$shop_id" "${t/order_lines/lines}"; done) NULL)")"
  fi
  # The trainings it queued, and autovacuum after its writes, end before the COPY and the next round.
  bench_wait_quiet
  train_kib=$(kib VmHWM)
  read -r copy_next copy_next_cpu <<<"$(copy_baseline)"
  ratio=$(awk -v s="$secs" -v a="$copy_prev" -v b="$copy_next" 'BEGIN {printf "%.2f", s / ((a + b) / 2)}')
  ratios+=("$ratio")
  awk -v r="$round" -v rows="$rows" -v s="$secs" -v a="$copy_prev" -v b="$copy_next" -v ratio="$ratio" -v k0="$start_kib" -v k1="$peak_kib" -v k2="$train_kib" 'BEGIN {
    printf "round %d: backfill %d objects in %.1f s = %.0f rows/s; COPY before and after %.1f / %.1f s; backfill/COPY %.2f;", r, rows, s, rows / s, a, b, ratio
    printf " app memory %.0f MB at its start, peak %.0f MB during it, %.0f MB with the trainings after it\n", k0 / 1024, k1 / 1024, k2 / 1024
  }'
  # Why CPU too: it moves much less than time with the machine's other work (a COPY took 4.3-7.9 s on one day).
  awk -v c="$cpu" -v a="$app_cpu" -v s="$standin_cpu" -v p="$copy_prev_cpu" -v n="$copy_next_cpu" 'BEGIN {
    printf "  CPU seconds of the two cores: backfill %.1f (app %.1f, stand-in %.1f, PostgreSQL and the rest %.1f, the install call and polls included); COPY before and after %.1f / %.1f; backfill/COPY %.2f\n", c, a, s, c - a - s, p, n, c / ((p + n) / 2)
  }'
  copy_prev=$copy_next copy_prev_cpu=$copy_next_cpu
done
app_stop
sorted=$(printf '%s\n' "${ratios[@]}" | sort -n)
echo "backfill/COPY time ratio: median $(echo "$sorted" | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}') of $ROUNDS rounds ($(echo "$sorted" | head -1)-$(echo "$sorted" | tail -1)); the first round's app had just started, the later ones' hold the earlier shops' rows"
