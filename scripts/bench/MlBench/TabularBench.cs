using System.Diagnostics;
using System.Globalization;
using PluginApp.Ml.Common;
using PluginApp.Ml.Metrics;
using PluginApp.Ml.Tabular;

namespace MlBench;

/// <summary>
/// Fraud handbook ch. 3.4 protocol and k-fold CV on any labelled CSV: ML.NET LightGbm vs ML.NET L-BFGS logistic
/// regression vs XGBoost, all on the same fit / early-stopping / test rows and scored by the same metric code.
/// </summary>
internal static class TabularBench
{
    public static readonly string[] FraudFeatures =
    [
        "TX_AMOUNT", "TX_DURING_WEEKEND", "TX_DURING_NIGHT",
        "CUSTOMER_ID_NB_TX_1DAY_WINDOW", "CUSTOMER_ID_AVG_AMOUNT_1DAY_WINDOW", "CUSTOMER_ID_NB_TX_7DAY_WINDOW",
        "CUSTOMER_ID_AVG_AMOUNT_7DAY_WINDOW", "CUSTOMER_ID_NB_TX_30DAY_WINDOW", "CUSTOMER_ID_AVG_AMOUNT_30DAY_WINDOW",
        "TERMINAL_ID_NB_TX_1DAY_WINDOW", "TERMINAL_ID_RISK_1DAY_WINDOW", "TERMINAL_ID_NB_TX_7DAY_WINDOW",
        "TERMINAL_ID_RISK_7DAY_WINDOW", "TERMINAL_ID_NB_TX_30DAY_WINDOW", "TERMINAL_ID_RISK_30DAY_WINDOW",
    ];

    private static readonly TabularSchema FraudSchema = new(FraudFeatures.Select(f => TabularFeature.Numeric(f, f.ToLowerInvariant().Replace('_', ' '))));

    /// <summary>The learners' settings besides the LightGbm options passed in: LR on every training row with its own sigmoid.</summary>
    private static TabularOptions Logistic(int threads) => new()
    {
        Learner = TabularLearner.LogisticRegression,
        Calibrator = TabularCalibrator.None,
        ValidationFraction = 0,
        Threads = threads,
    };

    private sealed record Tx(long Id, int Day, long Card, bool Fraud, float[] X);

    private static List<Tx> LoadFraud(string[] files)
    {
        var txs = new List<Tx>();
        foreach (var file in files)
        {
            string[]? header = null;
            int[] cols = [];
            int cId = 0, cDay = 0, cCard = 0, cLabel = 0;
            foreach (var f in Csv.Rows(file))
            {
                if (header == null)
                {
                    header = f;
                    cols = FraudFeatures.Select(n => Csv.Col(f, n)).ToArray();
                    cId = Csv.Col(f, "TRANSACTION_ID"); cDay = Csv.Col(f, "TX_TIME_DAYS"); cCard = Csv.Col(f, "CUSTOMER_ID"); cLabel = Csv.Col(f, "TX_FRAUD");
                    continue;
                }
                var x = new float[cols.Length];
                for (var j = 0; j < cols.Length; j++) x[j] = (float)Csv.Num(f[cols[j]]);
                txs.Add(new Tx((long)Csv.Num(f[cId]), (int)Csv.Num(f[cDay]), (long)Csv.Num(f[cCard]), Csv.Num(f[cLabel]) != 0, x));
            }
        }
        // The handbook sorts by TRANSACTION_ID; day 0 of TX_TIME_DAYS is 2018-04-01.
        txs.Sort((a, b) => a.Id.CompareTo(b.Id));
        return txs;
    }

    private static (List<Tx> Train, List<Tx> Test) HandbookSplit(List<Tx> txs, DateTime trainStart, int trainDays, int delayDays, int testDays)
    {
        var day0 = (int)(trainStart - new DateTime(2018, 4, 1)).TotalDays;
        var train = txs.Where(t => t.Day >= day0 && t.Day < day0 + trainDays).ToList();
        var known = train.Where(t => t.Fraud).Select(t => t.Card).ToHashSet();
        var test = new List<Tx>();
        for (var d = 0; d < testDays; d++)
        {
            var testDay = day0 + trainDays + delayDays + d;
            // Frauds found on the day before the current delay window are known by now (handbook's rule).
            known.UnionWith(txs.Where(t => t.Day == day0 + trainDays + d - 1 && t.Fraud).Select(t => t.Card));
            test.AddRange(txs.Where(t => t.Day == testDay && !known.Contains(t.Card)));
        }
        return (train, test);
    }

