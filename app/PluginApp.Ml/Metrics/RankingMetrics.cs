namespace PluginApp.Ml.Metrics;

/// <summary>Per-user top-K metrics with binary relevance. Average them over users yourself.</summary>
public static class RankingMetrics
{
    private static int Hits(IReadOnlyList<int> ranked, IReadOnlySet<int> relevant, int k)
    {
        var h = 0;
        for (var i = 0; i < Math.Min(k, ranked.Count); i++) if (relevant.Contains(ranked[i])) h++;
        return h;
    }

    /// <summary>1 if any of the first k is relevant.</summary>
    public static double HitRate(IReadOnlyList<int> ranked, IReadOnlySet<int> relevant, int k) => Hits(ranked, relevant, k) > 0 ? 1 : 0;

    /// <summary>Relevant items in the first k over all relevant items.</summary>
    public static double Recall(IReadOnlyList<int> ranked, IReadOnlySet<int> relevant, int k) =>
        relevant.Count == 0 ? 0 : (double)Hits(ranked, relevant, k) / relevant.Count;

    /// <summary>Relevant items in the first k over k (a list shorter than k still divides by k).</summary>
    public static double Precision(IReadOnlyList<int> ranked, IReadOnlySet<int> relevant, int k) => (double)Hits(ranked, relevant, k) / k;

    /// <summary>DCG@k / ideal DCG@k with gain 1 / log2(rank + 1).</summary>
    public static double Ndcg(IReadOnlyList<int> ranked, IReadOnlySet<int> relevant, int k)
    {
        if (relevant.Count == 0) return 0;
        double dcg = 0, ideal = 0;
        for (var i = 0; i < Math.Min(k, ranked.Count); i++)
            if (relevant.Contains(ranked[i])) dcg += 1 / Math.Log2(i + 2);
        for (var i = 0; i < Math.Min(k, relevant.Count); i++) ideal += 1 / Math.Log2(i + 2);
        return dcg / ideal;
    }

    /// <summary>Share of the catalog that appears in at least one list.</summary>
    public static double CatalogCoverage(IEnumerable<IReadOnlyList<int>> lists, int itemCount)
    {
        ArgumentNullException.ThrowIfNull(lists);
        var seen = new HashSet<int>();
        foreach (var l in lists) seen.UnionWith(l);
        return itemCount == 0 ? 0 : (double)seen.Count / itemCount;
    }
}
