using System.Diagnostics;
using System.Globalization;
using MlBench;
using PluginApp.Ml.Common;
using PluginApp.Ml.Intent;
using PluginApp.Ml.Metrics;
using PluginApp.Ml.Tabular;

namespace IntentEval;

/// <summary>
/// Mode (a): a labelled CSV through the intent model's TabularOptions and three comparisons, all on the same rows. Why a
/// generic file: no public data set has carts with the CartSnapshot columns; the online-shoppers sessions (did the session
/// end in a purchase) are the closest public purchase-intent task and have published figures.
/// </summary>
internal static class LabelledEval
{
    private const int MaxLevels = 100;

    private sealed record Data(TabularSchema Schema, TabularRow[] Rows, Matrix X, bool[] Y, double[]? Time, int Skipped, List<string> Notes);

    /// <summary>Metrics of one model on one test part.</summary>
    private sealed record Scored(double Auc, double PrAuc, double Ap, double Brier, double Ece)
    {
        public static Scored Of(double[] p, bool[] y)
        {
            var e = BinaryMetrics.Evaluate(p, y);
            return new Scored(e.RocAuc, e.PrAuc, e.AveragePrecision, e.Brier, e.ExpectedCalibrationError);
        }

        public static Scored Mean(IEnumerable<Scored> all)
        {
            var s = all.ToArray();
            return new Scored(s.Average(x => x.Auc), s.Average(x => x.PrAuc), s.Average(x => x.Ap), s.Average(x => x.Brier), s.Average(x => x.Ece));
        }
    }

    private sealed class Learner(string name)
    {
        public string Name { get; set; } = name;
        public List<Scored> Scores { get; } = [];
        public double Seconds { get; set; }
    }

