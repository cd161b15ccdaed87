#!/usr/bin/env bash
# Runs the app on a demo store: a private PostgreSQL, a stand-in Shopify Admin API on loopback, the app in the
# Demo environment with demo-store.myshopify.com installed. Two months of Online Retail arrive by bulk backfill,
# the following two weeks as live signed webhooks, then two weeks of storefront shoppers up to yesterday. The data set's
# dates are moved forward by whole weeks so that its history runs up to the shoppers' first day, as a live store's would
# (weekdays kept). Ctrl-C stops everything.
# `scripts/demo.sh --check` does all of that, prints what the store holds, and stops.
set -euo pipefail
ROOT_DIR="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT_DIR"
source scripts/lib/dotnet.sh
source scripts/lib/postgres.sh
source scripts/lib/app.sh
source scripts/lib/browser.sh

PORT="${DEMO_PORT:-5080}"
URL="http://127.0.0.1:$PORT"
BACKFILL_FROM=2011-09-01; LIVE_FROM=2011-11-01; LIVE_TO=2011-11-15
# Days added to every date of the data set: LIVE_TO lands on the shoppers' first day (14 days ago) or up to 6 days before.
SHIFT_DAYS=$(( ( $(date -u -d "$(date -u +%F) - 14 days" +%s) - $(date -u -d "$LIVE_TO" +%s) ) / 86400 / 7 * 7 ))
mkdir -p .run
pg_reset demo   # every demo starts from an empty store
pg_up demo 55433

cleanup() {
  app_stop
  [ -n "${STANDIN_PID:-}" ] && kill "$STANDIN_PID" 2>/dev/null && wait "$STANDIN_PID" 2>/dev/null || true
  pg_down demo
}
trap cleanup EXIT

# Demo credentials are made on this machine, never committed.
[ -f .run/demo-secret ] || head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > .run/demo-secret
SECRET="$(cat .run/demo-secret)"

echo "[demo] building"
theme_tools_install
# The demo's product pages: the real product block rendered once from its Liquid, with placeholders the app fills per
# product (app/Demo/DemoProductPage.cs), so /products/{handle} needs no Node while the demo runs.
node scripts/theme/render-block.mjs product-upsells "$(cat scripts/theme/demo-product-page.json)" > .run/demo-product-page.html
node scripts/theme/render-block.mjs cart-offers '{"template":"cart"}' > .run/demo-cart-page.html
dotnet build app/PluginApp.csproj -c Release -nologo -v q >/dev/null
dotnet build tests/ShopifyStandIn -c Release -nologo -v q >/dev/null

# Written again when the files' shape changed since (BULK_FORMAT, scripts/lib/app.sh), as files of an older shape
# would be read with fields missing.
if [ ! -f .run/demo-bulk/orders.jsonl ] || [ "$(cat .run/demo-bulk/shift-days 2>/dev/null)" != "$SHIFT_DAYS" ] \
   || [ "$(cat .run/demo-bulk/format 2>/dev/null)" != "$BULK_FORMAT" ]; then
  echo "[demo] preparing the store's history ($BACKFILL_FROM to $LIVE_FROM, moved $SHIFT_DAYS days forward) as bulk-operation results"
  scripts/replay.sh --jsonl-out .run/demo-bulk --from "$BACKFILL_FROM" --to "$LIVE_FROM" --seed 7 --shift-days "$SHIFT_DAYS" >/dev/null
  echo "$SHIFT_DAYS" > .run/demo-bulk/shift-days
  echo "$BULK_FORMAT" > .run/demo-bulk/format
fi

rm -f .run/standin-url
dotnet tests/ShopifyStandIn/bin/Release/net10.0/ShopifyStandIn.dll --secret "$SECRET" --bulk-dir .run/demo-bulk \
  --port-file .run/standin-url > .run/demo-standin.log 2>&1 &
STANDIN_PID=$!
for _ in $(seq 1 60); do [ -s .run/standin-url ] && break; sleep 0.25; done
STANDIN="$(cat .run/standin-url)"

