#!/usr/bin/env bash
# Order risk end to end on the fraud simulation, the way a store arrives: its history (TRAIN_FROM to TRAIN_TO) comes in by
# the install's bulk backfill, holding the orders cancelled for fraud by then (each fraud is cancelled LABEL_DELAY days after
# it was placed); the app trains the store's model after the backfill, on the orders older than the label delay; the
# cancellations dated after the export then arrive as orders/cancelled webhooks, and the days from TRAIN_TO to TEST_TO are
# replayed as signed orders/create webhooks, each scored live. It then computes ROC-AUC, average precision and card
# precision@100 on TEST_FROM to TEST_TO from the scores the app stored, beside the same code's figures offline
# (scripts/eval/RiskEval). No label of the live days is sent: the model and the label windows see only what was known.
# Usage: scripts/eval/risk.sh [--data DIR] [--train-from 2018-06-11 --train-to 2018-08-08 --test-from 2018-08-08 --test-to 2018-08-15]
#        [--label-delay-days 7] [--small-stores 30,60,100,200]
# --small-stores then also draws stores of that many fraud labels from the training days (up to the label delay before
# --train-to), five draws a size, each trained with the app's own trainer and judged on the test days: the model alone, and
# the served score at the evidence weight and at the weight training chose (RiskEval --small-stores; each draw's choice in
# words in .run/eval/small-stores.log).
# DIR holds fraud-handbook-sim/*.csv.gz (default ../shared/data; its first day is 2018-06-11). The defaults evaluate the
# handbook's own test week (8 to 14 August 2018) after its 7-day delay. Why the history starts long before the training
# orders that matter: the label windows of an order count only labels known by its time, so the first LABEL_DELAY days of
# a history have none and its first 30 days have short address windows; a run whose history began 18 July (30 Nov 2026)
# trained on orders whose label features were all empty and learnt amounts only.
set -euo pipefail
ROOT_DIR="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT_DIR"
source scripts/lib/dotnet.sh
source scripts/lib/postgres.sh
source scripts/lib/app.sh

DATA_DIR="$(cd "$ROOT_DIR/.." && pwd)/shared/data"
TRAIN_FROM=2018-06-11; TRAIN_TO=2018-08-08; TEST_FROM=2018-08-08; TEST_TO=2018-08-15; DELAY=7; SMALL=""
while [ $# -gt 0 ]; do
  case "$1" in
    --data) DATA_DIR="$2";; --train-from) TRAIN_FROM="$2";; --train-to) TRAIN_TO="$2";;
    --test-from) TEST_FROM="$2";; --test-to) TEST_TO="$2";; --label-delay-days) DELAY="$2";; --small-stores) SMALL="$2";;
    *) echo "unknown argument $1"; exit 2;;
  esac
  shift 2
done

PORT=5091; URL="http://127.0.0.1:$PORT"; SHOP=demo-store.myshopify.com
mkdir -p .run/eval
pg_reset eval
pg_up eval 55436
cleanup() { app_stop; [ -n "${STANDIN_PID:-}" ] && kill "$STANDIN_PID" 2>/dev/null || true; pg_down eval; }
trap cleanup EXIT
eval_psql() { runuser -u postgres -- psql -h 127.0.0.1 -p 55436 -U postgres -d pluginapp -tAc "$1"; }

dotnet build app/PluginApp.csproj -c Release -nologo -v q >/dev/null
dotnet build tests/ShopifyStandIn -c Release -nologo -v q >/dev/null
dotnet build scripts/eval/RiskEval -c Release -nologo -v q >/dev/null
started=$(date +%s)
echo "[eval] history $TRAIN_FROM to $TRAIN_TO as the bulk export a backfill reads, fraud cancelled $DELAY days after each fraud order"
rm -rf .run/eval/bulk
scripts/replay.sh --dataset fraud --data "$DATA_DIR" --from "$TRAIN_FROM" --to "$TRAIN_TO" --jsonl-out .run/eval/bulk \
  --fraud-cancellation-delay-days "$DELAY" --labels-out .run/eval/train-labels.csv | tail -n 3
SECRET="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
rm -f .run/eval/standin-url
dotnet tests/ShopifyStandIn/bin/Release/net10.0/ShopifyStandIn.dll --secret "$SECRET" --bulk-dir .run/eval/bulk \
  --port-file .run/eval/standin-url > .run/eval/standin.log 2>&1 &
STANDIN_PID=$!
for _ in $(seq 1 60); do [ -s .run/eval/standin-url ] && break; sleep 0.25; done