    private static Matrix ToMatrix(List<Tx> txs) => new(txs.SelectMany(t => t.X).ToArray(), txs.Count, FraudFeatures);

    private static TabularRow[] ToRows(Matrix m, TabularSchema schema) =>
        Enumerable.Range(0, m.Rows).Select(r => schema.Row(m.Row(r).ToArray().Select(v => (object?)v).ToArray())).ToArray();

    /// <summary>Grid search on earlier windows of the same simulation (before the evaluation window's training week).</summary>
    public static TabularOptions TuneFraud(string[] tuningFiles, string[] windowStarts, TabularOptions start, TextWriter log)
    {
        var txs = LoadFraud(tuningFiles);
        var windows = windowStarts.Select(w => HandbookSplit(txs, DateTime.ParseExact(w, "yyyy-MM-dd", CultureInfo.InvariantCulture), 7, 7, 7)).ToArray();
        var best = start;
        var bestScore = -1.0;
        var grid = new List<TabularOptions>();
        foreach (var leaves in new[] { 7, 15, 31 })
            foreach (var minLeaf in new[] { 20, 100 })
                foreach (var lr in new[] { 0.05, 0.1 })
                    foreach (var l2 in new[] { 1.0, 10.0 })
                        grid.Add(start with { NumberOfLeaves = leaves, MinExamplesPerLeaf = minLeaf, LearningRate = lr, L2 = l2 });
        foreach (var o in grid)
        {
            double ap = 0, cp = 0;
            foreach (var (tr, te) in windows)
            {
                var examples = Examples(ToRows(ToMatrix(tr), FraudSchema), tr.Select(t => t.Fraud).ToArray());
                using var m = new TabularTrainer(FraudSchema, o).Train(examples);
                var s = m.PredictProbabilities(ToRows(ToMatrix(te), FraudSchema));
                var ty = te.Select(t => t.Fraud).ToArray();
                ap += BinaryMetrics.AveragePrecision(s, ty);
                cp += FraudMetrics.CardPrecisionAtK(te.Select(t => t.Day).ToArray(), te.Select(t => t.Card).ToArray(), s, ty, 100);
            }
            ap /= windows.Length; cp /= windows.Length;
            log.WriteLine(FormattableString.Invariant($"  tune fraud leaves={o.NumberOfLeaves} minLeaf={o.MinExamplesPerLeaf} lr={o.LearningRate} l2={o.L2}: AP {ap:F4} CP@100 {cp:F4}"));
            if (ap + cp > bestScore) { bestScore = ap + cp; best = o; }
        }
        log.WriteLine($"  fraud chosen: {best}");
        return best;
    }

    private static TabularExample[] Examples(TabularRow[] rows, bool[] y) => rows.Select((r, i) => new TabularExample(r, y[i])).ToArray();

    /// <summary>Scores of one learner on one test set, with the metrics every protocol reports.</summary>
    private sealed record Scored(double Auc, double Ap, double PrAuc, double Brier, double Ece, double Cp)
    {
        public static Scored Of(double[] p, bool[] y, Func<double[], double>? cp = null)
        {
            var e = BinaryMetrics.Evaluate(p, y);
            return new Scored(e.RocAuc, e.AveragePrecision, e.PrAuc, e.Brier, e.ExpectedCalibrationError, cp?.Invoke(p) ?? double.NaN);
        }

        public static Scored Mean(IReadOnlyList<Scored> s) => new(s.Average(x => x.Auc), s.Average(x => x.Ap), s.Average(x => x.PrAuc),
            s.Average(x => x.Brier), s.Average(x => x.Ece), s.Average(x => x.Cp));
    }

