using System.Globalization;
using PluginApp.Ml.Metrics;
using PluginApp.Ml.Tabular;

namespace PluginApp.Ml.Churn;

/// <summary>A time-split comparison of every churn scorer: features before a cutoff, label = no purchase in [cutoff, end).
/// The discriminative model is trained on the split one horizon earlier (features before cutoff − H, labels in
/// [cutoff − H, cutoff), stacked with <see cref="ChurnOptions.TrainingSnapshots"/> − 1 earlier snapshots); the
/// calibrations of the one-feature scorers on the latest training snapshot. Nothing is ever split at random.</summary>
/// <param name="TrainingRows">Rows the discriminative model was trained on (all snapshots).</param>
/// <param name="Scores">Held-out probabilities per scorer name, aligned with <paramref name="CustomerIds"/> and <paramref name="Labels"/>.</param>
public sealed record ChurnBacktest(int HorizonDays, DateTime TrainingCutoff, DateTime Cutoff, DateTime End, BgNbd? TrainingBgNbd,
    BgNbd? BgNbd, IReadOnlyList<ChurnEvaluation> Evaluations, IReadOnlyDictionary<string, double[]> Scores, string[] CustomerIds,
    bool[] Labels, int TrainingRows, int TrainingPositives, TabularModelInfo? DiscriminativeInfo, ChurnModelKind Kind, string Reason)
{
    /// <summary>BG/NBD fitted before the cutoff against the held-out window's purchase days; null when nobody had bought before it.</summary>
    public ChurnForecastCheck? Forecast { get; init; }

    internal TabularRow[] HeldOutRows { get; init; } = [];
    internal double[] HeldOutPNoOrder { get; init; } = [];
}

/// <summary>
/// Trains a store's churn model. Protocol (time-based, never random), with H the horizon and now the training moment:
/// evaluation fit on features before c0 = now − 2H with labels "no purchase in [c0, c0 + H)"; held-out features before
/// c1 = now − H with labels "no purchase in [c1, now)"; only customers whose first purchase is before the cutoff. Recency
/// only, BG/NBD (probabilistic) and the ML.NET classifier on <see cref="ChurnFeatures"/> (discriminative) are scored on
/// the same held-out rows. The discriminative model is chosen when the held-out set is big enough
/// (<see cref="ChurnOptions.MinHeldOut"/> customers and <see cref="ChurnOptions.MinHeldOutPerClass"/> of each class) and
/// its held-out ROC-AUC beats the probabilistic one. The classifier's training rows stack the latest snapshot with
/// earlier ones (<see cref="ChurnOptions.TrainingSnapshots"/>, default 3, 30 days apart), every label window ending by
/// the cutoff it is evaluated at. Serving fit: the classifier retrained at c1 (labels [c1, now), plus earlier snapshots);
/// BG/NBD and Gamma-Gamma refitted on all history before now. When the chosen model's held-out Brier score is not below
/// the base rate's (short histories), the served probabilities are shrunk toward the latest churn rate
/// (<see cref="ChurnShrinkage"/>, <see cref="ChurnOptions.ShrinkWhenUncalibrated"/>).
/// </summary>
public static class ChurnTrainer
{
    /// <summary>Scorer names in <see cref="ChurnTrainingResult.Evaluations"/> and <see cref="ChurnBacktest.Scores"/>.</summary>
    public const string RecencyOnly = "recency only", BgNbdNoOrder = "BG/NBD P(no order)", BgNbdExpected = "BG/NBD expected orders",
        Probabilistic = "probabilistic (calibrated BG/NBD)", Discriminative = "discriminative";

    /// <summary>
    /// The horizon rule: H = the <see cref="ChurnOptions.HorizonGapQuantile"/> quantile (default 80th percentile) of the
    /// gaps between each customer's consecutive purchase days before now, rounded up to whole days and clamped to
    /// [MinHorizonDays, MaxHorizonDays]; DefaultHorizonDays (90) when there are fewer than MinRepeatGaps (50) gaps.
    /// </summary>
    public static (int Days, string Rule) Horizon(IReadOnlyList<CustomerHistory> customers, DateTime now, ChurnOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(customers);
        var o = options ?? new ChurnOptions();
        o.Validate();
        var gaps = customers.Select(c => CustomerProfile.At(c, now)).Where(p => p is not null).SelectMany(p => p!.Gaps()).Order().ToArray();
        if (gaps.Length < o.MinRepeatGaps)
            return (o.DefaultHorizonDays, $"{o.DefaultHorizonDays} days (the default): only {gaps.Length} gaps between repeat purchase days, {o.MinRepeatGaps} needed to use the store's own");
        var q = gaps[Math.Clamp((int)Math.Ceiling(o.HorizonGapQuantile * gaps.Length) - 1, 0, gaps.Length - 1)];
        var days = Math.Clamp((int)Math.Ceiling(q), o.MinHorizonDays, o.MaxHorizonDays);
        return (days, string.Create(CultureInfo.InvariantCulture,
            $"{days} days: {o.HorizonGapQuantile:P0} of the {gaps.Length} gaps between a customer's consecutive purchase days are at most {q:F0} days (clamped to [{o.MinHorizonDays}, {o.MaxHorizonDays}])"));
    }

