#!/usr/bin/env bash
# Serving benchmark: signed app-proxy requests for recommendations (2/3 product pages, 1/3 carts of 1-3 items,
# 5,000 visitors) at concurrency 64 on loopback, with business rules and decision logging on, against a model
# trained on the whole Online Retail set; the baseline is GET /healthz measured the same way in the same run.
# Usage: scripts/bench/serve.sh [N] [CONCURRENCY]
set -euo pipefail
ROOT_DIR="$(cd "$(dirname "$0")/../.." && pwd)"
N="${1:-30000}"; C="${2:-64}"
source "$ROOT_DIR/scripts/lib/bench-store.sh"
bench_store_up 5093
curl -fsS -X PUT "$URL/api/admin/rules" -H 'Content-Type: application/json' \
  -d '{"excludeOutOfStock":true,"excludeInCart":true,"maxPerProductType":2,"minMarginPercent":10,"maxPriceRatio":5}' >/dev/null
bench_psql "SELECT p.id, min(v.id) FROM products p JOIN variants v ON v.shop_id = p.shop_id AND v.product_id = p.id
            GROUP BY p.id ORDER BY random() LIMIT 1000" | tr '|' ' ' > "$ROOT_DIR/.run/bench-products.txt"
echo "machine: $(nproc) cores; app, PostgreSQL and the load generator share it; model: $(bench_psql "SELECT 'v'||version||' trained on '||(parameters->>'Factors')||' factors' FROM models WHERE status = 'active'")"
dotnet "$ROOT_DIR/scripts/bench/LoadGen/bin/Release/net10.0/LoadGen.dll" serve --url "$URL" --secret "$SECRET" --shop demo-store.myshopify.com \
  --products "$ROOT_DIR/.run/bench-products.txt" --n "$N" --concurrency "$C"
sleep 1
echo "decisions logged: $(bench_psql "SELECT count(*) FROM recommendation_decisions")"