# The Demo environment installs demo-store.myshopify.com and opens its admin API without a session token.
export ASPNETCORE_ENVIRONMENT=Demo Logging__LogLevel__Default=Warning
export ConnectionStrings__Postgres="$PG_CONN" Shopify__ClientId=eval-client Shopify__ClientSecret="$SECRET" Shopify__AppUrl="$URL"
export Shopify__ShopUrlTemplate="$(cat .run/eval/standin-url)/shops/{shop}"
# Labels arrive LABEL_DELAY days after each order; training after the backfill only, never mid-replay.
export Risk__LabelMaturity="$DELAY.00:00:00" Training__RetrainAfterNewOrders=1000000000 Backfill__PollInterval="00:00:00.200"
app_keyring "$ROOT_DIR/.run/eval/keyring.pfx"
app_start "$PORT" .run/eval/app.log
for _ in $(seq 1 120); do curl -fsS "$URL/api/admin/shop" >/dev/null 2>&1 && break; sleep 0.5; done

wait_scored() {
  for _ in $(seq 1 3600); do [ "$(eval_psql "SELECT count(*) FROM risk_pending")" = 0 ] && return 0; sleep 1; done
  echo "orders still waiting to be scored after an hour"; return 1
}

backfill_started=$(date +%s)
for _ in $(seq 1 7200); do
  state="$(curl -fsS "$URL/api/admin/backfill" 2>/dev/null | grep -o '"state":"[a-z]*"' | head -1 || true)"
  case "$state" in *completed*) break;; *failed*) echo "[eval] backfill failed; see .run/eval/app.log"; exit 1;; esac
  sleep 1
done
echo "[eval] backfill: $(eval_psql "SELECT count(*) FROM orders") orders, $(eval_psql "SELECT count(*) FROM risk_labels") fraud labels, $(( $(date +%s) - backfill_started )) s"
echo "[eval] training the store's models after the backfill (the risk model on the orders older than $DELAY days)"
for _ in $(seq 1 7200); do
  [ "$(eval_psql "SELECT count(*) FROM training_runs WHERE kind = 'risk' AND finished_at IS NOT NULL")" != 0 ] \
    && [ "$(eval_psql "SELECT count(*) FROM training_runs WHERE finished_at IS NULL")" = 0 ] && break
  sleep 1
done
echo "[eval] training: $(eval_psql "SELECT state || coalesce(': ' || error, '') || ', ' || round(extract(epoch FROM finished_at - started_at)) || ' s' FROM training_runs WHERE kind = 'risk' ORDER BY id DESC LIMIT 1")"
echo "[eval] model: $(eval_psql "SELECT version || ' ' || status || ' (' || coalesce(status_reason, '') || ')' FROM models WHERE kind = 'risk' ORDER BY version DESC LIMIT 1")"
echo "[eval] the fraud cancellations dated after the export, as orders/cancelled webhooks"
scripts/replay.sh --dataset fraud --data "$DATA_DIR" --from "$TRAIN_FROM" --to "$TRAIN_TO" --url "$URL" --secret "$SECRET" --shop "$SHOP" \
  --rate 3000 --concurrency 16 --fraud-cancellation-delay-days "$DELAY" --cancellations-after "$TRAIN_TO" | tail -n 1

echo "[eval] $TRAIN_TO to $TEST_TO scored live, evaluated from $TEST_FROM (no labels sent after the training days)"
scripts/replay.sh --dataset fraud --data "$DATA_DIR" --from "$TRAIN_TO" --to "$TEST_TO" --url "$URL" --secret "$SECRET" --shop "$SHOP" \
  --rate 3000 --concurrency 16 --labels-out .run/eval/test-labels.csv | tail -n 2
wait_scored
cat .run/eval/train-labels.csv <(tail -n +2 .run/eval/test-labels.csv) > .run/eval/labels.csv
dotnet scripts/eval/RiskEval/bin/Release/net10.0/RiskEval.dll --conn "$PG_CONN" --shop "$SHOP" --labels .run/eval/labels.csv \
  --train-from "$TRAIN_FROM" --train-to "$TRAIN_TO" --test-from "$TEST_FROM" --test-to "$TEST_TO" --label-delay-days "$DELAY"
if [ -n "$SMALL" ]; then
  echo "[eval] small stores of $SMALL fraud labels, drawn from $TRAIN_FROM to $DELAY days before $TRAIN_TO"
  dotnet scripts/eval/RiskEval/bin/Release/net10.0/RiskEval.dll --conn "$PG_CONN" --shop "$SHOP" --labels .run/eval/labels.csv \
    --train-from "$TRAIN_FROM" --train-to "$(date -u -d "$TRAIN_TO - $DELAY days" +%F)" --test-from "$TEST_FROM" --test-to "$TEST_TO" \
    --small-stores "$SMALL" 2>.run/eval/small-stores.log || { echo "[eval] the small stores failed; see .run/eval/small-stores.log"; exit 1; }
fi
echo "[eval] took $(( $(date +%s) - started )) s"
