using System.Diagnostics;
using PluginApp.Ml.Common;
using PluginApp.Ml.Metrics;
using PluginApp.Ml.Recommenders;

namespace MlBench;

/// <summary>An interaction log with dense ids.</summary>
internal sealed record InteractionLog(int Users, int Items, (int User, int Item, float Weight, long Ts)[] Rows)
{
    public static InteractionLog Load(string path, char delim, bool header, string userCol, string itemCol, string? weightCol, string? tsCol)
    {
        var users = new Dictionary<string, int>();
        var items = new Dictionary<string, int>();
        var rows = new List<(int, int, float, long)>();
        int u = -1, i = -1, w = -1, t = -1;
        var first = true;
        foreach (var f in Csv.Rows(path, delim))
        {
            if (first)
            {
                first = false;
                var names = header ? f : f.Select((_, k) => k.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray();
                u = Csv.Col(names, userCol); i = Csv.Col(names, itemCol);
                w = weightCol == null ? -1 : Csv.Col(names, weightCol);
                t = tsCol == null ? -1 : Csv.Col(names, tsCol);
                if (header) continue;
            }
            if (!users.TryGetValue(f[u], out var uu)) users[f[u]] = uu = users.Count;
            if (!items.TryGetValue(f[i], out var ii)) items[f[i]] = ii = items.Count;
            rows.Add((uu, ii, w < 0 ? 1f : (float)Csv.Num(f[w]), t < 0 ? 0 : (long)Csv.Num(f[t])));
        }
        return new InteractionLog(users.Count, items.Count, rows.ToArray());
    }
}

/// <summary>ALS vs popularity vs co-occurrence under the RecBole and Microsoft Recommenders protocols.</summary>
internal static class RecBench
{
    public sealed record Scores(double Ndcg, double Recall, double Hit, double Precision, double Coverage);

    /// <summary>Averages the metrics over users with at least one relevant item.</summary>
    public static Scores Evaluate(int users, int items, Func<int, int[]> top10, Func<int, HashSet<int>> relevant)
    {
        double n = 0, r = 0, h = 0, p = 0;
        var count = 0;
        var lists = new int[users][];
        var rel = new HashSet<int>[users];
        for (var u = 0; u < users; u++) rel[u] = relevant(u);
        Parallel.For(0, users, u => { if (rel[u].Count > 0) lists[u] = top10(u); });
        for (var u = 0; u < users; u++)
        {
            if (rel[u].Count == 0) continue;
            count++;
            n += RankingMetrics.Ndcg(lists[u], rel[u], 10);
            r += RankingMetrics.Recall(lists[u], rel[u], 10);
            h += RankingMetrics.HitRate(lists[u], rel[u], 10);
            p += RankingMetrics.Precision(lists[u], rel[u], 10);
        }
        return new Scores(n / count, r / count, h / count, p / count, RankingMetrics.CatalogCoverage(lists.Where(l => l != null), items));
    }

    public static Interaction[] ToInteractions(IEnumerable<(int User, int Item, float Weight, long Ts)> rows) =>
        rows.Select(x => new Interaction(x.User, x.Item, x.Weight, x.Ts)).ToArray();

    /// <summary>Per-user random split by ratios; later parts get floor(ratio * n), the first part keeps the rest (RecBole's rule).</summary>
    public static List<(int, int, float, long)>[] SplitPerUser(InteractionLog log, double[] ratios, ulong seed, bool roundLikeMsr)
    {
        var parts = ratios.Select(_ => new List<(int, int, float, long)>()).ToArray();
        var rng = new SplitMix64(seed);
        foreach (var g in log.Rows.GroupBy(x => x.User).OrderBy(g => g.Key))
        {
            var arr = g.ToArray();
            rng.Shuffle(arr.AsSpan());
            var counts = new int[ratios.Length];
            if (roundLikeMsr)
            {
                // Microsoft Recommenders' python_stratified_split: the first part is round(ratio * n).
                counts[0] = (int)Math.Round(ratios[0] * arr.Length, MidpointRounding.ToEven);
                counts[1] = arr.Length - counts[0];
            }
            else
            {
                for (var k = 1; k < ratios.Length; k++) counts[k] = (int)(ratios[k] * arr.Length);
                counts[0] = arr.Length - counts.Skip(1).Sum();
            }
            var at = 0;
            for (var k = 0; k < ratios.Length; k++)
            {
                parts[k].AddRange(arr.Skip(at).Take(counts[k]));
                at += counts[k];
            }
        }
        return parts;
    }

    private static HashSet<int>[] ItemsPerUser(int users, IEnumerable<(int User, int Item, float, long)> rows)
    {
        var s = new HashSet<int>[users];
        for (var u = 0; u < users; u++) s[u] = [];
        foreach (var x in rows) s[x.User].Add(x.Item);
        return s;
    }

    /// <summary>Runs ALS + baselines, trained on train, scored on test, excluding the given seen sets.</summary>
    public static (Scores Als, Scores Pop, Scores Cooc, double Seconds) RunAll(InteractionLog log, List<(int, int, float, long)> train,
        HashSet<int>[] exclude, HashSet<int>[] relevant, AlsOptions options)
    {
        var data = ToInteractions(train);
        var sw = Stopwatch.StartNew();
        var als = new AlsTrainer(options).Train(data, log.Users, log.Items);
        var seconds = sw.Elapsed.TotalSeconds;
        var pop = new PopularityTrainer().Train(data, log.Items);
        var cooc = new CoOccurrenceTrainer().Train(data, log.Users, log.Items);
        var trainSets = ItemsPerUser(log.Users, train);
        int[] Ids(ScoredItem[] s) => s.Select(x => x.Item).ToArray();
        var a = Evaluate(log.Users, log.Items, u => Ids(TopK.Select(als.ScoreAll(als.UserVector(u)), 10, exclude[u].Contains)), u => relevant[u]);
        var p = Evaluate(log.Users, log.Items, u => Ids(pop.Recommend(10, exclude[u].Contains)), u => relevant[u]);
        var c = Evaluate(log.Users, log.Items, u => Ids(cooc.RecommendForCart(trainSets[u].ToArray(), 10, exclude[u].Contains)), u => relevant[u]);
        return (a, p, c, seconds);
    }

