using System.Diagnostics;
using System.Globalization;
using PluginApp.Ml.Common;
using PluginApp.Ml.Linear;
using PluginApp.Ml.Metrics;
using PluginApp.Ml.Trees;

namespace MlBench;

/// <summary>Fraud handbook ch. 3.4 protocol and k-fold CV on any labelled CSV, GBDT vs logistic regression vs XGBoost.</summary>
internal static class TreeBench
{
    public static readonly string[] FraudFeatures =
    [
        "TX_AMOUNT", "TX_DURING_WEEKEND", "TX_DURING_NIGHT",
        "CUSTOMER_ID_NB_TX_1DAY_WINDOW", "CUSTOMER_ID_AVG_AMOUNT_1DAY_WINDOW", "CUSTOMER_ID_NB_TX_7DAY_WINDOW",
        "CUSTOMER_ID_AVG_AMOUNT_7DAY_WINDOW", "CUSTOMER_ID_NB_TX_30DAY_WINDOW", "CUSTOMER_ID_AVG_AMOUNT_30DAY_WINDOW",
        "TERMINAL_ID_NB_TX_1DAY_WINDOW", "TERMINAL_ID_RISK_1DAY_WINDOW", "TERMINAL_ID_NB_TX_7DAY_WINDOW",
        "TERMINAL_ID_RISK_7DAY_WINDOW", "TERMINAL_ID_NB_TX_30DAY_WINDOW", "TERMINAL_ID_RISK_30DAY_WINDOW",
    ];

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

    private static FeatureTable ToTable(List<Tx> txs) => new(txs.SelectMany(t => t.X).ToArray(), txs.Count, FraudFeatures);

    /// <summary>Grid search on earlier windows of the same simulation (before the evaluation window's training week).</summary>
    public static GbdtOptions TuneFraud(string[] tuningFiles, string[] windowStarts, GbdtOptions start, TextWriter log)
    {
        var txs = LoadFraud(tuningFiles);
        var windows = windowStarts.Select(w => HandbookSplit(txs, DateTime.ParseExact(w, "yyyy-MM-dd", CultureInfo.InvariantCulture), 7, 7, 7)).ToArray();
        var best = start;
        var bestScore = -1.0;
        // Shape first (leaves, leaf size, subsampling), then the loss-side knobs, all with early stopping.
        var grid = new List<GbdtOptions>();
        foreach (var leaves in new[] { 7, 15, 31 })
            foreach (var minLeaf in new[] { 20, 100 })
                foreach (var sub in new[] { 1.0, 0.8 })
                    grid.Add(start with { MaxLeaves = leaves, MinLeafSize = minLeaf, RowSubsample = sub });
        foreach (var col in new[] { 0.5, 0.7 })
            foreach (var lr in new[] { 0.05, 0.1 })
                grid.Add(start with { MaxLeaves = 15, MinLeafSize = 20, RowSubsample = 0.8, MinChildWeight = 1, ColumnSubsample = col, LearningRate = lr });
        foreach (var mcw in new[] { 1e-3, 1.0 })
            foreach (var pw in new[] { 1.0, 3.0 })
                foreach (var l2 in new[] { 1.0, 10.0 })
                    grid.Add(start with { MaxLeaves = 15, MinLeafSize = 20, RowSubsample = 0.8, MinChildWeight = mcw, PositiveWeight = pw, L2 = l2 });
        foreach (var o in grid)
                    {
                        double ap = 0, cp = 0;
                        foreach (var (tr, te) in windows)
                        {
                            var y = tr.Select(t => t.Fraud).ToArray();
                            var m = new GbdtTrainer(o).Train(ToTable(tr), y);
                            var s = m.PredictProbabilities(ToTable(te));
                            var ty = te.Select(t => t.Fraud).ToArray();
                            ap += ClassificationMetrics.AveragePrecision(s, ty);
                            cp += ClassificationMetrics.CardPrecisionAtK(te.Select(t => t.Day).ToArray(), te.Select(t => t.Card).ToArray(), s, ty, 100);
                        }
                        ap /= windows.Length; cp /= windows.Length;
                        log.WriteLine(FormattableString.Invariant($"  tune fraud leaves={o.MaxLeaves} minLeaf={o.MinLeafSize} sub={o.RowSubsample} mcw={o.MinChildWeight} posW={o.PositiveWeight} l2={o.L2} col={o.ColumnSubsample} lr={o.LearningRate}: AP {ap:F4} CP@100 {cp:F4}"));
                        if (ap + cp > bestScore) { bestScore = ap + cp; best = o; }
                    }
        log.WriteLine($"  fraud chosen: {best}");
        return best;
    }