    private static void Report(Table table, string name, string reference, Scored lgb, Scored lgbRaw, Scored lr, Scored xgb, double lgbSec, double lrSec, double xgbSec, bool cardPrecision)
    {
        var refs = reference.Split(';').Select(r => r.Trim()).ToArray();
        string Ref(int i) => i < refs.Length ? refs[i] : "-";
        table.Add(name, "ROC-AUC", Table.F(lgb.Auc, 4), $"LR {Table.F(lr.Auc, 4)} / XGB {Table.F(xgb.Auc, 4)}", Ref(0),
            $"LGB {Table.F(lgbSec, 2)} / LR {Table.F(lrSec, 2)} / XGB {Table.F(xgbSec, 2)}");
        table.Add(name, "Average precision", Table.F(lgb.Ap, 4), $"LR {Table.F(lr.Ap, 4)} / XGB {Table.F(xgb.Ap, 4)}", Ref(1), "");
        table.Add(name, "PR-AUC (ML.NET evaluator)", Table.F(lgb.PrAuc, 4), $"LR {Table.F(lr.PrAuc, 4)} / XGB {Table.F(xgb.PrAuc, 4)}", "-", "");
        if (cardPrecision)
            table.Add(name, "Card Precision@100", Table.F(lgb.Cp), $"LR {Table.F(lr.Cp)} / XGB {Table.F(xgb.Cp)}", Ref(2), "");
        table.Add(name, "Brier (LGB: Platt / raw)", $"{Table.F(lgb.Brier, 4)} / {Table.F(lgbRaw.Brier, 4)}", $"LR {Table.F(lr.Brier, 4)} / XGB {Table.F(xgb.Brier, 4)}", "-", "");
        table.Add(name, "ECE, 10 equal-width bins (LGB: Platt / raw)", $"{Table.F(lgb.Ece, 4)} / {Table.F(lgbRaw.Ece, 4)}", $"LR {Table.F(lr.Ece, 4)} / XGB {Table.F(xgb.Ece, 4)}", "-", "");
    }

    private static double Sigmoid(double m) => 1 / (1 + Math.Exp(-m));

    public static void Fraud(string[] files, DateTime trainStart, int trainDays, int delayDays, int testDays, TabularOptions lgb, int threads,
        Table table, XgbBridge xgb, TextWriter log)
    {
        var (train, test) = HandbookSplit(LoadFraud(files), trainStart, trainDays, delayDays, testDays);
        log.WriteLine($"  fraud: train {train.Count} tx / {train.Count(t => t.Fraud)} frauds; test {test.Count} tx / {test.Count(t => t.Fraud)} frauds");
        var trX = ToMatrix(train);
        var trY = train.Select(t => t.Fraud).ToArray();
        var teX = ToMatrix(test);
        var teY = test.Select(t => t.Fraud).ToArray();
        var days = test.Select(t => t.Day).ToArray();
        var cards = test.Select(t => t.Card).ToArray();
        var trRows = ToRows(trX, FraudSchema);
        var teRows = ToRows(teX, FraudSchema);

        // The early-stopping rows are split off here so XGBoost gets exactly the same fit / validation rows.
        var (fit, valid) = TabularTrainer.SplitIndices(trY, lgb.ValidationFraction, lgb.Seed);
        var all = Examples(trRows, trY);
        var fitEx = fit.Select(i => all[i]).ToArray();
        var validEx = valid.Select(i => all[i]).ToArray();
        WarmUp(FraudSchema, fitEx, validEx, lgb, threads);
        var sw = Stopwatch.StartNew();
        using var g = new TabularTrainer(FraudSchema, lgb with { Threads = threads }).Train(fitEx, validEx);
        var gSec = sw.Elapsed.TotalSeconds;
        sw.Restart();
        using var lr = new TabularTrainer(FraudSchema, Logistic(threads)).Train(all);
        var lSec = sw.Elapsed.TotalSeconds;
        var gScores = g.Predict(teRows);
        var gs = gScores.Select(s => s.Probability).ToArray();
        var gRaw = gScores.Select(s => Sigmoid(s.Margin)).ToArray();
        var ls = lr.PredictProbabilities(teRows);
        log.WriteLine($"  fraud LightGbm kept {g.Info.Trees} trees");
        Identity(table, "fraud-handbook 3.4, 2000 test tx", g, lr, teRows.Take(2000).ToArray(), log);

        double Cp(double[] p) => FraudMetrics.CardPrecisionAtK(days, cards, p, teY, 100);
        var lgbScored = Scored.Of(gs, teY, Cp);
        var lgbRaw = Scored.Of(gRaw, teY);
        var lrScored = Scored.Of(ls, teY, Cp);
        xgb.Add("fraud", trX.Subset(fit), fit.Select(i => trY[i]).ToArray(), trX.Subset(valid), valid.Select(i => trY[i]).ToArray(), teX, lgb, threads, scores =>
        {
            var name = $"fraud-handbook 3.4 ({test.Count} test tx; LGB {g.Info.Trees} trees, XGB {scores.Trees})";
            var x = scores.Values == null ? new Scored(double.NaN, double.NaN, double.NaN, double.NaN, double.NaN, double.NaN) : Scored.Of(scores.Values, teY, Cp);
            Report(table, name, "LR 0.871, RF 0.867, XGB 0.862; LR 0.606, RF 0.658, XGB 0.639; LR 0.291, RF 0.287, XGB 0.273",
                lgbScored, lgbRaw, lrScored, x, gSec, lSec, scores.Seconds, cardPrecision: true);
        });
    }

