#!/usr/bin/env bash
# Runs the app on a demo store: a private PostgreSQL, the app in the Demo environment, its URL printed.
# Ctrl-C stops the app and the database. `scripts/demo.sh --check` starts, waits for /readyz, and stops.
set -euo pipefail
ROOT_DIR="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT_DIR"
source scripts/lib/postgres.sh

PORT="${DEMO_PORT:-5080}"
mkdir -p .run
pg_up demo 55433

cleanup() {
  [ -n "${APP_PID:-}" ] && kill "$APP_PID" 2>/dev/null && wait "$APP_PID" 2>/dev/null || true
  pg_down demo
}
trap cleanup EXIT

# Demo credentials are made on this machine, never committed.
[ -f .run/demo-secret ] || head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > .run/demo-secret

dotnet build app/PluginApp.csproj -c Release -nologo -v q
export ASPNETCORE_ENVIRONMENT=Demo
export ASPNETCORE_URLS="http://127.0.0.1:$PORT"
export ConnectionStrings__Postgres="$PG_CONN"
export Shopify__ClientId="demo-client-id"
export Shopify__ClientSecret="$(cat .run/demo-secret)"
export Shopify__AppUrl="http://127.0.0.1:$PORT"
dotnet app/bin/Release/net10.0/PluginApp.dll > .run/demo-app.log 2>&1 &
APP_PID=$!

for _ in $(seq 1 120); do
  if curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1; then break; fi
  kill -0 "$APP_PID" 2>/dev/null || { echo "the app exited; see .run/demo-app.log"; tail -n 40 .run/demo-app.log; exit 1; }
  sleep 0.5
done
curl -fsS "http://127.0.0.1:$PORT/readyz"; echo
echo "App running at http://127.0.0.1:$PORT  (readiness: /readyz, logs: .run/demo-app.log)"

if [ "${1:-}" = "--check" ]; then exit 0; fi
echo "Press Ctrl-C to stop."
wait "$APP_PID"
