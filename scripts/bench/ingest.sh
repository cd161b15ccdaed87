#!/usr/bin/env bash
# Webhook ingestion benchmark: N signed orders/create deliveries at concurrency 32, each sent twice,
# against the app on a private PostgreSQL; the ceiling is the same bodies posted to an endpoint with no database.
# Usage: scripts/bench/ingest.sh [N] [CONCURRENCY]
set -euo pipefail
ROOT_DIR="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT_DIR"
source scripts/lib/dotnet.sh
source scripts/lib/postgres.sh
source scripts/lib/app.sh
N="${1:-20000}"; C="${2:-32}"; PORT=5090

mkdir -p .run
[ -n "${KEEP_BENCH_DB:-}" ] || pg_reset bench   # a fresh cluster: every run measures the same thing
pg_up bench 55434
trap 'app_stop; pg_down bench' EXIT
dotnet build app/PluginApp.csproj -c Release -nologo -v q >/dev/null
dotnet build scripts/bench/LoadGen -c Release -nologo -v q >/dev/null

SECRET="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export ASPNETCORE_ENVIRONMENT=Production Logging__LogLevel__Default=Warning
export ConnectionStrings__Postgres="$PG_CONN" Shopify__ClientId=bench-client Shopify__ClientSecret="$SECRET" Shopify__AppUrl="http://127.0.0.1:$PORT"
app_keyring "$ROOT_DIR/.run/bench-keyring.pfx"
app_start "$PORT" .run/bench-app.log

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB; app and load generator share it"
dotnet scripts/bench/LoadGen/bin/Release/net10.0/LoadGen.dll ingest --url "http://127.0.0.1:$PORT" --secret "$SECRET" \
  --conn "$PG_CONN" --n "$N" --concurrency "$C"
