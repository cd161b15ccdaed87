using System.Globalization;
using IntentEval;

// Purchase-intent evaluation on files (scripts/eval/intent.sh). Two modes:
//  (a) any labelled CSV: the intent model's own TabularOptions beside logistic regression on the same features, the best
//      single feature and XGBoost, on the same rows, in one run (5-fold stratified CV or a time split);
//  (b) --carts: one row per cart in the CartSnapshot columns + ordered + at, run through IntentTrainer.Train itself.
CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
const string Usage = """
    usage: IntentEval --file F.csv --label COL [--drop a,b] [--categorical Month,VisitorType] [--folds 5 | --time-col C --test-from V]
                      [--seed 2024] [--xgb scripts/bench/xgb_compare.py] [--threads N]
             any labelled CSV (label TRUE/FALSE, 1/0 or yes/no). Columns: numbers stay numeric (empty = missing), TRUE/FALSE
             become 1/0, --categorical ones and other text (<= 100 levels) are categorical, text with more levels is
             dropped (said so). CV: stratified folds, seeded as MlBench's. Time split: rows with C < V train, C >= V test,
             C (a number, a date or a month name) is not a feature. Models: the intent model's TabularOptions
             (IntentOptions.DefaultTabular), logistic regression on the same features with the same options, logistic
             regression on the single feature that ranks best on the training rows, and XGBoost (with --xgb) on the same
             fit / early-stopping / test rows. --threads N: ML.NET's and XGBoost's threads (default: the intent
             model's, 1; timings only: LightGbm is deterministic across thread counts).
           IntentEval --carts F.csv [--held-out 0.2] [--learner Auto|LightGbm|LogisticRegression] [--min-carts 300]
                      [--min-orders 50] [--min-abandoned 50] [--refit true|false]
             one row per cart: CartSnapshot columns (cart_value, items, distinct_products, minutes_since_created,
             minutes_since_updated, updates, reached_checkout, returning_customer, customer_orders, past_abandonments,
             device, hour_of_day, day_of_week, discount_applied, shop_median_order_value; names case- and
             underscore-insensitive; empty = unknown) plus ordered (true/false) and at (UTC date-time), through
             IntentTrainer.Train exactly as the app calls it.
    """;
var a = new Dictionary<string, string>(StringComparer.Ordinal);
for (var i = 0; i < args.Length; i++)
{
    if (args[i] is "-h" or "--help") { Console.WriteLine(Usage); return 0; }
    if (!args[i].StartsWith("--", StringComparison.Ordinal) || i + 1 >= args.Length) { Console.Error.WriteLine($"bad argument {args[i]}\n{Usage}"); return 2; }
    a[args[i][2..]] = args[++i];
}
try
{
    return a.ContainsKey("carts") ? CartsEval.Run(a) : LabelledEval.Run(a);
}
catch (UsageException e)
{
    Console.Error.WriteLine($"{e.Message}\n{Usage}");
    return 2;
}