    public static AlsOptions Tune(InteractionLog log, List<(int, int, float, long)> fit, HashSet<int>[] exclude, HashSet<int>[] valid,
        AlsOptions start, double[] alphas, double[] regs, int[] factors, TextWriter logOut)
    {
        var data = ToInteractions(fit);
        var best = start;
        var bestNdcg = -1.0;
        foreach (var k in factors)
            foreach (var a in alphas)
                foreach (var r in regs)
                {
                    var o = start with { Factors = k, Alpha = a, Regularization = r };
                    var als = new AlsTrainer(o).Train(data, log.Users, log.Items);
                    var s = Evaluate(log.Users, log.Items, u => TopK.Select(als.ScoreAll(als.UserVector(u)), 10, exclude[u].Contains).Select(x => x.Item).ToArray(), u => valid[u]);
                    logOut.WriteLine(FormattableString.Invariant($"  tune k={k} alpha={a} reg={r}: valid NDCG@10 {s.Ndcg:F4}"));
                    if (s.Ndcg > bestNdcg) { bestNdcg = s.Ndcg; best = o; }
                }
        return best;
    }

    /// <summary>RecBole: random 0.8/0.1/0.1 per user, full ranking, train (and valid) items excluded at test time.</summary>
    public static void RecBole(InteractionLog log, string name, Table table, AlsOptions options, bool tune, TextWriter logOut)
    {
        var parts = SplitPerUser(log, [0.8, 0.1, 0.1], 2020, roundLikeMsr: false);
        var trainSets = ItemsPerUser(log.Users, parts[0]);
        if (tune)
        {
            var validSets = ItemsPerUser(log.Users, parts[1]);
            options = Tune(log, parts[0], trainSets, validSets, options, [0.5, 1, 2, 5, 10], [1, 5, 20, 50], [64, 128], logOut);
            logOut.WriteLine($"  RecBole chosen: {options}");
        }
        var exclude = ItemsPerUser(log.Users, parts[0].Concat(parts[1]));
        var test = ItemsPerUser(log.Users, parts[2]);
        var (a, p, c, s) = RunAll(log, parts[0], exclude, test, options);
        var ds = $"{name} RecBole 8/1/1 (k={options.Factors}, a={options.Alpha}, l={options.Regularization})";
        void Row(string m, double o, double pv, double cv, string reference) =>
            table.Add(ds, m, Table.F(o), $"pop {Table.F(pv)} / co-occ {Table.F(cv)}", name == "ml-100k" ? reference : "-", Table.F(s, 2));
        Row("NDCG@10", a.Ndcg, p.Ndcg, c.Ndcg, "BPR 0.277-0.292; target >= 0.30");
        Row("Recall@10", a.Recall, p.Recall, c.Recall, "BPR 0.237-0.252");
        Row("Hit@10", a.Hit, p.Hit, c.Hit, "BPR 0.761-0.795");
        Row("Precision@10", a.Precision, p.Precision, c.Precision, "BPR 0.190-0.196");
        Row("Coverage@10", a.Coverage, p.Coverage, c.Coverage, "-");
    }

    /// <summary>Microsoft Recommenders: stratified 75/25 per user, top 10, seen items removed.</summary>
    public static void Msr(InteractionLog log, string name, Table table, AlsOptions options, bool tune, TextWriter logOut)
    {
        var parts = SplitPerUser(log, [0.75, 0.25], 42, roundLikeMsr: true);
        if (tune)
        {
            // Validation carved from the training part only, with the same rule.
            var inner = SplitPerUser(new InteractionLog(log.Users, log.Items, parts[0].ToArray()), [0.75, 0.25], 7, roundLikeMsr: true);
            var fitSets = ItemsPerUser(log.Users, inner[0]);
            var validSets = ItemsPerUser(log.Users, inner[1]);
            options = Tune(log, inner[0], fitSets, validSets, options, [0.5, 1, 2, 5, 10], [1, 5, 20, 50], [64, 128], logOut);
            logOut.WriteLine($"  MSR chosen: {options}");
        }
        var exclude = ItemsPerUser(log.Users, parts[0]);
        var test = ItemsPerUser(log.Users, parts[1]);
        var (a, p, c, s) = RunAll(log, parts[0], exclude, test, options);
        var ds = $"{name} MS-Recommenders 75/25 (k={options.Factors}, a={options.Alpha}, l={options.Regularization})";
        void Row(string m, double o, double pv, double cv, string reference) =>
            table.Add(ds, m, Table.F(o), $"pop {Table.F(pv)} / co-occ {Table.F(cv)}", name == "ml-100k" ? reference : "-", Table.F(s, 2));
        Row("NDCG@10", a.Ndcg, p.Ndcg, c.Ndcg, "BPR 0.442, BiVAE 0.475");
        Row("Precision@10", a.Precision, p.Precision, c.Precision, "BPR 0.388, BiVAE 0.412");
        Row("Recall@10", a.Recall, p.Recall, c.Recall, "BPR 0.213, BiVAE 0.219");
    }
}
