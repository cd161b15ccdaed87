#!/usr/bin/env bash
# Recommender candidates on an interactions file (RecommenderEval): the store training's split, every candidate (ALS on
# log-compressed confidence, bought together, bestsellers, their blend) on the same held-out customers, the one chosen
# by NDCG@10 and by how much, and ALS on raw weights beside it.
# Usage: scripts/eval/recommender.sh [RecommenderEval arguments]   (no arguments: Online Retail, then ml-100k)
#   scripts/eval/recommender.sh --file F.csv[.gz] --user-col C --item-col I --time-col T [--quantity-col Q]
#                               [--date-format F|unix] [--separator ,|tab] [--columns a,b,c] [--item-needs-digit] [--until D]
set -euo pipefail
ROOT_DIR="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT_DIR"
source scripts/lib/dotnet.sh
dotnet build scripts/eval/RecommenderEval -c Release -nologo -v q >/dev/null
run() { dotnet scripts/eval/RecommenderEval/bin/Release/net10.0/RecommenderEval.dll "$@"; }
if [ $# -eq 0 ]; then
  DATA="$(cd "$ROOT_DIR/.." && pwd)/shared/data"
  run --name "Online Retail" --file "$DATA/online-retail/online_retail.csv.gz" --user-col CustomerID --item-col StockCode \
    --time-col InvoiceDate --quantity-col Quantity --item-needs-digit
  echo
  run --name "MovieLens 100K (every rating a purchase)" --file "$DATA/ml-100k/u.data" --separator tab --columns user,item,rating,time \
    --user-col user --item-col item --time-col time --date-format unix
else
  run "$@"
fi