    public static void Fraud(string[] files, DateTime trainStart, int trainDays, int delayDays, int testDays, GbdtOptions gbdt,
        Table table, XgbBridge xgb, TextWriter log)
    {
        var (train, test) = HandbookSplit(LoadFraud(files), trainStart, trainDays, delayDays, testDays);
        log.WriteLine($"  fraud: train {train.Count} tx / {train.Count(t => t.Fraud)} frauds; test {test.Count} tx / {test.Count(t => t.Fraud)} frauds");
        var trX = ToTable(train);
        var trY = train.Select(t => t.Fraud).ToArray();
        var teX = ToTable(test);
        var teY = test.Select(t => t.Fraud).ToArray();
        var days = test.Select(t => t.Day).ToArray();
        var cards = test.Select(t => t.Card).ToArray();

        if (Environment.GetEnvironmentVariable("MLBENCH_PROFILE") == "1")
            for (var rep = 0; rep < 4; rep++)
            {
                var s0 = Stopwatch.StartNew();
                var m0 = new GbdtTrainer(gbdt).Train(trX, trY);
                log.WriteLine($"  profile rep {rep}: {s0.Elapsed.TotalSeconds:F3} s, {m0.TreeCount} trees");
            }
        // The early-stopping rows are split off here so XGBoost gets exactly the same fit / validation rows.
        var (fitX, fitY, vX, vY) = SplitValidation(trX, trY, gbdt);
        WarmUp(fitX, fitY, vX, vY, gbdt);
        var sw = Stopwatch.StartNew();
        var trainer = new GbdtTrainer(gbdt);
        var g = trainer.Train(fitX, fitY, vX, vY);
        var gSec = sw.Elapsed.TotalSeconds;
        sw.Restart();
        var lr = new LogisticRegressionTrainer().Train(trX, trY);
        var lSec = sw.Elapsed.TotalSeconds;
        var gs = g.PredictProbabilities(teX);
        var ls = lr.PredictProbabilities(teX);
        log.WriteLine($"  fraud GBDT kept {g.TreeCount} trees");

        
        xgb.Add("fraud", fitX, fitY, vX, vY, teX, teY, gbdt, scores =>
        {
            var name = $"fraud-handbook 3.4 ({test.Count} test tx; GBDT {g.TreeCount} trees, XGB {scores.Trees})";
            table.Add(name, "ROC-AUC", Table.F(ClassificationMetrics.RocAuc(gs, teY), 4),
                $"LR {Table.F(ClassificationMetrics.RocAuc(ls, teY), 4)} / XGB {Table.F(scores.Auc(teY), 4)}", "LR 0.871, RF 0.867, XGB 0.862", $"ours {Table.F(gSec, 2)} / LR {Table.F(lSec, 2)} / XGB {Table.F(scores.Seconds, 2)}");
            table.Add(name, "Average precision", Table.F(ClassificationMetrics.AveragePrecision(gs, teY), 4),
                $"LR {Table.F(ClassificationMetrics.AveragePrecision(ls, teY), 4)} / XGB {Table.F(scores.Ap(teY), 4)}", "LR 0.606, RF 0.658, XGB 0.639; target >= 0.66", "");
            table.Add(name, "Card Precision@100", Table.F(ClassificationMetrics.CardPrecisionAtK(days, cards, gs, teY, 100)),
                $"LR {Table.F(ClassificationMetrics.CardPrecisionAtK(days, cards, ls, teY, 100))} / XGB {Table.F(scores.Values == null ? double.NaN : ClassificationMetrics.CardPrecisionAtK(days, cards, scores.Values, teY, 100))}",
                "LR 0.291, RF 0.287, XGB 0.273; target >= 0.29", "");
        });
    }