    /// <summary>
    /// Learning curve behind <see cref="TabularOptions.AutoMinRows"/> / <see cref="TabularOptions.AutoMinPositives"/>: the
    /// training week subsampled (stratified, seeded) to each size, both learners with the app's default options, scored
    /// on the full test week. Three seeds per size, averaged.
    /// </summary>
    public static void FraudCurve(string[] files, DateTime trainStart, int[] sizes, int threads, Table table, TextWriter log)
    {
        var (train, test) = HandbookSplit(LoadFraud(files), trainStart, 7, 7, 7);
        var trRows = ToRows(ToMatrix(train), FraudSchema);
        var trY = train.Select(t => t.Fraud).ToArray();
        var teRows = ToRows(ToMatrix(test), FraudSchema);
        var teY = test.Select(t => t.Fraud).ToArray();
        foreach (var n in sizes.Where(n => n < trRows.Length))
        {
            double lgbAuc = 0, lgbAp = 0, lrAuc = 0, lrAp = 0, pos = 0;
            for (var seed = 1; seed <= 3; seed++)
            {
                var (_, keep) = TabularTrainer.SplitIndices(trY, (double)n / trRows.Length, seed);
                var ex = keep.Select(i => new TabularExample(trRows[i], trY[i])).ToArray();
                pos += ex.Count(e => e.Label) / 3.0;
                using var g = new TabularTrainer(FraudSchema, new TabularOptions { Threads = threads, Seed = seed }).Train(ex);
                using var l = new TabularTrainer(FraudSchema, new TabularOptions { Learner = TabularLearner.LogisticRegression, Threads = threads, Seed = seed }).Train(ex);
                var gp = g.PredictProbabilities(teRows);
                var lp = l.PredictProbabilities(teRows);
                lgbAuc += BinaryMetrics.RocAuc(gp, teY) / 3; lgbAp += BinaryMetrics.AveragePrecision(gp, teY) / 3;
                lrAuc += BinaryMetrics.RocAuc(lp, teY) / 3; lrAp += BinaryMetrics.AveragePrecision(lp, teY) / 3;
            }
            log.WriteLine(FormattableString.Invariant($"  curve n={n} positives={pos:F0}: LGB {lgbAuc:F4}/{lgbAp:F4} LR {lrAuc:F4}/{lrAp:F4}"));
            table.Add($"fraud learning curve (default options, 3 seeds), {n} training rows / {pos:F0} positives", "ROC-AUC / AP",
                $"{Table.F(lgbAuc, 4)} / {Table.F(lgbAp, 4)}", $"LR {Table.F(lrAuc, 4)} / {Table.F(lrAp, 4)}", "-", "");
        }
    }

    /// <summary>Measures bias + sum(contributions) against the margin on real rows (the README's identity figures).</summary>
    private static void Identity(Table table, string name, TabularModel lgb, TabularModel lr, TabularRow[] rows, TextWriter log)
    {
        static (double Max, double Mean) Gap(TabularModel m, TabularRow[] rows)
        {
            var gaps = m.Explain(rows).Select(e => Math.Abs(e.Margin - e.Bias - e.Contributions.Sum(c => c.Contribution))).ToArray();
            return (gaps.Max(), gaps.Average());
        }
        var sw = Stopwatch.StartNew();
        var (gMax, gMean) = Gap(lgb, rows);
        var gSec = sw.Elapsed.TotalSeconds;
        var (lMax, lMean) = Gap(lr, rows);
        log.WriteLine($"  explained {rows.Length} rows with LightGbm in {gSec:F2} s");
        table.Add(name, "|bias + sum(contrib) - margin| max / mean", $"{gMax:G3} / {gMean:G3}", $"LR {lMax:G3} / {lMean:G3}", "LR identity holds, LightGbm's does not", "");
    }