    public static int Run(IReadOnlyDictionary<string, string> a)
    {
        var watch = Stopwatch.StartNew();
        var file = a.Req("file");
        var label = a.Req("label");
        var timeCol = a.Opt("time-col");
        var testFrom = a.Opt("test-from");
        if ((timeCol is null) != (testFrom is null)) throw new UsageException("--time-col and --test-from go together");
        if (timeCol is not null && a.ContainsKey("folds")) throw new UsageException("give --folds or --time-col/--test-from, not both");
        var folds = a.Int("folds", 5);
        if (folds < 2) throw new UsageException("--folds must be at least 2");
        var seed = (ulong)a.Int("seed", 2024);
        // Why one thread count for both: LightGbm runs deterministic, so the count changes timings, never results, and
        // XGBoost gets what the intent model uses (1 by default) unless --threads says otherwise.
        var tab = IntentOptions.DefaultTabular;
        var threads = a.Int("threads", tab.Threads == 0 ? Environment.ProcessorCount : tab.Threads);
        if (a.ContainsKey("threads")) tab = tab with { Threads = threads };
        var xgb = new XgbBridge(a.Opt("xgb"), Path.Combine(Path.GetTempPath(), "intenteval-xgb"));

        var data = Load(file, label, a.Set("drop"), a.Set("categorical"), timeCol);
        var tLoad = watch.Elapsed.TotalSeconds;
        var n = data.Y.Length;
        var pos = data.Y.Count(v => v);
        Console.WriteLine($"file {file}: {n:N0} rows ({data.Skipped:N0} skipped: wrong field count), label {label}: {pos:N0} positive ({(double)pos / n:P2}); read in {tLoad:F1} s");
        Console.WriteLine($"features ({data.Schema.Count}): numeric {string.Join(", ", data.Schema.Features.Where(f => f.Kind == FeatureKind.Numeric).Select(f => f.Name))}; categorical {string.Join(", ", data.Schema.Features.Where(f => f.Kind == FeatureKind.Categorical).Select(f => $"{f.Name} ({data.Rows.Select(r => r[f.Name]).Distinct().Count()} levels)"))}");
        foreach (var note in data.Notes) Console.WriteLine($"  {note}");

        // ---- splits: (train, test) index sets, and inside train the fit / early-stopping-and-calibration rows ----
        var splits = new List<(string Name, int[] Train, int[] Test, int[] Fit, int[] Valid)>();
        string protocol;
        if (timeCol is null)
        {
            // Same fold assignment as MlBench's shoppers CV (SplitMix64(2024), negatives first), so the figures line up.
            var rng = new SplitMix64(seed);
            var fold = new int[n];
            foreach (var cls in new[] { false, true })
            {
                var idx = Enumerable.Range(0, n).Where(i => data.Y[i] == cls).ToArray();
                rng.Shuffle(idx.AsSpan());
                for (var j = 0; j < idx.Length; j++) fold[idx[j]] = j % folds;
            }
            for (var k = 0; k < folds; k++)
            {
                var tr = Enumerable.Range(0, n).Where(i => fold[i] != k).ToArray();
                var te = Enumerable.Range(0, n).Where(i => fold[i] == k).ToArray();
                // Why SplitIndices: exactly the rows TabularTrainer.Train would hold out itself, named so XGBoost gets them too.
                var (f, v) = TabularTrainer.SplitIndices(tr.Select(i => data.Y[i]).ToArray(), tab.ValidationFraction, tab.Seed);
                splits.Add(($"fold{k}", tr, te, f.Select(i => tr[i]).ToArray(), v.Select(i => tr[i]).ToArray()));
            }
            protocol = $"{folds}-fold stratified CV (seed {seed}, MlBench's fold assignment); inside each training fold {tab.ValidationFraction:P0} (stratified, seed {tab.Seed}) for early stopping and calibration; means over folds";
        }
        else
        {
            var cut = TimeKey(testFrom!) ?? throw new UsageException($"--test-from '{testFrom}' is not a number, a date or a month name");
            var time = data.Time!;
            var tr = Enumerable.Range(0, n).Where(i => time[i] < cut).OrderBy(i => time[i]).ThenBy(i => i).ToArray();
            var te = Enumerable.Range(0, n).Where(i => time[i] >= cut).ToArray();
            if (tr.Length == 0 || te.Length == 0) throw new UsageException($"--test-from {testFrom} leaves {tr.Length} training and {te.Length} test rows");
            // The intent trainer's rule: the latest share of the training rows (ties at the cut included) for early
            // stopping and calibration; the stratified split when that part lacks a class.
            var (f, v) = LatestShare(tr, time, tab.ValidationFraction);
            if (!v.Any(i => data.Y[i]) || v.All(i => data.Y[i]) || !f.Any(i => data.Y[i]))
            {
                var (fl, vl) = TabularTrainer.SplitIndices(tr.Select(i => data.Y[i]).ToArray(), tab.ValidationFraction, tab.Seed);
                (f, v) = (fl.Select(i => tr[i]).ToArray(), vl.Select(i => tr[i]).ToArray());
            }
            splits.Add(("time", tr, te, f, v));
            protocol = $"time split on {timeCol}: {tr.Length:N0} rows before {testFrom} train ({f.Length:N0} fit, {v.Length:N0} latest for early stopping and calibration), {te.Length:N0} from {testFrom} on test ({te.Count(i => data.Y[i]):N0} positive)";
        }
        Console.WriteLine($"protocol: {protocol}");
        Console.WriteLine($"intent model options (IntentOptions.DefaultTabular): {tab}");

        var ours = new Learner("intent model (IntentOptions.DefaultTabular)");
        var logistic = new Learner("logistic regression, same features and options");
        var single = new Learner("best single feature, logistic regression");
        var xgbLearner = new Learner("XGBoost (same fit / early-stopping / test rows)");
        var constant = new Learner("base rate of the training rows (a constant)");
        var learners = new List<string>();
        var trees = new List<int>();
        var chosen = new List<string>();
        var xgbTrees = new List<int>();
        TabularExample Ex(int i) => new(data.Rows[i], data.Y[i]);
        foreach (var (name, tr, te, fit, valid) in splits)
        {
            var teY = te.Select(i => data.Y[i]).ToArray();
            var teRows = te.Select(i => data.Rows[i]).ToArray();
            var fitEx = fit.Select(Ex).ToArray();
            var validEx = valid.Select(Ex).ToArray();

            var sw = Stopwatch.StartNew();
            using (var m = new TabularTrainer(data.Schema, tab).Train(fitEx, validEx))
            {
                ours.Seconds += sw.Elapsed.TotalSeconds;
                learners.Add(m.Info.Learner.ToString());
                trees.Add(m.Info.Trees);
                ours.Scores.Add(Scored.Of(m.PredictProbabilities(teRows), teY));
            }
            sw.Restart();
            using (var m = new TabularTrainer(data.Schema, tab with { Learner = TabularLearner.LogisticRegression }).Train(fitEx, validEx))
            {
                logistic.Seconds += sw.Elapsed.TotalSeconds;
                logistic.Scores.Add(Scored.Of(m.PredictProbabilities(teRows), teY));
            }
            sw.Restart();
            var best = BestSingleFeature(data, tr);
            chosen.Add(best);
            var one = new TabularSchema(data.Schema[best]);
            using (var m = new TabularTrainer(one, new TabularOptions { Learner = TabularLearner.LogisticRegression, Calibrator = TabularCalibrator.None, ValidationFraction = 0, Seed = tab.Seed })
                .Train(tr.Select(i => new TabularExample(one.Row(data.Rows[i][best]), data.Y[i])).ToArray()))
            {
                single.Seconds += sw.Elapsed.TotalSeconds;
                single.Scores.Add(Scored.Of(m.PredictProbabilities(te.Select(i => one.Row(data.Rows[i][best])).ToArray()), teY));
            }
            var rate = tr.Average(i => data.Y[i] ? 1.0 : 0);
            constant.Scores.Add(Scored.Of(Enumerable.Repeat(rate, te.Length).ToArray(), teY));
            xgb.Add($"intent_{name}", data.X.Subset(fit), fit.Select(i => data.Y[i]).ToArray(), data.X.Subset(valid), valid.Select(i => data.Y[i]).ToArray(),
                data.X.Subset(te), tab, threads, s =>
                {
                    if (s.Values is null) return;
                    xgbLearner.Scores.Add(Scored.Of(s.Values, teY));
                    xgbLearner.Seconds += s.Seconds;
                    xgbTrees.Add(s.Trees);
                });
            Console.Error.WriteLine($"  [{watch.Elapsed.TotalSeconds:F0}s] {name} done");
        }
        var tOurs = watch.Elapsed.TotalSeconds;
        var hasXgb = a.Opt("xgb") is not null;
        if (hasXgb) xgb.Run(new Table(), Console.Error);

        ours.Name += trees.Any(t => t > 0)
            ? FormattableString.Invariant($": {string.Join("/", learners.Distinct())}, {trees.Average():F0} trees avg")
            : $": {string.Join("/", learners.Distinct())}";
        single.Name += $": {string.Join(", ", chosen.GroupBy(c => c).Select(g => $"{g.Key} in {g.Count()}/{chosen.Count}"))}";
        if (xgbTrees.Count > 0) xgbLearner.Name += FormattableString.Invariant($", {xgbTrees.Average():F0} trees avg");

        Console.WriteLine();
        Console.WriteLine($"| model ({(splits.Count > 1 ? $"mean of {splits.Count} folds" : "time split")}) | ROC-AUC | PR-AUC | average precision | Brier | ECE | train s |");
        Console.WriteLine("|---|---|---|---|---|---|---|");
        foreach (var l in new[] { ours, logistic, single, xgbLearner })
        {
            if (l.Scores.Count == 0)
            {
                Console.WriteLine(hasXgb
                    ? "| XGBoost | failed (see the log above) | | | | | |"
                    : "| XGBoost | skipped: python3-xgboost is not installed (apt-get install python3-xgboost, then scripts/eval/intent.sh) | | | | | |");
                continue;
            }
            var s = Scored.Mean(l.Scores);
            Console.WriteLine(FormattableString.Invariant($"| {l.Name} | {s.Auc:F4} | {s.PrAuc:F4} | {s.Ap:F4} | {s.Brier:F4} | {s.Ece:F4} | {l.Seconds:F2} |"));
        }
        var c = Scored.Mean(constant.Scores);
        Console.WriteLine(FormattableString.Invariant($"| {constant.Name} | {c.Auc:F4} | - | {c.Ap:F4} | {c.Brier:F4} | {c.Ece:F4} | - |"));
        Console.WriteLine();
        Console.WriteLine("PR-AUC is ML.NET's evaluator (optimistic on tied scores); average precision is scikit-learn's definition.");
        Console.WriteLine($"time: read {tLoad:F1} s, ML.NET models {tOurs - tLoad:F1} s, XGBoost {(hasXgb ? $"{watch.Elapsed.TotalSeconds - tOurs:F1} s (process, files and training)" : "skipped")}, total {watch.Elapsed.TotalSeconds:F1} s");
        return 0;
    }