    /// <summary>Trains, evaluates and picks the store's churn model at <paramref name="now"/> (see the type doc).</summary>
    public static ChurnTrainingResult Train(IReadOnlyList<CustomerHistory> customers, DateTime now, ChurnOptions? options = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(customers);
        var o = options ?? new ChurnOptions();
        o.Validate();
        var profilesNow = customers.Select(c => CustomerProfile.At(c, now)).ToArray();
        var repeat = profilesNow.Count(p => p is not null && p.Days.Length >= 2);
        var (h, rule) = Horizon(customers, now, o);
        var c1 = now.AddDays(-h);
        var c0 = c1.AddDays(-h);
        if (repeat < o.MinRepeatCustomers)
            return new ChurnTrainingResult(null, $"not enough data yet: {repeat} customers with repeat orders, {o.MinRepeatCustomers} needed", [],
                ChurnModelKind.Probabilistic, "no model", h, rule, c0, c1, customers.Count, repeat, 0, 0, 0);

        var bt = Backtest(customers, c1, now, o, ct);
        var summariesNow = profilesNow.Where(p => p is not null).Select(p => p!.Summary()).ToArray();
        var bgNow = BgNbd.Fit(summariesNow, ct);
        var gg = GammaGamma.Fit(summariesNow, o.GammaGammaTrimShare, ct);
        TabularModel? classifier = null, calibrator = null;
        var kind = bt.Kind;
        var reason = bt.Reason;
        var positives = bt.Labels.Count(l => l);
        var negatives = bt.Labels.Length - positives;
        if (o.Kind is { } pinned && pinned != kind)
        {
            if (pinned == ChurnModelKind.Probabilistic || (positives >= 2 && negatives >= 2))
                (kind, reason) = (pinned, $"{pinned} pinned by the options (the held-out comparison said: {reason})");
            else reason += $"; {pinned} was pinned by the options but the split at {c1:yyyy-MM-dd} lacks churners or returning customers to train it";
        }
        if (kind == ChurnModelKind.Discriminative)
        {
            classifier = TrainClassifier(Stack(customers, bt.CustomerIds, bt.HeldOutRows, bt.Labels, c1, h, o, ct), o);
        }
        else if (positives >= 2 && negatives >= 2)
            calibrator = FitOneFeature(bt.HeldOutPNoOrder.Select(ChurnModel.CalibrationRow).ToArray(), bt.Labels, o.Seed);
        else reason += "; served uncalibrated (the held-out split lacks churners or stayers to calibrate on)";
        ChurnShrinkage? shrinkage = null;
        double? shrunkBrier = null;
        var chosen = bt.Evaluations.FirstOrDefault(e => e.Name == (kind == ChurnModelKind.Discriminative ? Discriminative : Probabilistic));
        if (o.ShrinkWhenUncalibrated && chosen is not null && !(chosen.Metrics.Brier < chosen.BaseRateBrier) && positives >= 2 && negatives >= 2)
        {
            var held = bt.Scores[chosen.Name];
            var rate = (double)positives / bt.Labels.Length;
            shrinkage = ChurnShrinkage.Fit(held, bt.Labels, rate);
            shrunkBrier = CrossFittedShrunkBrier(held, bt.Labels, bt.CustomerIds, o.Seed);
            reason += string.Create(CultureInfo.InvariantCulture,
                $"; its held-out Brier score {chosen.Metrics.Brier:F3} was not below the base rate's {chosen.BaseRateBrier:F3}, so its probabilities are served shrunk toward the latest churn rate {rate:P0} (weight {shrinkage.Value.Weight:F2}; held-out Brier then {shrunkBrier:F3}, cross-fitted)");
        }
        var model = new ChurnModel(kind, h, bgNow, gg, classifier, calibrator, shrinkage);
        return new ChurnTrainingResult(model, null, bt.Evaluations, kind, reason, h, rule, c0, c1, customers.Count, repeat,
            bt.TrainingRows, bt.Labels.Length, positives) { ShrunkBrier = shrunkBrier, Forecast = bt.Forecast };
    }