    /// <summary>Loads a labelled CSV: numbers stay numbers, TRUE/FALSE become 1/0, other text is categorical (&lt;= 30 levels;
    /// one-hot in the matrix XGBoost gets, ML.NET's own one-hot inside the model) or ordinal.</summary>
    public static (TabularSchema Schema, TabularRow[] Rows, Matrix X, bool[] Y) LoadLabelled(string path, string label, ISet<string> drop)
    {
        var rows = Csv.Rows(path).ToList();
        var header = rows[0].Select(h => h.Trim()).ToArray();
        var body = rows.Skip(1).Where(r => r.Length == header.Length).ToList();
        var yCol = Csv.Col(header, label);
        var y = body.Select(r => IsTrue(r[yCol])).ToArray();
        var features = new List<TabularFeature>();
        var values = new List<object?[]>();
        var names = new List<string>();
        var columns = new List<float[]>();
        for (var c = 0; c < header.Length; c++)
        {
            if (c == yCol || drop.Contains(header[c])) continue;
            var raw = body.Select(r => r[c].Trim()).ToArray();
            if (raw.All(v => v.Length == 0 || Csv.TryNum(v, out _)))
            {
                var col = raw.Select(v => v.Length == 0 ? float.NaN : (float)Csv.Num(v)).ToArray();
                features.Add(TabularFeature.Numeric(header[c], header[c]));
                values.Add(col.Select(v => (object?)v).ToArray());
                names.Add(header[c]);
                columns.Add(col);
            }
            else if (raw.All(v => v.Equals("TRUE", StringComparison.OrdinalIgnoreCase) || v.Equals("FALSE", StringComparison.OrdinalIgnoreCase)))
            {
                var col = raw.Select(v => IsTrue(v) ? 1f : 0f).ToArray();
                features.Add(TabularFeature.Numeric(header[c], header[c]));
                values.Add(col.Select(v => (object?)v).ToArray());
                names.Add(header[c]);
                columns.Add(col);
            }
            else
            {
                var levels = raw.Distinct().OrderBy(v => v, StringComparer.Ordinal).ToArray();
                if (levels.Length <= 30)
                {
                    features.Add(TabularFeature.Categorical(header[c], header[c]));
                    values.Add(raw.Select(v => (object?)(v.Length == 0 ? null : v)).ToArray());
                    foreach (var lv in levels)
                    {
                        names.Add($"{header[c]}={lv}");
                        columns.Add(raw.Select(v => v == lv ? 1f : 0f).ToArray());
                    }
                }
                else
                {
                    var map = levels.Select((v, i) => (v, i)).ToDictionary(t => t.v, t => (float)t.i);
                    var col = raw.Select(v => map[v]).ToArray();
                    features.Add(TabularFeature.Numeric(header[c], header[c] + " (ordinal code)"));
                    values.Add(col.Select(v => (object?)v).ToArray());
                    names.Add(header[c]);
                    columns.Add(col);
                }
            }
        }
        var schema = new TabularSchema(features);
        var tabRows = Enumerable.Range(0, body.Count).Select(r => schema.Row(values.Select(col => col[r]).ToArray())).ToArray();
        var m = new float[body.Count * names.Count];
        for (var r = 0; r < body.Count; r++)
            for (var c = 0; c < names.Count; c++) m[r * names.Count + c] = columns[c][r];
        return (schema, tabRows, new Matrix(m, body.Count, names.ToArray()), y);
    }

    private static bool IsTrue(string s) => s.Trim() is "1" or "1.0" || s.Trim().Equals("TRUE", StringComparison.OrdinalIgnoreCase) || s.Trim().Equals("yes", StringComparison.OrdinalIgnoreCase);