    /// <summary>Loads a labelled CSV: numbers stay numbers, TRUE/FALSE become 1/0, other text is one-hot (&lt;= 30 levels) or ordinal.</summary>
    public static (FeatureTable X, bool[] Y) LoadLabelled(string path, string label, ISet<string> drop)
    {
        var rows = Csv.Rows(path).ToList();
        var header = rows[0].Select(h => h.Trim()).ToArray();
        var body = rows.Skip(1).Where(r => r.Length == header.Length).ToList();
        var yCol = Csv.Col(header, label);
        var y = body.Select(r => IsTrue(r[yCol])).ToArray();
        var names = new List<string>();
        var columns = new List<float[]>();
        for (var c = 0; c < header.Length; c++)
        {
            if (c == yCol || drop.Contains(header[c])) continue;
            var raw = body.Select(r => r[c].Trim()).ToArray();
            if (raw.All(v => v.Length == 0 || Csv.TryNum(v, out _)))
            {
                names.Add(header[c]);
                columns.Add(raw.Select(v => v.Length == 0 ? float.NaN : (float)Csv.Num(v)).ToArray());
            }
            else if (raw.All(v => v.Equals("TRUE", StringComparison.OrdinalIgnoreCase) || v.Equals("FALSE", StringComparison.OrdinalIgnoreCase)))
            {
                names.Add(header[c]);
                columns.Add(raw.Select(v => IsTrue(v) ? 1f : 0f).ToArray());
            }
            else
            {
                var levels = raw.Distinct().OrderBy(v => v, StringComparer.Ordinal).ToArray();
                if (levels.Length <= 30)
                    foreach (var lv in levels)
                    {
                        names.Add($"{header[c]}={lv}");
                        columns.Add(raw.Select(v => v == lv ? 1f : 0f).ToArray());
                    }
                else
                {
                    var map = levels.Select((v, i) => (v, i)).ToDictionary(t => t.v, t => (float)t.i);
                    names.Add(header[c]);
                    columns.Add(raw.Select(v => map[v]).ToArray());
                }
            }
        }
        var values = new float[body.Count * names.Count];
        for (var r = 0; r < body.Count; r++)
            for (var c = 0; c < names.Count; c++) values[r * names.Count + c] = columns[c][r];
        return (new FeatureTable(values, body.Count, names), y);
    }

    private static bool IsTrue(string s) => s.Trim() is "1" or "1.0" || s.Trim().Equals("TRUE", StringComparison.OrdinalIgnoreCase) || s.Trim().Equals("yes", StringComparison.OrdinalIgnoreCase);

