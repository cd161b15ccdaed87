#!/usr/bin/env bash
# Training benchmark: seconds to train, evaluate and register the recommender of a store holding the whole
# Online Retail set (the training after the backfill, then one on demand), and the app's peak resident memory while
# it trains the recommender on demand. Usage: scripts/bench/train.sh   (ports: BENCH_APP_PORT, default 5092; BENCH_PG_PORT)
# BULK_INVOICES=N trains a store of the set's first N invoices instead (a smaller store, for the cost's slope).
set -euo pipefail
ROOT_DIR="$(cd "$(dirname "$0")/../.." && pwd)"
source "$ROOT_DIR/scripts/lib/bench-store.sh"
bench_store_up "${BENCH_APP_PORT:-5092}"
# The peak of the on-demand training alone: wait for the trainings the backfill queued, then reset the high-water mark.
settled() { bench_psql "SELECT count(*) FILTER (WHERE state = 'running')||'/'||count(*) FROM training_runs"; }
last=""
for _ in $(seq 1 300); do now=$(settled); [ "$now" = "$last" ] && [ "${now%%/*}" = 0 ] && break; last=$now; sleep 2; done
kib() { awk -v k="$1" '$1 == k":" {print $2}' "/proc/$APP_PID/status"; }
peak_after_backfill_kib=$(kib VmHWM)
echo 5 > "/proc/$APP_PID/clear_refs" # Linux: resets VmHWM to the current resident size
rest_kib=$(kib VmRSS)
curl -fsS -X POST "$URL/api/admin/models/train?kind=recommender" >/dev/null
for _ in $(seq 1 1200); do
  [ "$(bench_psql "SELECT count(*) FROM training_runs WHERE kind = 'recommender' AND trigger = 'on demand' AND state <> 'running'")" -ge 1 ] && break
  sleep 0.2
done
peak_kib=$(kib VmHWM)
echo "store: $(bench_psql "SELECT (SELECT count(*) FROM orders)||' orders, '||(SELECT count(*) FROM order_lines)||' lines, '||(SELECT count(*) FROM customers)||' customers, '||(SELECT count(*) FROM products)||' products'")"
bench_psql "SELECT kind, trigger, state, rows, round(extract(epoch FROM finished_at - started_at)::numeric, 2), model_version,
              round((metrics->>'RecallAt10')::numeric, 4), round((metrics->>'NdcgAt10')::numeric, 4), round((metrics->>'BaselineRecallAt10')::numeric, 4),
              metrics->>'TestUsers', metrics->>'Split', translate(error, E'|\n', '/ ')
            FROM training_runs ORDER BY id" | while IFS='|' read -r kind trigger state rows secs version recall ndcg base users split error; do
  if [ "$kind" = recommender ] && [ -n "$version" ]; then
    echo "training $kind ($trigger): $rows interactions, $secs s to train, evaluate and register v$version; held-out Recall@10 $recall (popularity $base), NDCG@10 $ndcg on $users customers ($split)"
  elif [ -n "$version" ]; then
    echo "training $kind ($trigger): $rows rows, $secs s to train, evaluate and register v$version"
  else
    echo "training $kind ($trigger): $state in $secs s, no version registered${error:+ ($error)}"
  fi
done
awk -v a="$peak_after_backfill_kib" -v r="$rest_kib" -v p="$peak_kib" 'BEGIN {
  printf "app resident memory: peak %.0f MB through the backfill and the trainings it queued; %.0f MB at rest, peak %.0f MB while training the recommender on demand (VmHWM)\n", a / 1024, r / 1024, p / 1024
}'
