using Microsoft.ML;

namespace PluginApp.Ml.Metrics;

/// <summary>One bin of a reliability table.</summary>
/// <param name="Lower">Lower edge (inclusive).</param>
/// <param name="Upper">Upper edge (exclusive, except 1 for the last bin).</param>
/// <param name="Count">Rows whose probability falls in the bin.</param>
/// <param name="MeanPredicted">Mean predicted probability of those rows (NaN when empty).</param>
/// <param name="ObservedRate">Share of positives among them (NaN when empty).</param>
public readonly record struct ReliabilityBin(double Lower, double Upper, int Count, double MeanPredicted, double ObservedRate);

/// <summary>What the app reports for a binary classifier on held-out rows.</summary>
/// <param name="Count">Rows.</param>
/// <param name="Positives">Positive rows.</param>
/// <param name="RocAuc">ROC-AUC (ML.NET's evaluator).</param>
/// <param name="PrAuc">Area under the precision-recall curve (ML.NET's evaluator).</param>
/// <param name="AveragePrecision">Average precision with ties handled (ours; see <see cref="BinaryMetrics.AveragePrecision"/>).</param>
/// <param name="LogLoss">Mean log loss in nats (ML.NET's evaluator, converted from bits).</param>
/// <param name="Brier">Brier score (ours).</param>
/// <param name="ExpectedCalibrationError">ECE over equal-width bins (ours).</param>
/// <param name="Reliability">The reliability table behind the ECE.</param>
public sealed record BinaryEvaluation(int Count, int Positives, double RocAuc, double PrAuc, double AveragePrecision, double LogLoss,
    double Brier, double ExpectedCalibrationError, IReadOnlyList<ReliabilityBin> Reliability);

/// <summary>
/// Binary classification metrics from arrays of probabilities and labels. ROC-AUC, PR-AUC and log loss come from ML.NET's
/// <c>BinaryClassification.Evaluate</c>; the Brier score, expected calibration error, reliability table, precision and
/// recall at a threshold and a tie-aware average precision are ours, because ML.NET has none of them (or, for PR-AUC, only
/// a version that is optimistic about ties, see <see cref="PrAuc"/>).
/// </summary>
public static class BinaryMetrics
{
    /// <summary>Probabilities are clipped to [Epsilon, 1 - Epsilon] before ML.NET's log loss, which is infinite at 0 or 1.</summary>
    public const double Epsilon = 1e-7;

    private sealed class Row
    {
        public bool Label;
        public float Score;
        public float Probability;
        public bool PredictedLabel;
    }

    /// <summary>Everything at once; <paramref name="bins"/> equal-width bins for the ECE and the reliability table.</summary>
    public static BinaryEvaluation Evaluate(ReadOnlySpan<double> probabilities, ReadOnlySpan<bool> labels, int bins = 10)
    {
        var (auc, prAuc, logLoss) = MlNet(probabilities, labels);
        var (ece, table) = Calibration(probabilities, labels, bins);
        var positives = 0;
        foreach (var l in labels) if (l) positives++;
        return new BinaryEvaluation(labels.Length, positives, auc, prAuc, AveragePrecision(probabilities, labels), logLoss,
            Brier(probabilities, labels), ece, table);
    }

    /// <summary>ROC-AUC by ML.NET (a tie between a positive and a negative counts one half). NaN when a class is absent.</summary>
    public static double RocAuc(ReadOnlySpan<double> probabilities, ReadOnlySpan<bool> labels) => MlNet(probabilities, labels).RocAuc;

    /// <summary>
    /// Area under the precision-recall curve by ML.NET. NaN when a class is absent. Measured: tied scores are resolved in
    /// the positives' favour (four rows with one positive, all scored the same, give 1.0, not the 0.25 prevalence), so on
    /// heavily tied scores prefer <see cref="AveragePrecision"/>. ML.NET samples 100,000 rows for it on larger sets.
    /// </summary>
    public static double PrAuc(ReadOnlySpan<double> probabilities, ReadOnlySpan<bool> labels) => MlNet(probabilities, labels).PrAuc;

    /// <summary>Mean negative log likelihood in nats by ML.NET (which reports bits; multiplied by ln 2 here), with
    /// probabilities clipped to [<see cref="Epsilon"/>, 1 - <see cref="Epsilon"/>].</summary>
    public static double LogLoss(ReadOnlySpan<double> probabilities, ReadOnlySpan<bool> labels) => MlNet(probabilities, labels).LogLoss;