    /// <summary>Stratified k-fold CV with a fixed seed; reports the mean over folds.</summary>
    public static void CrossValidate(string name, TabularSchema schema, TabularRow[] rows, Matrix x, bool[] y, int folds, TabularOptions lgb, int threads,
        string reference, Table table, XgbBridge xgb, TextWriter log)
    {
        var rng = new SplitMix64(2024);
        var fold = new int[y.Length];
        foreach (var cls in new[] { false, true })
        {
            var idx = Enumerable.Range(0, y.Length).Where(i => y[i] == cls).ToArray();
            rng.Shuffle(idx.AsSpan());
            for (var j = 0; j < idx.Length; j++) fold[idx[j]] = j % folds;
        }
        var lgbScores = new List<Scored>();
        var rawScores = new List<Scored>();
        var lrScores = new List<Scored>();
        var xgbScores = new Scored[folds];
        var xSec = new double[folds];
        var xTrees = new double[folds];
        double gSec = 0, lSec = 0;
        var trees = 0;
        var pending = folds;
        for (var k = 0; k < folds; k++)
        {
            var tr = Enumerable.Range(0, y.Length).Where(i => fold[i] != k).ToArray();
            var te = Enumerable.Range(0, y.Length).Where(i => fold[i] == k).ToArray();
            var trY = tr.Select(i => y[i]).ToArray();
            var teY = te.Select(i => y[i]).ToArray();
            var teRows = te.Select(i => rows[i]).ToArray();
            var (fitLocal, validLocal) = TabularTrainer.SplitIndices(trY, lgb.ValidationFraction, lgb.Seed);
            var fit = fitLocal.Select(i => tr[i]).ToArray();
            var valid = validLocal.Select(i => tr[i]).ToArray();
            TabularExample Ex(int i) => new(rows[i], y[i]);
            var fitEx = fit.Select(Ex).ToArray();
            var validEx = valid.Select(Ex).ToArray();
            WarmUp(schema, fitEx, validEx, lgb, threads);
            var sw = Stopwatch.StartNew();
            using var g = new TabularTrainer(schema, lgb with { Threads = threads }).Train(fitEx, validEx);
            gSec += sw.Elapsed.TotalSeconds;
            sw.Restart();
            using var l = new TabularTrainer(schema, Logistic(threads)).Train(tr.Select(Ex).ToArray());
            lSec += sw.Elapsed.TotalSeconds;
            trees += g.Info.Trees;
            var gp = g.Predict(teRows);
            lgbScores.Add(Scored.Of(gp.Select(s => s.Probability).ToArray(), teY));
            rawScores.Add(Scored.Of(gp.Select(s => Sigmoid(s.Margin)).ToArray(), teY));
            lrScores.Add(Scored.Of(l.PredictProbabilities(teRows), teY));
            var kk = k;
            xgb.Add($"{Sanitize(name)}_fold{k}", x.Subset(fit), fit.Select(i => y[i]).ToArray(), x.Subset(valid), valid.Select(i => y[i]).ToArray(),
                x.Subset(te), lgb, threads, s =>
                {
                    xgbScores[kk] = s.Values == null ? new Scored(double.NaN, double.NaN, double.NaN, double.NaN, double.NaN, double.NaN) : Scored.Of(s.Values, teY);
                    xSec[kk] = s.Seconds; xTrees[kk] = s.Trees;
                    if (--pending > 0) return;
                    var ds = $"{name} {folds}-fold CV (LGB {trees / (double)folds:F0} trees avg, XGB {xTrees.Average():F0})";
                    Report(table, ds, reference, Scored.Mean(lgbScores), Scored.Mean(rawScores), Scored.Mean(lrScores), Scored.Mean(xgbScores),
                        gSec, lSec, xSec.Sum(), cardPrecision: false);
                });
        }
        log.WriteLine($"  {name}: done CV");
    }

    private static bool _warm;

    /// <summary>
    /// One small training of each learner before the first timed one, so the timing measures training and not the JIT or
    /// loading LightGBM's native library (XGBoost's timing likewise excludes importing the library).
    /// </summary>
    private static void WarmUp(TabularSchema schema, TabularExample[] fit, TabularExample[] valid, TabularOptions o, int threads)
    {
        if (_warm) return;
        _warm = true;
        var small = fit.Take(2000).ToArray();
        if (!small.Any(e => e.Label)) small = [.. small, .. fit.Where(e => e.Label).Take(20)];
        using var a = new TabularTrainer(schema, o with { Iterations = 3, Threads = threads }).Train(small, valid);
        using var b = new TabularTrainer(schema, Logistic(threads)).Train(small);
        _ = a.PredictProbabilities(valid.Take(100).Select(e => e.Row).ToArray());
        _ = b.PredictProbabilities(valid.Take(100).Select(e => e.Row).ToArray());
    }

    private static string Sanitize(string s) => new(s.Select(c => char.IsLetterOrDigit(c) ? c : '_').ToArray());
}