    /// <summary>Brier score of the shrinkage judged on customers it was not fitted on: 5 folds by a seeded hash of the
    /// customer id, each shrunk with the rate and weight fitted on the other four.</summary>
    private static double CrossFittedShrunkBrier(double[] p, bool[] labels, string[] ids, int seed)
    {
        var fold = ids.Select(id => Bucket(id, seed) % 5).ToArray();
        var q = new double[p.Length];
        for (var f = 0; f < 5; f++)
        {
            var fit = Enumerable.Range(0, p.Length).Where(i => fold[i] != f).ToArray();
            if (fit.Length == 0) fit = Enumerable.Range(0, p.Length).ToArray();
            var rate = fit.Count(i => labels[i]) / (double)fit.Length;
            var s = ChurnShrinkage.Fit(fit.Select(i => p[i]).ToArray(), fit.Select(i => labels[i]).ToArray(), rate);
            for (var i = 0; i < p.Length; i++) if (fold[i] == f) q[i] = s.Apply(p[i]);
        }
        return BinaryMetrics.Brier(q, labels);
    }

    /// <summary>
    /// The comparison behind <see cref="Train"/> at any cutoff: H = whole days in [cutoff, end); training split at
    /// cutoff − H. Scorers: recency only, BG/NBD P(no order) (raw), BG/NBD expected orders, the probabilistic kind
    /// (BG/NBD P(no order) Platt-calibrated on the training split) and the discriminative classifier. The one-feature
    /// scorers are turned into probabilities by a logistic regression fitted on the training split, so their Brier scores
    /// mean something; their ranking is the raw feature's.
    /// </summary>
    public static ChurnBacktest Backtest(IReadOnlyList<CustomerHistory> customers, DateTime cutoff, DateTime end, ChurnOptions? options = null,
        CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(customers);
        var o = options ?? new ChurnOptions();
        o.Validate();
        var h = (int)Math.Floor((end - cutoff).TotalDays);
        if (h < 1) throw new ArgumentException("end must be at least one day after cutoff.", nameof(end));
        var c0 = cutoff.AddDays(-h);
        var fit = BuildSplit(customers, c0, cutoff, h, ct);
        var held = BuildSplit(customers, cutoff, end, h, ct);
        var evaluations = new List<ChurnEvaluation>();
        var scores = new Dictionary<string, double[]>();
        var yFit = fit.Labels;
        var yHeld = held.Labels;
        var fitBoth = yFit.Any(l => l) && yFit.Any(l => !l);
        void Add(string name, double[] p)
        {
            scores[name] = p;
            if (yHeld.Length > 0) evaluations.Add(Evaluate(name, p, yHeld));
        }
        double[] OneFeature(Func<int, SplitRows, double> x, string name)
        {
            if (!fitBoth) return Enumerable.Range(0, yHeld.Length).Select(i => Squash(x(i, held))).ToArray();
            using var m = FitOneFeature(Enumerable.Range(0, yFit.Length).Select(i => ChurnModel.CalibrationSchemaRow(x(i, fit))).ToArray(), yFit, o.Seed);
            return m.PredictProbabilities(Enumerable.Range(0, yHeld.Length).Select(i => ChurnModel.CalibrationSchemaRow(x(i, held))).ToArray());
        }
        Add(RecencyOnly, OneFeature((i, s) => Math.Log(1 + s.Profiles[i].DaysSinceLast), RecencyOnly));
        if (held.BgNbd is not null)
        {
            Add(BgNbdNoOrder, held.PNoOrder);
            Add(BgNbdExpected, OneFeature((i, s) => -Math.Log(1 + s.BgNbd!.ExpectedOrders(s.Profiles[i].Summary(), h)), BgNbdExpected));
            if (fit.BgNbd is not null) Add(Probabilistic, OneFeature((i, s) => Logit(s.PNoOrder[i]), Probabilistic));
            else Add(Probabilistic, held.PNoOrder);
        }

        var posFit = yFit.Count(l => l);
        var negFit = yFit.Length - posFit;
        var posHeld = yHeld.Count(l => l);
        var negHeld = yHeld.Length - posHeld;
        TabularModelInfo? info = null;
        var stacked = (Rows: yFit.Length, Positives: posFit);
        string reason;
        var kind = ChurnModelKind.Probabilistic;
        var prob = evaluations.FirstOrDefault(e => e.Name == Probabilistic);
        if (held.BgNbd is null)
            reason = "probabilistic: no customer had a purchase before the held-out cutoff, so nothing could be evaluated";
        else if (posFit < o.MinTrainingPerClass || negFit < o.MinTrainingPerClass)
            reason = $"probabilistic: the discriminative model was not trained: the earlier split has {posFit} churners and {negFit} returning customers, {o.MinTrainingPerClass} of each needed";
        else
        {
            var examples = Stack(customers, fit.Ids, fit.Rows, yFit, c0, h, o, ct);
            stacked = (examples.Length, examples.Positives);
            using var clf = TrainClassifier(examples, o);
            info = clf.Info;
            Add(Discriminative, clf.PredictProbabilities(held.Rows));
            var disc = evaluations.First(e => e.Name == Discriminative);
            if (yHeld.Length < o.MinHeldOut || posHeld < o.MinHeldOutPerClass || negHeld < o.MinHeldOutPerClass)
                reason = $"probabilistic: too few held-out customers to trust the comparison: {yHeld.Length} customers, {posHeld} churners, {negHeld} returning; {o.MinHeldOut} customers and {o.MinHeldOutPerClass} of each needed";
            else if (prob is null || disc.Metrics.RocAuc > prob.Metrics.RocAuc)
            {
                kind = ChurnModelKind.Discriminative;
                reason = string.Create(CultureInfo.InvariantCulture,
                    $"discriminative: held-out ROC-AUC {disc.Metrics.RocAuc:F3} vs {prob?.Metrics.RocAuc ?? double.NaN:F3} for the probabilistic model on {yHeld.Length} customers");
            }
            else
                reason = string.Create(CultureInfo.InvariantCulture,
                    $"probabilistic: its held-out ROC-AUC {prob.Metrics.RocAuc:F3} is at least the discriminative model's {disc.Metrics.RocAuc:F3} on {yHeld.Length} customers");
        }
        return new ChurnBacktest(h, c0, cutoff, end, fit.BgNbd, held.BgNbd, evaluations, scores, held.Ids, yHeld, stacked.Rows, stacked.Positives, info, kind, reason)
        {
            HeldOutRows = held.Rows,
            HeldOutPNoOrder = held.PNoOrder,
            Forecast = held.BgNbd is { } bgHeld ? ChurnForecastCheck.Of(held.Histories.Zip(held.Profiles).ToArray(), bgHeld, cutoff, h) : null,
        };
    }

