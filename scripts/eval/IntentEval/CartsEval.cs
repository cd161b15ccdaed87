using System.Diagnostics;
using System.Globalization;
using MlBench;
using PluginApp.Ml.Intent;
using PluginApp.Ml.Tabular;

namespace IntentEval;

/// <summary>
/// Mode (b): a store's cart export (one row per cart snapshot) through <see cref="IntentTrainer.Train"/> exactly as the
/// app calls it: the time split, the baselines, the refusal below the minimums, the served model, a save/load check.
/// </summary>
internal static class CartsEval
{
    private static readonly string[] Known =
    [
        "cartvalue", "items", "distinctproducts", "minutessincecreated", "minutessinceupdated", "updates", "reachedcheckout",
        "returningcustomer", "customerorders", "pastabandonments", "device", "hourofday", "dayofweek", "discountapplied",
        "shopmedianordervalue", "ordered", "at",
    ];

    public static int Run(IReadOnlyDictionary<string, string> a)
    {
        var watch = Stopwatch.StartNew();
        var file = a.Req("carts");
        var refit = a.Opt("refit") is { } rf ? ArgsExtensions.ParseBool(rf) ?? throw new UsageException("--refit takes true or false") : true;
        var learner = a.Opt("learner") is { } l
            ? Enum.TryParse<TabularLearner>(l, ignoreCase: true, out var parsed) ? parsed : throw new UsageException($"--learner '{l}': Auto, LightGbm or LogisticRegression")
            : IntentOptions.DefaultTabular.Learner;
        var defaults = new IntentOptions();
        var options = new IntentOptions
        {
            Tabular = IntentOptions.DefaultTabular with { Learner = learner },
            HeldOutShare = a.Double("held-out", defaults.HeldOutShare),
            MinCarts = a.Int("min-carts", defaults.MinCarts),
            MinOrders = a.Int("min-orders", defaults.MinOrders),
            MinAbandoned = a.Int("min-abandoned", defaults.MinAbandoned),
            Refit = refit,
        };
        try { options.Validate(); }
        catch (ArgumentOutOfRangeException e) { throw new UsageException($"option {e.ParamName}: {e.Message}"); }

        // ---- read ----
        var rows = Csv.Rows(file).ToList();
        if (rows.Count == 0) throw new UsageException($"{file} is empty");
        var header = rows[0].Select(Normalize).ToArray();
        int Col(string name) => Array.IndexOf(header, name);
        foreach (var required in new[] { "cartvalue", "ordered", "at" })
            if (Col(required) < 0) throw new UsageException($"{file}: column '{required}' (any case, underscores allowed) is required; header: {string.Join(", ", rows[0])}");
        var absent = Known.Where(k => Col(k) < 0).ToArray();
        var ignored = rows[0].Where(h => !Known.Contains(Normalize(h))).ToArray();
        var examples = new List<IntentExample>();
        var bad = 0;
        string? firstError = null;
        for (var r = 1; r < rows.Count; r++)
        {
            var f = rows[r];
            string? Get(string name) => Col(name) is var c and >= 0 && c < f.Length && f[c].Trim().Length > 0 ? f[c].Trim() : null;
            try
            {
                double? D(string name) => Get(name) is { } s ? double.Parse(s, NumberStyles.Float, CultureInfo.InvariantCulture) : null;
                int? I(string name) => Get(name) is { } s ? (int)Math.Round(double.Parse(s, NumberStyles.Float, CultureInfo.InvariantCulture)) : null;
                bool? B(string name) => Get(name) is { } s ? ArgsExtensions.ParseBool(s) ?? throw new FormatException($"{name} '{s}' is not true/false") : null;
                var snapshot = new CartSnapshot
                {
                    CartValue = D("cartvalue") ?? throw new FormatException("cart_value is empty"),
                    Items = I("items") ?? 0,
                    DistinctProducts = I("distinctproducts") ?? 0,
                    MinutesSinceCreated = D("minutessincecreated") ?? 0,
                    MinutesSinceUpdated = D("minutessinceupdated") ?? 0,
                    Updates = I("updates") ?? 0,
                    ReachedCheckout = B("reachedcheckout") ?? false,
                    ReturningCustomer = B("returningcustomer"),
                    CustomerOrders = I("customerorders"),
                    PastAbandonments = I("pastabandonments"),
                    Device = Get("device"),
                    HourOfDay = I("hourofday"),
                    DayOfWeek = I("dayofweek"),
                    DiscountApplied = B("discountapplied") ?? false,
                    ShopMedianOrderValue = D("shopmedianordervalue"),
                };
                snapshot.Validate($"row {r + 1}");
                var ordered = B("ordered") ?? throw new FormatException("ordered is empty");
                var at = DateTime.Parse(Get("at") ?? throw new FormatException("at is empty"), CultureInfo.InvariantCulture,
                    DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal);
                examples.Add(new IntentExample(snapshot, ordered, at));
            }
            catch (Exception e) when (e is FormatException or OverflowException or ArgumentException)
            {
                bad++;
                firstError ??= $"row {r + 1}: {e.Message}";
            }
        }
        var tRead = watch.Elapsed.TotalSeconds;
        Console.WriteLine($"file {file}: {rows.Count - 1:N0} rows, {bad:N0} unreadable{(firstError is null ? "" : $" (first: {firstError})")}; read in {tRead:F1} s");
        if (absent.Length > 0) Console.WriteLine($"  columns not in the file (unknown for every cart): {string.Join(", ", absent)}");
        if (ignored.Length > 0) Console.WriteLine($"  columns ignored: {string.Join(", ", ignored)}");
        if (examples.Count > 0)
            Console.WriteLine($"{examples.Count:N0} carts, {examples.Count(e => e.Ordered):N0} became orders ({(double)examples.Count(e => e.Ordered) / examples.Count:P1}), {examples.Min(e => e.At):yyyy-MM-dd HH:mm} to {examples.Max(e => e.At):yyyy-MM-dd HH:mm}");

        // ---- train ----
        var t0 = watch.Elapsed;
        var result = IntentTrainer.Train(examples, options);
        var tTrain = (watch.Elapsed - t0).TotalSeconds;
        Console.WriteLine();
        if (result.Model is not { } model)
        {
            Console.WriteLine(result.NotEnoughData);
            Console.WriteLine($"time: read {tRead:F1} s, Train {tTrain:F1} s, total {watch.Elapsed.TotalSeconds:F1} s");
            return 0;
        }
        Console.WriteLine($"split: {result.TrainingCarts:N0} carts before {result.HeldOutFrom:yyyy-MM-dd HH:mm} train ({result.TrainingOrders:N0} orders, latest {result.TrainingUntil:yyyy-MM-dd HH:mm}); the {result.HeldOutCarts:N0} latest carts are held out ({result.HeldOutOrders:N0} orders)");
        var info = result.EvaluatedInfo!;
        Console.WriteLine($"evaluated fit: {info.Learner}{(info.Trees > 0 ? $" ({info.Trees} trees)" : "")}, calibrator {info.Calibrator}, {info.TrainingRows:N0} fit rows + {info.ValidationRows:N0} latest for early stopping and calibration");
        Console.WriteLine();
        Console.WriteLine($"| scorer (held out, latest {result.HeldOutCarts:N0} carts) | ROC-AUC | PR-AUC | average precision | Brier | base-rate Brier | ECE |");
        Console.WriteLine("|---|---|---|---|---|---|---|");
        foreach (var e in result.Baselines.Prepend(result.Evaluation!))
            Console.WriteLine(FormattableString.Invariant($"| {e.Name} | {e.Metrics.RocAuc:F3} | {e.Metrics.PrAuc:F3} | {e.Metrics.AveragePrecision:F3} | {e.Metrics.Brier:F4} | {e.BaseRateBrier:F4} | {e.Metrics.ExpectedCalibrationError:F3} |"));
        Console.WriteLine("(PR-AUC is ML.NET's evaluator, optimistic on tied scores such as the constant and the 0/1 baselines; average precision is not.)");
        Console.WriteLine();
        var p = result.HeldOutProbabilities;
        var order = Enumerable.Range(0, p.Length).OrderBy(i => p[i]).ThenBy(i => i).ToArray();
        var cells = Enumerable.Range(0, 10).Select(d =>
        {
            var part = order[(d * order.Length / 10)..((d + 1) * order.Length / 10)];
            return part.Length == 0 ? "-" : FormattableString.Invariant($"{part.Average(i => p[i]):F2}/{part.Average(i => result.HeldOutLabels[i] ? 1.0 : 0):F2}");
        });
        Console.WriteLine($"reliability by decile of the held-out score (mean predicted / observed order rate, lowest first):\n  {string.Join("  ", cells)}");
        Console.WriteLine();
        Console.WriteLine($"Train says: {result.Reason}");

        // ---- the served model ----
        var latest = examples.OrderByDescending(e => e.At).Take(1000).Select(e => e.Snapshot).ToArray();
        var t1 = watch.Elapsed;
        var scored = model.Score(latest);
        var tScore = (watch.Elapsed - t1).TotalSeconds;
        Console.WriteLine(FormattableString.Invariant($"served: {model.Info.Learner}{(model.Info.Trees > 0 ? $" ({model.Info.Trees} trees)" : "")} on {model.TrainingCarts:N0} carts (base rate {model.BaseRate:P1}); scored the latest {latest.Length:N0} carts with reasons in {tScore:F2} s"));
        var byScore = Enumerable.Range(0, scored.Length).OrderByDescending(i => scored[i].Probability).ToArray();
        foreach (var (what, i) in new[] { ("highest", byScore[0]), ("median", byScore[byScore.Length / 2]), ("lowest", byScore[^1]) })
            Console.WriteLine(FormattableString.Invariant($"  {what}: {scored[i].Probability:P0}: {string.Join("; ", scored[i].Reasons.Select(r => $"{r.Text} ({(r.Contribution > 0 ? "+" : "-")})"))}"));
        using var blob = new MemoryStream();
        model.Save(blob);
        blob.Position = 0;
        using var loaded = IntentModel.Load(blob);
        var same = latest.Take(200).All(s => loaded.PredictProbability(s) == model.PredictProbability(s));
        Console.WriteLine($"  model blob {blob.Length:N0} bytes; reloaded model scores the same: {(same ? "yes" : "NO")}");
        model.Dispose();
        Console.WriteLine();
        Console.WriteLine($"time: read {tRead:F1} s, Train {tTrain:F1} s (evaluated fit, baselines{(options.Refit ? ", refit" : "")}), total {watch.Elapsed.TotalSeconds:F1} s");
        return same ? 0 : 1;
    }

    private static string Normalize(string h) => h.Trim().Replace("_", "", StringComparison.Ordinal).Replace(" ", "", StringComparison.Ordinal).ToLowerInvariant();
}