    /// <summary>Indexes (already in time order) split like IntentTrainer.SplitByTime: the latest round(share x n), ties at
    /// the cut included, go to the second part.</summary>
    private static (int[] Earlier, int[] Latest) LatestShare(int[] byTime, double[] time, double share)
    {
        var k = byTime.Length - (int)Math.Round(share * byTime.Length, MidpointRounding.AwayFromZero);
        if (k >= byTime.Length) return (byTime, []);
        var cut = time[byTime[k]];
        return (byTime.Where(i => time[i] < cut).ToArray(), byTime.Where(i => time[i] >= cut).ToArray());
    }

    /// <summary>
    /// The feature whose values rank the training rows best (ROC-AUC either way round; a categorical by its training rate
    /// per level; missing numerics rank in the middle). Chosen on the training rows only, never on the test part.
    /// </summary>
    private static string BestSingleFeature(Data data, int[] train)
    {
        var y = train.Select(i => data.Y[i]).ToArray();
        var best = (Name: data.Schema.Features[0].Name, Auc: -1.0);
        foreach (var f in data.Schema.Features)
        {
            double[] score;
            if (f.Kind == FeatureKind.Numeric)
            {
                var v = train.Select(i => data.Rows[i][f.Name] is float x ? (double)x : double.NaN).ToArray();
                var mean = v.Where(x => !double.IsNaN(x)).DefaultIfEmpty(0).Average();
                score = v.Select(x => double.IsNaN(x) ? mean : x).ToArray();
            }
            else
            {
                var level = train.Select(i => data.Rows[i][f.Name] as string ?? "(missing)").ToArray();
                var rate = Enumerable.Range(0, train.Length).GroupBy(j => level[j]).ToDictionary(g => g.Key, g => g.Average(j => y[j] ? 1.0 : 0));
                score = level.Select(l => rate[l]).ToArray();
            }
            var auc = BinaryMetrics.RocAuc(Ranks(score), y);
            auc = Math.Max(auc, 1 - auc);
            if (auc > best.Auc) best = (f.Name, auc);
        }
        return best.Name;
    }