    /// <summary>Stratified k-fold CV with a fixed seed; reports the mean over folds.</summary>
    public static void CrossValidate(string name, FeatureTable x, bool[] y, int folds, GbdtOptions gbdt, string reference, Table table, XgbBridge xgb, TextWriter log)
    {
        var rng = new SplitMix64(2024);
        var fold = new int[y.Length];
        foreach (var cls in new[] { false, true })
        {
            var idx = Enumerable.Range(0, y.Length).Where(i => y[i] == cls).ToArray();
            rng.Shuffle(idx.AsSpan());
            for (var j = 0; j < idx.Length; j++) fold[idx[j]] = j % folds;
        }
        double gAuc = 0, gAp = 0, lAuc = 0, lAp = 0, gSec = 0, lSec = 0;
        var xAuc = new double[folds];
        var xAp = new double[folds];
        var xSec = new double[folds];
        var xTrees = new double[folds];
        var trees = 0;
        var pending = folds;
        for (var k = 0; k < folds; k++)
        {
            var tr = Enumerable.Range(0, y.Length).Where(i => fold[i] != k).ToArray();
            var te = Enumerable.Range(0, y.Length).Where(i => fold[i] == k).ToArray();
            var trX = x.Subset(tr); var trY = tr.Select(i => y[i]).ToArray();
            var teX = x.Subset(te); var teY = te.Select(i => y[i]).ToArray();
            var (fitX, fitY, vX, vY) = SplitValidation(trX, trY, gbdt);
            WarmUp(fitX, fitY, vX, vY, gbdt);
            var sw = Stopwatch.StartNew();
            var g = new GbdtTrainer(gbdt).Train(fitX, fitY, vX, vY);
            gSec += sw.Elapsed.TotalSeconds;
            sw.Restart();
            var l = new LogisticRegressionTrainer().Train(trX, trY);
            lSec += sw.Elapsed.TotalSeconds;
            trees += g.TreeCount;
            var gs = g.PredictProbabilities(teX);
            var ls = l.PredictProbabilities(teX);
            gAuc += ClassificationMetrics.RocAuc(gs, teY); gAp += ClassificationMetrics.AveragePrecision(gs, teY);
            lAuc += ClassificationMetrics.RocAuc(ls, teY); lAp += ClassificationMetrics.AveragePrecision(ls, teY);
            var kk = k;
            xgb.Add($"{Sanitize(name)}_fold{k}", fitX, fitY, vX, vY, teX, teY, gbdt, s =>
            {
                xAuc[kk] = s.Auc(teY); xAp[kk] = s.Ap(teY); xSec[kk] = s.Seconds; xTrees[kk] = s.Trees;
                if (--pending > 0) return;
                var ds = $"{name} {folds}-fold CV (GBDT {trees / (double)folds:F0} trees avg, XGB {xTrees.Average():F0})";
                table.Add(ds, "ROC-AUC", Table.F(gAuc / folds, 4), $"LR {Table.F(lAuc / folds, 4)} / XGB {Table.F(xAuc.Average(), 4)}", reference.Split(';')[0].Trim(), $"ours {Table.F(gSec, 2)} / LR {Table.F(lSec, 2)} / XGB {Table.F(xSec.Sum(), 2)}");
                table.Add(ds, "PR-AUC (AP)", Table.F(gAp / folds, 4), $"LR {Table.F(lAp / folds, 4)} / XGB {Table.F(xAp.Average(), 4)}", reference.Split(';').Last().Trim(), "");
            });
        }
        log.WriteLine($"  {name}: done CV");
    }

    private static bool _warm;

    /// <summary>
    /// One tiny training before the first timed one, so the timing measures training and not the JIT compiling
    /// the trainer (XGBoost's timing likewise excludes loading its native library).
    /// </summary>
    private static void WarmUp(FeatureTable x, bool[] y, FeatureTable vx, bool[] vy, GbdtOptions o)
    {
        if (_warm) return;
        _warm = true;
        var n = Math.Min(2000, x.Rows);
        var idx = Enumerable.Range(0, n).ToArray();
        var vn = Math.Min(500, vx.Rows);
        var vidx = Enumerable.Range(0, vn).ToArray();
        new GbdtTrainer(o with { Rounds = 3 }).Train(x.Subset(idx), idx.Select(i => y[i]).ToArray(), vx.Subset(vidx), vidx.Select(i => vy[i]).ToArray());
        new GbdtTrainer(o with { Rounds = 3, ValidationFraction = 0.2 }).Train(x.Subset(idx), idx.Select(i => y[i]).ToArray());
    }

    private static (FeatureTable, bool[], FeatureTable, bool[]) SplitValidation(FeatureTable x, bool[] y, GbdtOptions o)
    {
        var (fit, valid) = GbdtTrainer.ValidationSplit(y, o.ValidationFraction, o.Seed);
        return (x.Subset(fit), fit.Select(i => y[i]).ToArray(), x.Subset(valid), valid.Select(i => y[i]).ToArray());
    }

    private static string Sanitize(string s) => new(s.Select(c => char.IsLetterOrDigit(c) ? c : '_').ToArray());
}