    private static (double RocAuc, double PrAuc, double LogLoss) MlNet(ReadOnlySpan<double> probabilities, ReadOnlySpan<bool> labels)
    {
        CheckLengths(probabilities.Length, labels.Length);
        var rows = new Row[labels.Length];
        bool pos = false, neg = false;
        for (var i = 0; i < rows.Length; i++)
        {
            var p = (float)Math.Clamp(probabilities[i], Epsilon, 1 - Epsilon);
            rows[i] = new Row { Label = labels[i], Score = p, Probability = p, PredictedLabel = p >= 0.5f };
            if (labels[i]) pos = true; else neg = true;
        }
        if (!pos || !neg) return (double.NaN, double.NaN, rows.Length == 0 ? double.NaN : LogLossOneClass(probabilities, labels));
        var ml = new MLContext(0);
        var m = ml.BinaryClassification.Evaluate(ml.Data.LoadFromEnumerable(rows));
        return (m.AreaUnderRocCurve, m.AreaUnderPrecisionRecallCurve, m.LogLoss * Math.Log(2));
    }

    // Why: ML.NET's evaluator refuses a set with one class, but log loss is still defined there.
    private static double LogLossOneClass(ReadOnlySpan<double> probabilities, ReadOnlySpan<bool> labels)
    {
        var s = 0.0;
        for (var i = 0; i < labels.Length; i++)
        {
            var p = (double)(float)Math.Clamp(probabilities[i], Epsilon, 1 - Epsilon);
            s -= labels[i] ? Math.Log(p) : Math.Log(1 - p);
        }
        return s / labels.Length;
    }

    /// <summary>
    /// Average precision, scikit-learn's definition: sum over distinct thresholds of (R_t - R_{t-1}) P_t, with all rows
    /// tied at a threshold entering together (so a tie is neither optimistic nor pessimistic). NaN without positives.
    /// Kept because ML.NET's PR-AUC favours positives in ties and the published fraud figures are average precision.
    /// </summary>
    public static double AveragePrecision(ReadOnlySpan<double> probabilities, ReadOnlySpan<bool> labels)
    {
        CheckLengths(probabilities.Length, labels.Length);
        // Why refuse: a NaN equals nothing, so its group of ties would never end (the loop below spun forever on one).
        CheckFinite(probabilities);
        var keys = new double[probabilities.Length];
        for (var i = 0; i < keys.Length; i++) keys[i] = -probabilities[i];
        var order = Enumerable.Range(0, keys.Length).ToArray();
        Array.Sort(keys, order);
        long totalPos = 0;
        foreach (var l in labels) if (l) totalPos++;
        if (totalPos == 0) return double.NaN;
        long tp = 0;
        double ap = 0, prevRecall = 0;
        var i0 = 0;
        while (i0 < order.Length)
        {
            var j = i0;
            while (j < order.Length && keys[j] == keys[i0]) { if (labels[order[j]]) tp++; j++; }
            var recall = (double)tp / totalPos;
            ap += (recall - prevRecall) * tp / j;
            prevRecall = recall;
            i0 = j;
        }
        return ap;
    }

    /// <summary>Brier score: mean squared difference between probability and outcome (0/1). NaN for no rows.</summary>
    public static double Brier(ReadOnlySpan<double> probabilities, ReadOnlySpan<bool> labels)
    {
        CheckLengths(probabilities.Length, labels.Length);
        if (labels.Length == 0) return double.NaN;
        var s = 0.0;
        for (var i = 0; i < labels.Length; i++) { var d = probabilities[i] - (labels[i] ? 1 : 0); s += d * d; }
        return s / labels.Length;
    }

    /// <summary>
    /// Expected calibration error and its reliability table over <paramref name="bins"/> equal-width bins of [0, 1]
    /// (bin b holds b/B &lt;= p &lt; (b+1)/B, the last one includes 1): ECE = sum over bins of (n_b / n) |mean p_b - rate_b|.
    /// Equal width, not equal mass, so the table reads directly as "of the orders we scored 0.8-0.9, how many were fraud";
    /// with rare positives most rows land in the first bin and the upper bins are small, so read Count as well.
    /// </summary>
    public static (double Ece, ReliabilityBin[] Table) Calibration(ReadOnlySpan<double> probabilities, ReadOnlySpan<bool> labels, int bins = 10)
    {
        CheckLengths(probabilities.Length, labels.Length);
        if (bins < 1) throw new ArgumentOutOfRangeException(nameof(bins), bins, "bins must be >= 1.");
        var count = new int[bins];
        var sumP = new double[bins];
        var pos = new int[bins];
        for (var i = 0; i < labels.Length; i++)
        {
            var p = Math.Clamp(probabilities[i], 0, 1);
            var b = Math.Min(bins - 1, (int)(p * bins));
            count[b]++;
            sumP[b] += p;
            if (labels[i]) pos[b]++;
        }
        var table = new ReliabilityBin[bins];
        var ece = 0.0;
        for (var b = 0; b < bins; b++)
        {
            var mean = count[b] == 0 ? double.NaN : sumP[b] / count[b];
            var rate = count[b] == 0 ? double.NaN : (double)pos[b] / count[b];
            table[b] = new ReliabilityBin((double)b / bins, (double)(b + 1) / bins, count[b], mean, rate);
            if (count[b] > 0) ece += (double)count[b] / labels.Length * Math.Abs(mean - rate);
        }
        return (labels.Length == 0 ? double.NaN : ece, table);
    }