export ASPNETCORE_ENVIRONMENT=Demo
export ConnectionStrings__Postgres="$PG_CONN"
export Shopify__ClientId="demo-client-id" Shopify__ClientSecret="$SECRET" Shopify__AppUrl="$URL"
export Shopify__ShopUrlTemplate="$STANDIN/shops/{shop}"
app_keyring "$ROOT_DIR/.run/demo-keyring.pfx"
export Backfill__PollInterval="00:00:00.200"
# The demo storefront forwards /apps/pluginapp/* from loopback as Shopify's proxy would: its X-Forwarded-For is believed.
export TrustedProxies__Networks__0="127.0.0.1/32"
export Demo__ProductPageTemplate="$ROOT_DIR/.run/demo-product-page.html" Demo__ThemeAssets="$ROOT_DIR/theme-extension/assets"
export Demo__CartPageTemplate="$ROOT_DIR/.run/demo-cart-page.html"
app_start "$PORT" .run/demo-app.log

echo "[demo] backfilling demo-store.myshopify.com from the stand-in Admin API"
for _ in $(seq 1 600); do
  state="$(curl -fsS "$URL/api/admin/backfill" 2>/dev/null | grep -o '"state":"[a-z]*"' | head -1 || true)"
  case "$state" in *completed*) break;; *failed*) echo "[demo] backfill failed; see .run/demo-app.log"; exit 1;; esac
  sleep 0.5
done
echo "[demo] backfill: $(curl -fsS "$URL/api/admin/backfill" | head -c 300)"

echo "[demo] replaying $LIVE_FROM to $LIVE_TO (moved $SHIFT_DAYS days forward) as live webhooks"
# Half as many abandoned carts and checkouts as completed ones, so the purchase-intent model has both outcomes to learn.
scripts/replay.sh --url "$URL" --secret "$SECRET" --shop demo-store.myshopify.com --from "$LIVE_FROM" --to "$LIVE_TO" \
  --seed 7 --rate 400 --abandoned-share 0.5 --shift-days "$SHIFT_DAYS" | tail -n 2

echo "[demo] the store now holds: $(curl -fsS "$URL/api/admin/shop")"

echo "[demo] waiting for the recommender trained in the background after the backfill"
for i in $(seq 1 240); do
  curl -fsS "$URL/api/admin/models" 2>/dev/null | grep -q '"status":"active"' && break
  [ "$i" = 120 ] && curl -fsS -X POST "$URL/api/admin/models/train?kind=recommender" >/dev/null   # ask again if the queued one was lost
  sleep 0.5
done
curl -fsS "$URL/api/admin/models" | grep -o '"kind":"recommender","version":[0-9]*,"status":"active"[^}]*}[^}]*}' | head -1 | sed 's/^/[demo] active model: /' || true

demo_sql() { runuser -u postgres -- psql -h 127.0.0.1 -p 55433 -U postgres -d pluginapp -tA -F ' ' -c "$1"; }
# Cart offers: on, with free shipping from about the store's median order and a 5 % offer under the default caps; the
# purchase-intent model trains on the replay's carts (those that became orders and those abandoned).
threshold="$(demo_sql "SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY subtotal_price))::int FROM orders WHERE subtotal_price > 0")"
curl -fsS -o /dev/null -X PUT "$URL/api/admin/cart-offers" -H "Content-Type: application/json" \
  -d "{\"enabled\":true,\"freeShippingThreshold\":$threshold,\"offersEnabled\":true,\"offerPercent\":5,\"maxDiscountPercent\":15,\"marginFloorPercent\":20,\"dailyBudget\":500,\"codeExpiryHours\":48,\"poolSize\":40}"
