namespace PluginApp.Ml.Metrics;

/// <summary>Binary classification metrics; ties are handled the way scikit-learn does.</summary>
public static class ClassificationMetrics
{
    private static void CheckLengths(int a, int b)
    {
        if (a != b) throw new ArgumentException($"scores ({a}) and labels ({b}) differ in length.");
    }

    /// <summary>Area under the ROC curve by the Mann-Whitney statistic; tied scores get their average rank,
    /// so a tie between a positive and a negative counts one half. NaN when a class is absent.</summary>
    public static double RocAuc(ReadOnlySpan<double> scores, ReadOnlySpan<bool> labels)
    {
        CheckLengths(scores.Length, labels.Length);
        var n = scores.Length;
        var order = SortedOrder(scores, ascending: true);
        double rankSumPos = 0;
        long nPos = 0;
        var i = 0;
        while (i < n)
        {
            var j = i;
            while (j < n && scores[order[j]] == scores[order[i]]) j++;
            var avgRank = (i + 1 + j) / 2.0;
            for (var t = i; t < j; t++) if (labels[order[t]]) { rankSumPos += avgRank; nPos++; }
            i = j;
        }
        var nNeg = n - nPos;
        if (nPos == 0 || nNeg == 0) return double.NaN;
        return (rankSumPos - nPos * (nPos + 1) / 2.0) / ((double)nPos * nNeg);
    }

    /// <summary>Average precision: sum over distinct thresholds of (R_t - R_{t-1}) P_t (scikit-learn's definition, no interpolation).</summary>
    public static double AveragePrecision(ReadOnlySpan<double> scores, ReadOnlySpan<bool> labels)
    {
        CheckLengths(scores.Length, labels.Length);
        var order = SortedOrder(scores, ascending: false);
        long totalPos = 0;
        foreach (var l in labels) if (l) totalPos++;
        if (totalPos == 0) return double.NaN;
        long tp = 0, seen = 0;
        double ap = 0, prevRecall = 0;
        var i = 0;
        while (i < order.Length)
        {
            var j = i;
            while (j < order.Length && scores[order[j]] == scores[order[i]]) { if (labels[order[j]]) tp++; j++; }
            seen = j;
            var recall = (double)tp / totalPos;
            ap += (recall - prevRecall) * tp / seen;
            prevRecall = recall;
            i = j;
        }
        return ap;
    }

    /// <summary>Mean negative log likelihood; probabilities are clipped to [eps, 1 - eps].</summary>
    public static double LogLoss(ReadOnlySpan<double> probabilities, ReadOnlySpan<bool> labels, double eps = 1e-15)
    {
        CheckLengths(probabilities.Length, labels.Length);
        var s = 0.0;
        for (var i = 0; i < labels.Length; i++)
        {
            var p = Math.Clamp(probabilities[i], eps, 1 - eps);
            s -= labels[i] ? Math.Log(p) : Math.Log(1 - p);
        }
        return s / labels.Length;
    }

    /// <summary>Mean squared error of the probabilities.</summary>
    public static double Brier(ReadOnlySpan<double> probabilities, ReadOnlySpan<bool> labels)
    {
        CheckLengths(probabilities.Length, labels.Length);
        var s = 0.0;
        for (var i = 0; i < labels.Length; i++) { var d = probabilities[i] - (labels[i] ? 1 : 0); s += d * d; }
        return s / labels.Length;
    }

    /// <summary>Precision and recall when rows with score &gt;= threshold are flagged. Precision is 0 when nothing is flagged.</summary>
    public static (double Precision, double Recall) PrecisionRecallAt(ReadOnlySpan<double> scores, ReadOnlySpan<bool> labels, double threshold)
    {
        CheckLengths(scores.Length, labels.Length);
        long tp = 0, fp = 0, fn = 0;
        for (var i = 0; i < labels.Length; i++)
        {
            var flag = scores[i] >= threshold;
            if (flag && labels[i]) tp++;
            else if (flag) fp++;
            else if (labels[i]) fn++;
        }
        return (tp + fp == 0 ? 0 : (double)tp / (tp + fp), tp + fn == 0 ? 0 : (double)tp / (tp + fn));
    }

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
        CheckLengths(scores.Length, labels.Length);
        CheckLengths(days.Length, cards.Length);
        CheckLengths(days.Length, labels.Length);
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

    private static int[] SortedOrder(ReadOnlySpan<double> scores, bool ascending)
    {
        var keys = scores.ToArray();
        if (!ascending) for (var i = 0; i < keys.Length; i++) keys[i] = -keys[i];
        var order = Enumerable.Range(0, keys.Length).ToArray();
        Array.Sort(keys, order);
        return order;
    }
}
