#!/usr/bin/env bash
# Training benchmark: seconds to train, evaluate and register the recommender of a store holding the whole
# Online Retail set (the training after the backfill, then one on demand). Usage: scripts/bench/train.sh
set -euo pipefail
ROOT_DIR="$(cd "$(dirname "$0")/../.." && pwd)"
source "$ROOT_DIR/scripts/lib/bench-store.sh"
bench_store_up 5092
curl -fsS -X POST "$URL/api/admin/models/train" >/dev/null
for _ in $(seq 1 600); do [ "$(bench_psql "SELECT count(*) FROM training_runs WHERE state = 'completed'")" -ge 2 ] && break; sleep 0.5; done
echo "store: $(bench_psql "SELECT (SELECT count(*) FROM orders)||' orders, '||(SELECT count(*) FROM order_lines)||' lines, '||(SELECT count(*) FROM customers)||' customers, '||(SELECT count(*) FROM products)||' products'")"
bench_psql "SELECT trigger, rows, round(extract(epoch FROM finished_at - started_at)::numeric, 2), model_version,
              round((metrics->>'RecallAt10')::numeric, 4), round((metrics->>'NdcgAt10')::numeric, 4), round((metrics->>'BaselineRecallAt10')::numeric, 4),
              metrics->>'TestUsers', metrics->>'Split'
            FROM training_runs ORDER BY id" | while IFS='|' read -r trigger rows secs version recall ndcg base users split; do
  echo "training ($trigger): $rows interactions, $secs s to train, evaluate and register v$version; held-out Recall@10 $recall (popularity $base), NDCG@10 $ndcg on $users customers ($split)"
done