    /// <summary>Precision and recall when rows with probability &gt;= threshold are flagged. Precision is 0 when nothing is flagged.</summary>
    public static (double Precision, double Recall) PrecisionRecallAt(ReadOnlySpan<double> probabilities, ReadOnlySpan<bool> labels, double threshold)
    {
        CheckLengths(probabilities.Length, labels.Length);
        long tp = 0, fp = 0, fn = 0;
        for (var i = 0; i < labels.Length; i++)
        {
            var flag = probabilities[i] >= threshold;
            if (flag && labels[i]) tp++;
            else if (flag) fp++;
            else if (labels[i]) fn++;
        }
        return (tp + fp == 0 ? 0 : (double)tp / (tp + fp), tp + fn == 0 ? 0 : (double)tp / (tp + fn));
    }

    internal static void CheckLengths(int a, int b)
    {
        if (a != b) throw new ArgumentException($"probabilities ({a}) and labels ({b}) differ in length.");
    }

    internal static void CheckFinite(ReadOnlySpan<double> probabilities)
    {
        var bad = 0;
        var first = -1;
        for (var i = 0; i < probabilities.Length; i++)
            if (!double.IsFinite(probabilities[i])) { bad++; if (first < 0) first = i; }
        if (bad > 0) throw new ArgumentException($"{bad} of {probabilities.Length} scores are not finite numbers (the first at row {first}); a ranking metric cannot place them.");
    }
}

/// <summary>Fraud-specific ranking metric that ML.NET does not have.</summary>
public static class FraudMetrics
{
    /// <summary>
    /// Card Precision@k of the Fraud Detection Handbook (Le Borgne et al. 2022, ch. 3.4 / 4.2): per day, a card's
    /// score and label are the maxima over its transactions; the share of compromised cards among the k
    /// best-scored is averaged over days. Cards already caught on an earlier day are dropped from later days.
    /// </summary>
    /// <param name="days">Day index of each transaction.</param>
    /// <param name="cards">Card (customer) id of each transaction.</param>
    /// <param name="scores">Model score.</param>
    /// <param name="labels">Fraud label.</param>
    /// <param name="k">Cards an investigator can check per day.</param>
    public static double CardPrecisionAtK(ReadOnlySpan<int> days, ReadOnlySpan<long> cards, ReadOnlySpan<double> scores, ReadOnlySpan<bool> labels, int k)
    {
        BinaryMetrics.CheckLengths(scores.Length, labels.Length);
        BinaryMetrics.CheckLengths(days.Length, cards.Length);
        BinaryMetrics.CheckLengths(days.Length, labels.Length);
        var byDay = new SortedDictionary<int, Dictionary<long, (double Score, bool Label)>>();
        for (var i = 0; i < days.Length; i++)
        {
            if (!byDay.TryGetValue(days[i], out var cardMap)) byDay[days[i]] = cardMap = new Dictionary<long, (double, bool)>();
            cardMap[cards[i]] = cardMap.TryGetValue(cards[i], out var c)
                ? (Math.Max(c.Score, scores[i]), c.Label || labels[i])
                : (scores[i], labels[i]);
        }
        var caught = new HashSet<long>();
        var sum = 0.0;
        foreach (var (_, cardMap) in byDay)
        {
            var top = cardMap.Where(c => !caught.Contains(c.Key))
                .OrderByDescending(c => c.Value.Score).ThenBy(c => c.Key).Take(k).ToArray();
            var hits = 0;
            foreach (var c in top)
                if (c.Value.Label) { hits++; caught.Add(c.Key); }
            sum += (double)hits / k;
        }
        return byDay.Count == 0 ? double.NaN : sum / byDay.Count;
    }
}
