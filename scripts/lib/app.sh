# Sourced by the scripts: start the built app in the background and wait until it is ready.
# Usage: app_start PORT LOGFILE (env: ConnectionStrings__Postgres, Shopify__* set by the caller) -> APP_PID
app_start() {
  local port="$1" log="$2"
  # Why the build output as content root, as a deployed app has its own folder: it holds appsettings.json, and the app
  # watches its content root for configuration changes, which from the checkout meant every file PostgreSQL writes
  # under .pg/ (about 6 % of the app's CPU time during the ingest benchmark).
  ASPNETCORE_URLS="http://127.0.0.1:$port" ASPNETCORE_CONTENTROOT="$ROOT_DIR/app/bin/Release/net10.0" \
    dotnet "$ROOT_DIR/app/bin/Release/net10.0/PluginApp.dll" >"$log" 2>&1 &
  APP_PID=$!
  for _ in $(seq 1 120); do
    curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && return 0
    kill -0 "$APP_PID" 2>/dev/null || { echo "the app exited; last lines of $log:"; tail -n 40 "$log"; return 1; }
    sleep 0.5
  done
  echo "the app did not become ready on port $port"; return 1
}

app_stop() {
  [ -n "${APP_PID:-}" ] || return 0
  kill "$APP_PID" 2>/dev/null || true
  wait "$APP_PID" 2>/dev/null || true
  APP_PID=""
}

# app_keyring FILE: the certificate that encrypts the Data Protection key ring (the app refuses to start in Production
# without one). Made on this machine under .run/, never committed. Needs the app built.
app_keyring() {
  [ -f "$1" ] || dotnet "$ROOT_DIR/app/bin/Release/net10.0/PluginApp.dll" keys create-certificate "$1" >/dev/null
  export DataProtection__CertificatePath="$1"
}

# A load benchmark's app (ingest.sh, crash.sh, risk.sh): builds the app and the load generator, makes a client secret
# (SECRET) and exports the Production settings of an app on PORT against $PG_CONN with a key ring at KEYRING.
# APP_CONN_EXTRA adds settings to the app's connection string (e.g. "Max Auto Prepare=0" to compare without prepared statements).
# Usage: bench_app_env PORT KEYRING
bench_app_env() {
  dotnet build "$ROOT_DIR/app/PluginApp.csproj" -c Release -nologo -v q >/dev/null
  dotnet build "$ROOT_DIR/scripts/bench/LoadGen" -c Release -nologo -v q >/dev/null
  SECRET="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  export ASPNETCORE_ENVIRONMENT=Production Logging__LogLevel__Default=Warning
  export ConnectionStrings__Postgres="$PG_CONN${APP_CONN_EXTRA:+;$APP_CONN_EXTRA}" Shopify__ClientId=bench-client Shopify__ClientSecret="$SECRET" Shopify__AppUrl="http://127.0.0.1:$1"
  # Why training off: the app checks for shops with enough new orders every 10 minutes, and a pass that crossed that
  # mark had the warm-up shop's four models trained beside it (on 3 Dec at 22:10 UTC its ceiling fell from about 17,000 a second to 6,320).
  # Training has its own benchmark (train.sh); these measure the request paths.
  export Training__RetrainAfterNewOrders="${Training__RetrainAfterNewOrders:-1000000000}"
  app_keyring "$2"
}

# The shape of the bulk-operation JSONL that scripts/replay.sh writes for the demo and the benchmarks; files written in
# another shape (cached in .run) are written again. Changed when the import's queries change (7 Dec 2026: customers'
# defaultEmailAddress and defaultPhoneNumber, products' featuredMedia; then orders' taxesIncluded, refund lines' totalTaxSet and refunds' processedAt).
BULK_FORMAT="2026-12-07d"