echo "[demo] cart offers: on, free shipping from $threshold, a 5 % offer; training the purchase-intent model on the store's carts"
intent_runs="$(demo_sql "SELECT count(*) FROM training_runs WHERE kind = 'intent' AND finished_at IS NOT NULL")"
curl -fsS -X POST "$URL/api/admin/models/train?kind=intent" >/dev/null
for _ in $(seq 1 240); do   # an active model, or the requested run finished with its reason
  [ "$(demo_sql "SELECT count(*) FROM models WHERE kind = 'intent' AND status = 'active'")" != 0 ] && break
  [ "$(demo_sql "SELECT count(*) FROM training_runs WHERE kind = 'intent' AND finished_at IS NOT NULL")" -gt "$intent_runs" ] && sleep 1 && break
  sleep 0.5
done
echo "[demo] intent: $(demo_sql "SELECT coalesce((SELECT 'model v' || version || ', held-out ROC-AUC ' || round((metrics->>'RocAuc')::numeric, 3) || ' (cart value alone ' || coalesce(metrics->>'CartValueRocAuc', '–') || '), PR-AUC ' || (metrics->>'PrAuc') || ', ' || (metrics->>'Carts') || ' carts, ' || (metrics->>'Orders') || ' became orders' FROM models WHERE kind = 'intent' AND status = 'active'), 'no model: ' || coalesce((SELECT error FROM training_runs WHERE kind = 'intent' ORDER BY id DESC LIMIT 1), 'not trained'))")"
codes_in_shopify="SELECT count(*) FROM discount_codes d JOIN outbox_messages m ON m.idempotency_key = 'discount:' || d.code AND m.completed_at IS NOT NULL"
# Why up to 6 minutes: the outbox sends in order, and the replay's order-risk calls (two per order) are queued ahead of the codes.
for _ in $(seq 1 720); do [ "$(demo_sql "$codes_in_shopify")" -ge 20 ] && break; sleep 0.5; done
echo "[demo] discount codes created in the stand-in Shopify: $(demo_sql "$codes_in_shopify")"

# Shoppers on the storefront for the overview's days: real baskets from after the live replay, each opening the page of
# a product in it, seeing the block through the app proxy, clicking and ordering (scripts/replay/ReplayCli/Shoppers.cs
# states what they do); the demo app's clock is set back to each shopper's day.
echo "[demo] simulating 14 days of storefront shoppers through the app proxy"
scripts/replay.sh --url "$URL" --secret "$SECRET" --shop demo-store.myshopify.com --from "$BACKFILL_FROM" --to 2011-12-10 --seed 7 \
  --shoppers-from "$LIVE_TO" --shopper-days 14 --shoppers-per-day 100 --shift-days "$SHIFT_DAYS" | tail -n 1

# Shopify's compliance webhooks as a store would see them: one customer asks for their data, another is erased.
demo_webhook() { # TOPIC ID BODY: a signed delivery, as Shopify sends it
  local hmac; hmac="$(printf '%s' "$3" | openssl dgst -sha256 -hmac "$SECRET" -binary | base64)"
  curl -fsS -o /dev/null -X POST "$URL/webhooks" -H "Content-Type: application/json" -H "X-Shopify-Topic: $1" \
    -H "X-Shopify-Hmac-Sha256: $hmac" -H "X-Shopify-Shop-Domain: demo-store.myshopify.com" -H "X-Shopify-Webhook-Id: demo-$2" \
    -H "X-Shopify-API-Version: 2026-07" --data-binary "$3"
}
read -r asking erased <<<"$(runuser -u postgres -- psql -h 127.0.0.1 -p 55433 -U postgres -d pluginapp -tA -F ' ' -c "
  SELECT min(customer_id), max(customer_id) FROM orders WHERE customer_id IS NOT NULL")"
demo_webhook customers/data_request "data-request-$asking" \
  "{\"shop_id\":1,\"shop_domain\":\"demo-store.myshopify.com\",\"orders_requested\":[],\"customer\":{\"id\":$asking},\"data_request\":{\"id\":1}}"
demo_webhook customers/redact "redact-$erased" \
  "{\"shop_id\":1,\"shop_domain\":\"demo-store.myshopify.com\",\"orders_to_redact\":[],\"customer\":{\"id\":$erased}}"
