#!/usr/bin/env bash
# Order-risk latency benchmark: from sending a signed orders/create to the order's risk being recorded, first one order at a
# time on an idle app (the baseline), then N orders under the ingest benchmark's load (concurrency 32, each sent twice),
# against the app on a private PostgreSQL. Aim: p99 <= 5 s under load.
# Usage: scripts/bench/risk.sh [N] [CONCURRENCY]
set -euo pipefail
ROOT_DIR="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT_DIR"
source scripts/lib/dotnet.sh
source scripts/lib/postgres.sh
source scripts/lib/app.sh
N="${1:-10000}"; C="${2:-32}"; PORT=5092

mkdir -p .run
pg_reset benchrisk   # a fresh cluster: every run measures the same thing
pg_up benchrisk 55437
trap 'app_stop; pg_down benchrisk' EXIT
bench_app_env "$PORT" "$ROOT_DIR/.run/benchrisk-keyring.pfx"
app_start "$PORT" .run/benchrisk-app.log

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB; app, PostgreSQL and load generator share it"
dotnet scripts/bench/LoadGen/bin/Release/net10.0/LoadGen.dll risk --url "http://127.0.0.1:$PORT" --secret "$SECRET" \
  --conn "$PG_CONN" --n "$N" --concurrency "$C"