    /// <summary>Mid-ranks scaled into (0, 1): BinaryMetrics clips scores to probabilities, and ranks keep the order and the ties.</summary>
    private static double[] Ranks(double[] v)
    {
        var order = Enumerable.Range(0, v.Length).OrderBy(i => v[i]).ToArray();
        var r = new double[v.Length];
        for (var s = 0; s < order.Length;)
        {
            var e = s;
            while (e + 1 < order.Length && v[order[e + 1]] == v[order[s]]) e++;
            for (var j = s; j <= e; j++) r[order[j]] = ((s + e) / 2.0 + 1) / (v.Length + 1);
            s = e + 1;
        }
        return r;
    }

    /// <summary>A time value as a sortable number: a number as is, a date as ticks, a month name (Jan, June, ...) as 1-12.</summary>
    internal static double? TimeKey(string s)
    {
        s = s.Trim();
        if (double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var x)) return x;
        if (DateTime.TryParse(s, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var d)) return d.Ticks;
        if (s.Length >= 3)
        {
            var i = Array.FindIndex(CultureInfo.InvariantCulture.DateTimeFormat.AbbreviatedMonthNames, m => m.Length > 0 && s.StartsWith(m, StringComparison.OrdinalIgnoreCase));
            if (i >= 0) return i + 1;
        }
        return null;
    }

    private static Data Load(string path, string label, ISet<string> drop, ISet<string> categorical, string? timeCol)
    {
        var all = Csv.Rows(path).ToList();
        if (all.Count < 2) throw new UsageException($"{path} has no data rows");
        var header = all[0].Select(h => h.Trim()).ToArray();
        var body = all.Skip(1).Where(r => r.Length == header.Length).ToList();
        var skipped = all.Count - 1 - body.Count;
        int Col(string name)
        {
            try { return Csv.Col(header, name); }
            catch (ArgumentException e) { throw new UsageException(e.Message); }
        }
        var yCol = Col(label);
        foreach (var c in categorical.Concat(drop)) Col(c);
        var y = new bool[body.Count];
        for (var r = 0; r < body.Count; r++)
            y[r] = ArgsExtensions.ParseBool(body[r][yCol]) ?? throw new UsageException($"row {r + 2}: label '{body[r][yCol]}' is not TRUE/FALSE, 1/0 or yes/no");
        double[]? time = null;
        var tCol = -1;
        if (timeCol is not null)
        {
            tCol = Col(timeCol);
            time = body.Select((r, i) => TimeKey(r[tCol]) ?? throw new UsageException($"row {i + 2}: {timeCol} '{r[tCol]}' is not a number, a date or a month name")).ToArray();
        }
        var notes = new List<string>();
        var features = new List<TabularFeature>();
        var values = new List<object?[]>();
        var names = new List<string>();
        var columns = new List<float[]>();
        for (var c = 0; c < header.Length; c++)
        {
            if (c == yCol || c == tCol || drop.Contains(header[c])) continue;
            var raw = body.Select(r => r[c].Trim()).ToArray();
            if (!categorical.Contains(header[c]) && raw.All(v => v.Length == 0 || Csv.TryNum(v, out _)))
            {
                var col = raw.Select(v => v.Length == 0 ? float.NaN : (float)Csv.Num(v)).ToArray();
                Numeric(header[c], col);
            }
            else if (!categorical.Contains(header[c]) && raw.All(v => v.Length == 0 || (ArgsExtensions.ParseBool(v) is not null && !Csv.TryNum(v, out _))))
                Numeric(header[c], raw.Select(v => v.Length == 0 ? float.NaN : ArgsExtensions.ParseBool(v)!.Value ? 1f : 0f).ToArray());
            else
            {
                var levels = raw.Where(v => v.Length > 0).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToArray();
                if (levels.Length > MaxLevels && !categorical.Contains(header[c]))
                {
                    notes.Add($"dropped {header[c]}: {levels.Length:N0} distinct text values (an id?); name it in --categorical to keep its {MaxLevels} most frequent");
                    continue;
                }
                if (!categorical.Contains(header[c])) notes.Add($"{header[c]} is text, used as categorical ({levels.Length} levels)");
                features.Add(TabularFeature.Categorical(header[c], header[c]));
                values.Add(raw.Select(v => (object?)(v.Length == 0 ? null : v)).ToArray());
                foreach (var lv in levels)
                {
                    // XGBoost gets the same categories as one-hot columns (ML.NET one-hot encodes inside the model).
                    names.Add($"{header[c]}={lv}");
                    columns.Add(raw.Select(v => v == lv ? 1f : 0f).ToArray());
                }
            }
        }
        void Numeric(string name, float[] col)
        {
            features.Add(TabularFeature.Numeric(name, name));
            values.Add(col.Select(v => float.IsNaN(v) ? null : (object?)v).ToArray());
            names.Add(name);
            columns.Add(col);
        }
        var schema = new TabularSchema(features);
        var rows = Enumerable.Range(0, body.Count).Select(r => schema.Row(values.Select(col => col[r]).ToArray())).ToArray();
        var m = new float[body.Count * names.Count];
        for (var r = 0; r < body.Count; r++)
            for (var c = 0; c < names.Count; c++) m[r * names.Count + c] = columns[c][r];
        return new Data(schema, rows, new Matrix(m, body.Count, names.ToArray()), y, time, skipped, notes);
    }
}
