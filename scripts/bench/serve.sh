#!/usr/bin/env bash
# Serving benchmark: signed app-proxy requests for recommendations (2/3 product pages, 1/3 carts of 1-3 items,
# 5,000 visitors) at concurrency 64 on loopback, with business rules and decision logging on, against a model
# trained on the whole Online Retail set; the baseline is GET /healthz measured the same way in the same run. Also prints
# the same requests at 4x the concurrency (four instances' worth of load on this one), the app's allocations per request
# and the answer cache's hits (read from the operator metrics), and per round the app's collections and each phase's
# stalls (half or more of the requests in flight held up together, which make a phase's p99).
# Usage: scripts/bench/serve.sh [N] [CONCURRENCY]
# Ports: SERVE_APP_PORT (5093) for the app, BENCH_PG_PORT (55434) for its PostgreSQL. SERVE_LATENCY_DUMP=PREFIX writes each
# measured round's requests (start ms, latency ms, p or c) to PREFIX.1, PREFIX.2, ... and its healthz phase's (kind h) to
# PREFIX.1.healthz, ...; each file's first line is "# began UNIX_MS", when its phase began.
set -euo pipefail
ROOT_DIR="$(cd "$(dirname "$0")/../.." && pwd)"
N="${1:-30000}"; C="${2:-64}"
source "$ROOT_DIR/scripts/lib/bench-store.sh"
OPERATOR_TOKEN="$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export Scheduling__DashboardToken="$OPERATOR_TOKEN"
bench_store_up "${SERVE_APP_PORT:-5093}"
curl -fsS -X PUT "$URL/api/admin/rules" -H 'Content-Type: application/json' \
  -d '{"excludeOutOfStock":true,"excludeInCart":true,"maxPerProductType":2,"minMarginPercent":10,"maxPriceRatio":5}' >/dev/null
bench_psql "SELECT p.id, min(v.id) FROM products p JOIN variants v ON v.shop_id = p.shop_id AND v.product_id = p.id
            GROUP BY p.id ORDER BY random() LIMIT 1000" | tr '|' ' ' > "$ROOT_DIR/.run/bench-products.txt"
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); app, PostgreSQL and the load generator share it; model: $(bench_psql "SELECT 'v'||version||' trained on '||(parameters->>'Factors')||' factors' FROM models WHERE kind = 'recommender' AND status = 'active'")"
dotnet "$ROOT_DIR/scripts/bench/LoadGen/bin/Release/net10.0/LoadGen.dll" serve --url "$URL" --secret "$SECRET" --shop demo-store.myshopify.com \
  --products "$ROOT_DIR/.run/bench-products.txt" --n "$N" --concurrency "$C" --token "$OPERATOR_TOKEN" --scale 4 || echo "(some requests failed: see the counts above)"
sleep 1
echo "decisions logged: $(bench_psql "SELECT count(*) FROM decisions WHERE kind = 'upsell'") ($(bench_psql "SELECT count(*) FROM decisions WHERE kind = 'upsell' AND inputs->>'answer' = 'cached'") served from the answer cache)"
echo "app resident memory: $(awk '/VmRSS/ {printf "%.0f MiB", $2/1024}' /proc/$APP_PID/status); load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