    /// <summary>Held-out metrics of one scorer plus its top-decile lift.</summary>
    public static ChurnEvaluation Evaluate(string name, double[] probabilities, bool[] labels) =>
        new(name, BinaryMetrics.Evaluate(probabilities, labels), TopDecileLift(probabilities, labels));

    /// <summary>Churn rate among the 10 % highest scores (ties broken by position) over the overall rate. Why not
    /// <see cref="Lift"/>: that one compares two disjoint A/B arms with an interval; here the top decile is part of the whole.</summary>
    public static double TopDecileLift(IReadOnlyList<double> scores, IReadOnlyList<bool> labels)
    {
        if (scores.Count == 0) return double.NaN;
        var top = Math.Max(1, scores.Count / 10);
        var order = Enumerable.Range(0, scores.Count).OrderByDescending(i => scores[i]).ThenBy(i => i).Take(top);
        var rate = (double)labels.Count(l => l) / labels.Count;
        return rate == 0 ? double.NaN : order.Count(i => labels[i]) / (double)top / rate;
    }

    /// <summary>The latest snapshot's rows plus <see cref="ChurnOptions.TrainingSnapshots"/> − 1 earlier ones, each
    /// <see cref="ChurnOptions.SnapshotSpacingDays"/> apart; every label window ends at or before latest + H.</summary>
    private static StackedExamples Stack(IReadOnlyList<CustomerHistory> customers, string[] ids, TabularRow[] rows, bool[] labels, DateTime latest, int h,
        ChurnOptions o, CancellationToken ct)
    {
        var examples = rows.Select((row, i) => new TabularExample(row, labels[i])).ToList();
        var who = ids.ToList();
        for (var k = 1; k < o.TrainingSnapshots; k++)
        {
            var t = latest.AddDays(-k * o.SnapshotSpacingDays);
            var s = BuildSplit(customers, t, t.AddDays(h), h, ct);
            if (s.Rows.Length == 0) break;
            examples.AddRange(s.Rows.Select((row, i) => new TabularExample(row, s.Labels[i])));
            who.AddRange(s.Ids);
        }
        return new StackedExamples(examples.ToArray(), who.ToArray());
    }