echo "[demo] customer $asking asked for their data; customer $erased was erased (see the admin's Data and privacy)"

# The storefront preview opens the product page of the most ordered product (people buy it together with others).
if preview="$(curl -fsS -o /dev/null -w '%{redirect_url}' "$URL/demo/storefront")" && page="$(curl -fsS "$preview")"; then
  product="$(grep -o 'data-product-id="[0-9]*"' <<<"$page" | grep -o '[0-9][0-9]*' || true)"
  echo "[demo] storefront preview: $preview $(grep -o '<h1>[^<]*</h1>' <<<"$page" || true)"
  echo "[demo] storefront preview answers: $(curl -fsS "$URL/apps/pluginapp/recommendations?placement=product&product_id=$product&limit=4" | head -c 400)"
else
  echo "[demo] storefront preview not available: $(curl -sS "$URL/demo/storefront")"
fi

echo "[demo] order risk: $(runuser -u postgres -- psql -h 127.0.0.1 -p 55433 -U postgres -d pluginapp -tA -F ' ' -c "
  SELECT string_agg(level || ' ' || n, ', ' ORDER BY level) FROM (SELECT level, count(*) AS n FROM risk_scores GROUP BY level) x") orders scored; the review queue lists the MEDIUM and HIGH ones"
echo "[demo] churn: training the store's churn model and scoring its customers"
# Why wait for the requested run and its scores: the model trained after the backfill may be scored first, and the
# figures below are those of the model trained on everything the store now holds.
churn_runs="$(demo_sql "SELECT count(*) FROM training_runs WHERE kind = 'churn' AND finished_at IS NOT NULL")"
curl -fsS -X POST "$URL/api/admin/models/train?kind=churn" >/dev/null
for _ in $(seq 1 360); do [ "$(demo_sql "SELECT count(*) FROM training_runs WHERE kind = 'churn' AND finished_at IS NOT NULL")" -gt "$churn_runs" ] && break; sleep 0.5; done
for _ in $(seq 1 360); do
  [ "$(demo_sql "SELECT count(*) FROM churn_scores s JOIN models m ON m.shop_id = s.shop_id AND m.kind = 'churn' AND m.status = 'active' AND m.version = s.model_version")" != 0 ] && break
  sleep 0.5
