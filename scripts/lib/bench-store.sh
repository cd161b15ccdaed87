# Sourced by scripts/bench/serve.sh, train.sh, memory.sh and backfill.sh: a fresh PostgreSQL, the stand-in Admin API serving the
# Online Retail set as bulk JSONL (the whole set, or its first BULK_INVOICES invoices), and the app (Demo environment: installs demo-store.myshopify.com, backfills it
# and trains its recommender in the background). Usage: bench_store_up PORT -> URL, SECRET, APP_PID, STANDIN_PID
# The cluster's port is BENCH_PG_PORT (55434 unless set), so benchmarks of two checkouts can run side by side.
# APP_CONN_EXTRA adds settings to the app's connection string (e.g. "Max Auto Prepare=0").
source "$ROOT_DIR/scripts/lib/dotnet.sh"
source "$ROOT_DIR/scripts/lib/postgres.sh"
source "$ROOT_DIR/scripts/lib/app.sh"

BENCH_PG_PORT="${BENCH_PG_PORT:-55434}"
# Why PostgreSQL's own psql, not Debian's wrapper script: a poll through the wrapper cost 40 ms of CPU, inside the
# backfill's measured time when polled ten times a second.
bench_psql() { runuser -u postgres -- "$(pg_bindir)/psql" -h 127.0.0.1 -p "$BENCH_PG_PORT" -U postgres -d pluginapp -tAc "$1"; }

# bench_bulk -> BULK: the folder of the Online Retail set as bulk-operation JSONL (its first BULK_INVOICES invoices when
# set: a smaller store, for the cost's slope), written once.
bench_bulk() {
  local invoices="${BULK_INVOICES:-}"
  BULK="$ROOT_DIR/.run/bench-bulk${invoices:+-$invoices}"
  if [ ! -f "$BULK/orders.jsonl" ] || [ "$(cat "$BULK/format" 2>/dev/null)" != "$BULK_FORMAT" ]; then
    echo "[bench] writing ${invoices:+the first $invoices invoices of }the Online Retail set as bulk JSONL"
    "$ROOT_DIR/scripts/replay.sh" --jsonl-out "$BULK" --seed 7 ${invoices:+--max-invoices "$invoices"} >/dev/null
    echo "$BULK_FORMAT" > "$BULK/format"
  fi
}

bench_store_down() { app_stop; [ -n "${STANDIN_PID:-}" ] && kill "$STANDIN_PID" 2>/dev/null || true; pg_down bench; }

bench_store_up() {
  local port="$1"
  mkdir -p "$ROOT_DIR/.run"
  pg_reset bench
  pg_up bench "$BENCH_PG_PORT"
  trap bench_store_down EXIT
  dotnet build "$ROOT_DIR/app/PluginApp.csproj" -c Release -nologo -v q >/dev/null
  dotnet build "$ROOT_DIR/tests/ShopifyStandIn" -c Release -nologo -v q >/dev/null
  dotnet build "$ROOT_DIR/scripts/bench/LoadGen" -c Release -nologo -v q >/dev/null
  bench_bulk
  SECRET="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  rm -f "$ROOT_DIR/.run/bench-standin-url"
  dotnet "$ROOT_DIR/tests/ShopifyStandIn/bin/Release/net10.0/ShopifyStandIn.dll" --secret "$SECRET" --bulk-dir "$BULK" \
    --port-file "$ROOT_DIR/.run/bench-standin-url" > "$ROOT_DIR/.run/bench-standin.log" 2>&1 &
  STANDIN_PID=$!
  for _ in $(seq 1 60); do [ -s "$ROOT_DIR/.run/bench-standin-url" ] && break; sleep 0.25; done
  URL="http://127.0.0.1:$port"
  export ASPNETCORE_ENVIRONMENT=Demo Logging__LogLevel__Default=Warning
  export ConnectionStrings__Postgres="$PG_CONN${APP_CONN_EXTRA:+;$APP_CONN_EXTRA}" Shopify__ClientId=bench-client Shopify__ClientSecret="$SECRET" Shopify__AppUrl="$URL"
  export Shopify__ShopUrlTemplate="$(cat "$ROOT_DIR/.run/bench-standin-url")/shops/{shop}"
  export Backfill__PollInterval="00:00:00.100"
  # Why so high: the load comes from one client address, which the per-client limit would otherwise stop.
  export Recommendations__PerClientPerMinute=100000000 Recommendations__PerShopPerSecond=1000000
  app_keyring "$ROOT_DIR/.run/bench-keyring.pfx"
  app_start "$port" "$ROOT_DIR/.run/bench-app.log"
  echo "[bench] backfilling ${BULK_INVOICES:+the first $BULK_INVOICES invoices of }the Online Retail set and training in the background"
  bench_wait_quiet "SELECT count(*) FROM models WHERE kind = 'recommender' AND status = 'active'"
}

# bench_wait_quiet [READY_SQL]: waits (up to 20 minutes) until READY_SQL, when given, returns 1 and the app and database
# have been quiet for three seconds running. Why wait for every run to end, not only for the recommender: the other kinds
# train after the backfill too, and a training run beside the measurement would take its CPU. Why quiet for three seconds
# running, with no statement or autovacuum at work: one job enqueues the next (training, then scoring and tagging), and a
# check between them passed while churn scoring was about to read every order (seen taking a core for the first 12 s of a
# measurement).
bench_wait_quiet() {
  local ready="${1:-SELECT 1}" quiet=0
  for _ in $(seq 1 2400); do
    if [ "$(bench_psql "$ready")" = 1 ] \
      && [ "$(bench_psql "SELECT count(*) FROM training_runs WHERE finished_at IS NULL")" = 0 ] \
      && [ "$(bench_psql "SELECT count(*) FROM hangfire.job WHERE statename IN ('Enqueued', 'Processing')")" = 0 ] \
      && [ "$(bench_psql "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND pid <> pg_backend_pid()
                          AND backend_type IN ('client backend', 'autovacuum worker')")" = 0 ]; then
      quiet=$((quiet + 1)); [ "$quiet" -ge 6 ] && break
    else quiet=0; fi
    [ "$(bench_psql "SELECT count(*) FROM training_runs WHERE state = 'failed'")" != 0 ] && { echo "training failed: $(bench_psql 'SELECT error FROM training_runs')"; return 1; }
    sleep 0.5
  done
  [ "$quiet" -ge 6 ] || echo "[bench] the store did not fall quiet within 20 minutes; measuring anyway (see the figures' spread)"
}