    private sealed record StackedExamples(TabularExample[] Examples, string[] Customers)
    {
        public int Length => Examples.Length;
        public int Positives => Examples.Count(e => e.Label);
    }

    /// <summary>
    /// Trains the classifier. Why validation by customer: stacked snapshots repeat a customer, and a row-level validation
    /// split would put a copy of a training customer into the rows that pick LightGbm's tree count and fit the calibrator
    /// (measured on Online Retail, LightGbm, 3 snapshots: 353 trees and held-out ROC-AUC 0.717 with a row-level split;
    /// 69 trees and 0.731 with this one). So 10 % of the customers, chosen
    /// by a seeded hash of their id, are held out with all their snapshots (all of it still before the cutoff).
    /// </summary>
    private static TabularModel TrainClassifier(StackedExamples stacked, ChurnOptions o)
    {
        var trainer = new TabularTrainer(ChurnFeatures.Schema, ClassifierOptions(o));
        var inValidation = stacked.Customers.Select(id => Bucket(id, o.Seed) == 0).ToArray();
        var fit = stacked.Examples.Where((_, i) => !inValidation[i]).ToArray();
        var validation = stacked.Examples.Where((_, i) => inValidation[i]).ToArray();
        bool Both(TabularExample[] e) => e.Any(x => x.Label) && e.Any(x => !x.Label);
        return Both(fit) && Both(validation) ? trainer.Train(fit, validation) : trainer.Train(stacked.Examples);
    }

    /// <summary>A customer's validation bucket in [0, 10): FNV-1a of the id mixed with the seed through SplitMix64.</summary>
    private static int Bucket(string id, int seed)
    {
        var h = 14695981039346656037UL;
        foreach (var ch in id) h = (h ^ ch) * 1099511628211UL;
        return (int)(new Common.SplitMix64(h ^ (ulong)seed).NextUInt64() % 10);
    }

    internal static TabularOptions ClassifierOptions(ChurnOptions o) => new() { Learner = o.Learner, Seed = o.Seed, LogisticL2 = o.LogisticL2 };

    /// <summary>Platt scaling with the project's own logistic regression: one feature, no separate calibrator.</summary>
    internal static TabularModel FitOneFeature(TabularRow[] rows, bool[] labels, int seed) =>
        new TabularTrainer(ChurnModel.CalibrationSchema, new TabularOptions
        {
            Learner = TabularLearner.LogisticRegression, Calibrator = TabularCalibrator.None, ValidationFraction = 0, Seed = seed,
        }).Train(rows.Select((r, i) => new TabularExample(r, labels[i])).ToArray());

    private static double Logit(double p)
    {
        p = Math.Clamp(p, 1e-9, 1 - 1e-9);
        return Math.Log(p / (1 - p));
    }

    private static double Squash(double x) => 1 / (1 + Math.Exp(-x));

    private sealed record SplitRows(string[] Ids, CustomerHistory[] Histories, CustomerProfile[] Profiles, bool[] Labels, BgNbd? BgNbd, double[] PNoOrder,
        TabularRow[] Rows);

    /// <summary>Customers with a purchase before <paramref name="cutoff"/>: features from before it (BG/NBD fitted on the
    /// same history), label = no purchase in [cutoff, end).</summary>
    private static SplitRows BuildSplit(IReadOnlyList<CustomerHistory> customers, DateTime cutoff, DateTime end, int h, CancellationToken ct)
    {
        var ids = new List<string>();
        var histories = new List<CustomerHistory>();
        var profiles = new List<CustomerProfile>();
        var labels = new List<bool>();
        foreach (var c in customers)
        {
            ct.ThrowIfCancellationRequested();
            var p = CustomerProfile.At(c, cutoff);
            if (p is null) continue;
            ids.Add(c.CustomerId);
            histories.Add(c);
            profiles.Add(p);
            labels.Add(!CustomerProfile.PurchasedIn(c, cutoff, end));
        }
        var bg = profiles.Count == 0 ? null : BgNbd.Fit(profiles.Select(p => p.Summary()).ToArray(), ct);
        var pNo = bg is null ? [] : profiles.Select(p => bg.ProbabilityNoOrders(p.Summary(), h)).ToArray();
        var rows = profiles.Select(p => ChurnFeatures.Build(p, bg, h)).ToArray();
        return new SplitRows(ids.ToArray(), histories.ToArray(), profiles.ToArray(), labels.ToArray(), bg, pNo, rows);
    }
}
