#!/usr/bin/env bash
# Purchase-intent evaluation on files (IntentEval). Two modes:
#   scripts/eval/intent.sh            the online-shoppers sessions (label Revenue, Month and VisitorType categorical),
#                                     5-fold stratified CV: the intent model's TabularOptions beside logistic regression
#                                     on the same features, the best single feature and XGBoost, on the same rows
#   scripts/eval/intent.sh --file F.csv --label COL [--drop a,b] [--categorical a,b] [--folds 5 | --time-col C --test-from V]
#                                     the same on any labelled CSV
#   scripts/eval/intent.sh --carts F.csv [--held-out 0.2] [--learner Auto] [--refit true]
#                                     one row per cart (CartSnapshot columns + ordered + at) through IntentTrainer.Train
# XGBoost runs when Debian's python3-xgboost is installed (scripts/bench/xgb_compare.py); otherwise the table says it was
# skipped. Data is read in place (../shared/data), never copied.
set -euo pipefail
ROOT_DIR="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT_DIR"
source scripts/lib/dotnet.sh
if [ $# -eq 0 ]; then
  DATA="$(cd "$ROOT_DIR/.." && pwd)/shared/data/online-shoppers/online_shoppers_intention.csv"
  set -- --file "$DATA" --label Revenue --categorical Month,VisitorType --folds 5
fi
XGB=()
if [[ " $* " != *" --carts "* && " $* " != *" --xgb "* ]] && /usr/bin/python3 -c 'import xgboost' 2>/dev/null; then
  XGB=(--xgb scripts/bench/xgb_compare.py)
fi
dotnet build scripts/eval/IntentEval -c Release -nologo -v q >/dev/null
dotnet scripts/eval/IntentEval/bin/Release/net10.0/IntentEval.dll "$@" "${XGB[@]}"
