#!/usr/bin/env bash
# Memory benchmark: the serving benchmark's busy store (the whole Online Retail set, trained), then SMALL small stores of
# ITEMS products and SMALL2 of ITEMS2 products written straight into the database, each with a catalog and an active
# recommender (trained by the app's code on a synthetic store of that size). Each store's product page is asked once so the
# app holds its model and catalog; the app's resident memory per store and per 1,000 catalog items is printed for both
# sizes with the slope between them. The busy store is served as in serve.sh before (alone) and after (every small store held).
# Usage: scripts/bench/memory.sh [SMALL] [ITEMS] [SMALL2] [ITEMS2] [N]
# Ports: SERVE_APP_PORT (5093) for the app, BENCH_PG_PORT (55434) for its PostgreSQL.
set -euo pipefail
ROOT_DIR="$(cd "$(dirname "$0")/../.." && pwd)"
SMALL="${1:-1000}"; ITEMS="${2:-200}"; SMALL2="${3:-100}"; ITEMS2="${4:-2000}"; N="${5:-30000}"
source "$ROOT_DIR/scripts/lib/bench-store.sh"
OPERATOR_TOKEN="$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export Scheduling__DashboardToken="$OPERATOR_TOKEN"
bench_store_up "${SERVE_APP_PORT:-5093}"
curl -fsS -X PUT "$URL/api/admin/rules" -H 'Content-Type: application/json' \
  -d '{"excludeOutOfStock":true,"excludeInCart":true,"maxPerProductType":2,"minMarginPercent":10,"maxPriceRatio":5}' >/dev/null
bench_psql "SELECT p.id, min(v.id) FROM products p JOIN variants v ON v.shop_id = p.shop_id AND v.product_id = p.id
            GROUP BY p.id ORDER BY random() LIMIT 1000" | tr '|' ' ' > "$ROOT_DIR/.run/bench-products.txt"
LOADGEN="$ROOT_DIR/scripts/bench/LoadGen/bin/Release/net10.0/LoadGen.dll"
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); model cache budget: ${Recommendations__ModelCacheBudgetBytes:-1 GiB (default)}"
# The busy store first, alone (serve.sh's figures), so its model and catalog are in the "before" figure.
echo "the busy store served alone:"
dotnet "$LOADGEN" serve --url "$URL" --secret "$SECRET" --shop demo-store.myshopify.com --products "$ROOT_DIR/.run/bench-products.txt" \
  --n "$N" --concurrency 64 --token "$OPERATOR_TOKEN" --scale 4 || echo "(some requests failed: see the counts above)"
dotnet "$LOADGEN" memory --url "$URL" --secret "$SECRET" --conn "$PG_CONN" --token "$OPERATOR_TOKEN" --pid "$APP_PID" \
  --stores "$SMALL" --items "$ITEMS" --stores2 "$SMALL2" --items2 "$ITEMS2"
echo "the busy store served with every small store held:"
dotnet "$LOADGEN" serve --url "$URL" --secret "$SECRET" --shop demo-store.myshopify.com --products "$ROOT_DIR/.run/bench-products.txt" \
  --n "$N" --concurrency 64 --token "$OPERATOR_TOKEN" || echo "(some requests failed: see the counts above)"
echo "app resident memory at the end: $(awk '/VmRSS/ {printf "%.0f MiB", $2/1024}' /proc/$APP_PID/status); load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
