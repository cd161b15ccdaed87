#!/usr/bin/env bash
# Churn evaluation on a transactions file (ChurnEval): time split, every scorer on the same held-out customers, the
# reference's 5-fold CV, fitted BG/NBD and Gamma-Gamma parameters, and what ChurnTrainer.Train would serve.
# Usage: scripts/eval/churn.sh [ChurnEval arguments]   (no arguments: Online Retail with the model-notes protocol)
#   scripts/eval/churn.sh --file F.csv.gz --customer-col C --time-col T (--amount-col A | --quantity-col Q --price-col P)
#                         [--order-col O] [--category-col K] --cutoff 2011-09-01 --end 2011-12-09 [--date-format F]
set -euo pipefail
ROOT_DIR="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT_DIR"
source scripts/lib/dotnet.sh
if [ $# -eq 0 ]; then
  DATA="$(cd "$ROOT_DIR/.." && pwd)/shared/data/online-retail/online_retail.csv.gz"
  set -- --file "$DATA" --customer-col CustomerID --time-col InvoiceDate --quantity-col Quantity --price-col UnitPrice \
    --order-col InvoiceNo --category-col StockCode --cutoff 2011-09-01 --end 2011-12-09
fi
dotnet build scripts/eval/ChurnEval -c Release -nologo -v q >/dev/null
dotnet scripts/eval/ChurnEval/bin/Release/net10.0/ChurnEval.dll "$@"