done
[ "$(demo_sql "SELECT count(*) FROM churn_scores")" != 0 ] || { echo "[demo] no customer was scored for churn; see .run/demo-app.log"; exit 1; }
for _ in $(seq 1 240); do [ "$(demo_sql "SELECT count(*) FROM outbox_messages WHERE (resource_key LIKE 'gid://shopify/Customer/%' OR resource_key = 'churn-metafields') AND completed_at IS NULL AND failed_at IS NULL")" = 0 ] && break; sleep 0.5; done
echo "[demo] churn: $(demo_sql "SELECT 'model v' || version || ', ' || (metrics->>'Kind') || ', held-out ROC-AUC ' || round((metrics->>'RocAuc')::numeric, 3) || ' (recency alone ' || (metrics->>'RecencyRocAuc') || '), Brier ' || (metrics->>'Brier') || ' (base rate ' || (metrics->>'BaseRateBrier') || ')' FROM models WHERE kind = 'churn' AND status = 'active'")"
echo "[demo] churn: expected orders $(demo_sql "SELECT coalesce('checked on the ' || (metrics->>'HorizonDays') || ' days before training: ' || round((metrics->>'ForecastPurchaseDays')::numeric) || ' purchase days forecast for ' || (metrics->>'HeldOutCustomers') || ' customers, ' || (metrics->>'ActualPurchaseDays') || ' made', 'not checked (no held-out window)') FROM models WHERE kind = 'churn' AND status = 'active'")"
echo "[demo] churn segments: $(demo_sql "SELECT string_agg(segment || ' ' || n, ', ' ORDER BY segment) FROM (SELECT segment, count(*) AS n FROM churn_scores GROUP BY segment) x")"
echo "[demo] churn in Shopify: $(demo_sql "SELECT string_agg(operation || ' ' || n, ', ' ORDER BY operation) FROM (SELECT operation, count(*) AS n FROM outbox_messages WHERE completed_at IS NOT NULL AND operation IN ('tagsAdd', 'tagsRemove', 'metafieldsSet') GROUP BY operation) x") calls answered by the stand-in Shopify, $(demo_sql "SELECT count(*) FROM outbox_messages WHERE (resource_key LIKE 'gid://shopify/Customer/%' OR resource_key = 'churn-metafields') AND completed_at IS NULL AND failed_at IS NULL") still queued after the demo's wait (up to two minutes)"
echo "[demo] cart offers: $(demo_sql "SELECT string_agg(arm || '/' || action || ' ' || n, ', ' ORDER BY arm, action) FROM (SELECT arm, action, count(*) AS n FROM cart_offer_decisions GROUP BY 1, 2) x") carts; codes $(demo_sql "SELECT string_agg(state || ' ' || n, ', ' ORDER BY state) FROM (SELECT state, count(*) AS n FROM discount_codes GROUP BY state) x")"
[ "$(demo_sql "SELECT count(*) FROM cart_offer_decisions WHERE action = 'offer'")" != 0 ] || { echo "[demo] no cart was shown an offer; see .run/demo-app.log"; exit 1; }
[ "$(demo_sql "SELECT count(*) FROM cart_offer_decisions WHERE action = 'nudge_upsell'")" != 0 ] || { echo "[demo] no cart was shown the bar with a product; see .run/demo-app.log"; exit 1; }
echo "[demo] experiments: $(curl -fsS "$URL/api/admin/experiments" | grep -o '"verdicts":\[[^]]*\]' | tr '\n' ' ')"
curl -fsS -o /dev/null -X POST "$URL/api/admin/monitoring/run" || { echo "[demo] the monitoring run failed; see .run/demo-app.log"; exit 1; }
echo "[demo] decision log: $(demo_sql "SELECT string_agg(kind || ' ' || n || ' (' || f || ' by a fallback)', ', ' ORDER BY kind) FROM (SELECT kind, count(*) AS n, count(*) FILTER (WHERE fallback) AS f FROM decisions GROUP BY kind) x")"
echo "[demo] monitoring: $(demo_sql "SELECT count(*) FROM model_drift") drift figures, $(demo_sql "SELECT count(*) FROM governance_alerts WHERE cleared_at IS NULL") open alerts$(demo_sql "SELECT coalesce(': ' || string_agg(model_kind || ' ' || metric, ', '), '') FROM governance_alerts WHERE cleared_at IS NULL")"
[ "$(demo_sql "SELECT count(DISTINCT kind) FROM decisions")" -ge 3 ] || { echo "[demo] the decision log misses a decision kind; see .run/demo-app.log"; exit 1; }
cart_page="$(curl -fsS "$URL/cart")" && grep -q 'data-pa-offers' <<<"$cart_page" || { echo "[demo] the storefront cart page does not open"; exit 1; }
for page in /admin /admin/upsells /admin/rules /admin/review /admin/risk /admin/churn /admin/cart-offers /admin/experiments /admin/ai /admin/privacy /admin/operations /admin/governance /admin/decisions; do
  curl -fsS -o /dev/null "$URL$page" || { echo "[demo] $page does not open; see .run/demo-app.log"; exit 1; }
done

echo "App running at $URL"
echo "  admin:              $URL/admin  (overview, upsells and models, rules, review queue, risk settings, churn segments, cart offers, experiments, AI use, data and privacy, operations, model governance, decisions)"
echo "  storefront preview: $URL/demo/storefront  (product pages: $URL/products/{handle}; the cart with the Cart offers block: $URL/cart)"
echo "  readiness: $URL/readyz   logs: .run/demo-app.log"
if [ "${1:-}" = "--check" ]; then exit 0; fi
echo "Press Ctrl-C to stop."
wait "$APP_PID"
