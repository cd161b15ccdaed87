using System.Text.Json.Serialization;
using PluginApp.Ml.Metrics;
using PluginApp.Ml.Recommenders;

namespace PluginApp.Recommendations;

/// <param name="ConfidenceEpsilon">ALS confidence is 1 + Alpha * log(1 + w / ConfidenceEpsilon) (<see cref="ConfidenceCompression"/>); 0 uses raw weights (1 + Alpha * w).</param>
/// <param name="MinEvalSize">Held-out customers needed before the candidates' NDCG@10 picks the served one; below it the blend serves.</param>
public sealed record TrainingParameters(int Factors, int Iterations, double Alpha, double Regularization, double HalfLifeDays, ulong Seed,
    double ConfidenceEpsilon = 1, int MinEvalSize = 100);

/// <summary>One candidate's held-out quality, as stored with the model.</summary>
public sealed record CandidateMetrics(double NdcgAt10, double RecallAt10);

/// <summary>
/// Held-out quality of a model, measured when it was trained: every candidate on the same split, which one serves and by how
/// much it won. RecallAt10 and NdcgAt10 are ALS's, as every version stored them before candidates were compared (so they stay
/// comparable across versions); ServedNdcgAt10, the promotion metric, is the served candidate's. The baseline is popularity
/// on the same split.
/// </summary>
public sealed record HeldOutMetrics(double RecallAt10, double NdcgAt10, double BaselineRecallAt10, int TestUsers, string Split)
{
    /// <summary>The served candidate's NDCG@10: what the registry's gate compares between versions. Null (not stored) when no
    /// held-out customer could be asked, as are the other served and baseline figures: until 6 Dec 2026 such a run stored
    /// 0 for each, and the gate then held every later version that trailed bestsellers (on too few customers to choose)
    /// against that "0 over bestsellers", so a small store kept its first model.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public double? ServedNdcgAt10 { get; init; }

    /// <summary>The served candidate's Recall@10.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public double? ServedRecallAt10 { get; init; }

    /// <summary>Popularity's NDCG@10 on the same customers.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public double? BaselineNdcgAt10 { get; init; }

    /// <summary>The served candidate: als, co_occurrence, popularity or blend (<see cref="RecommenderCandidates"/>).</summary>
    public string Winner { get; init; } = RecommenderCandidates.Blend;

    /// <summary>Whether the winner was chosen by NDCG@10 (false: too few held-out customers, the default serves).</summary>
    public bool WinnerMeasured { get; init; }

    public string? RunnerUp { get; init; }

    /// <summary>Winner's NDCG@10 minus the runner-up's.</summary>
    public double MarginOverRunnerUp { get; init; }

    /// <summary>Winner's NDCG@10 minus popularity's.</summary>
    public double MarginOverPopularity { get; init; }

    /// <summary>How the winner was chosen, in a sentence.</summary>
    public string Selection { get; init; } = "";

    public int MinEvalSize { get; init; }

    /// <summary>Every candidate's NDCG@10 and Recall@10 on the same customers, by name.</summary>
    public Dictionary<string, CandidateMetrics> Candidates { get; init; } = [];
}

public sealed record TrainedRecommender(RecommenderBundle Bundle, HeldOutMetrics Metrics, int Interactions, DateTimeOffset From, DateTimeOffset To);

/// <summary>The candidates a store's recommender is chosen from, by their stored names.</summary>
public static class RecommenderCandidates
{
    /// <summary>Implicit ALS on log-compressed confidence.</summary>
    public const string Als = "als";
    /// <summary>Bought together (lift) from the customer's items.</summary>
    public const string CoOccurrence = "co_occurrence";
    /// <summary>The store's bestsellers with recency decay.</summary>
    public const string Popularity = "popularity";
    /// <summary>Bought together interleaved with ALS, as served before candidates were chosen: the default.</summary>
    public const string Blend = "blend";

    public static readonly string[] All = [Als, CoOccurrence, Popularity, Blend];

    public static ServedCandidate ToServed(string name) => name switch
    {
        Als => ServedCandidate.Als,
        CoOccurrence => ServedCandidate.CoOccurrence,
        Popularity => ServedCandidate.Popularity,
        Blend => ServedCandidate.Blend,
        _ => throw new ArgumentOutOfRangeException(nameof(name), name, "unknown recommender candidate"),
    };

    /// <summary>The candidate in the merchant's words.</summary>
    public static string Describe(string? name) => name switch
    {
        Als => "Personalised model (ALS)",
        CoOccurrence => "Bought together",
        Popularity => "Store bestsellers",
        Blend => "Bought together mixed with the personalised model",
        null => "–",
        _ => name,
    };
}

/// <summary>
/// Trains a shop's recommender from its signals: evaluates every candidate (ALS with log-compressed confidence, bought
/// together, bestsellers, and the blend of bought together and ALS) on one held-out time split (the last 14 days of
/// orders, or for small stores a longer window, <see cref="Split"/>), picks the one to serve by NDCG@10
/// (<see cref="CandidateSelection"/>), then trains the served bundle on everything.
/// </summary>
public static class RecommenderTraining
{
    public static readonly TrainingParameters Defaults = new(Factors: 64, Iterations: 15, Alpha: 1, Regularization: 20, HalfLifeDays: 120, Seed: 42);
    private const int MinTestUsers = 30;
    private const int K = 10;

    public static TrainedRecommender Train(IReadOnlyList<Signal> signals, DateTimeOffset asOf, TrainingParameters p)
    {
        // Why "not enough data", not a failure: a new store has nothing yet, and until 6 Dec 2026 each of its nightly runs
        // was recorded as failed and retried three times.
        // The served model learns from every line as it stands now, what was refunded of it taken off (a line refunded whole
        // teaches nothing); the evaluation, from each as it stood at its cutoff.
        var now = Netted(signals, DateTimeOffset.MaxValue);
        if (now.Count == 0) throw new PluginApp.Training.NotEnoughDataException("not enough data yet: the shop has no orders, carts or events to learn from");
        var metrics = Evaluate(signals, p);
        var full = InteractionBuilder.Build(now, asOf, TimeSpan.FromDays(p.HalfLifeDays));
        var (_, bundle) = Fit(full, now, p, RecommenderCandidates.ToServed(metrics.Winner));
        return new TrainedRecommender(bundle, metrics, full.Interactions.Length, now.Min(s => s.At), now.Max(s => s.At));
    }

    /// <summary>
    /// Splits, trains every candidate on the training part and measures them on the held-out customers; nothing is kept.
    /// The training part's weights decay from the cutoff, as the served model's do from its training: until 8 Dec 2026 from
    /// the newest signal, so a small store's 112-day window trained the evaluated ALS on weights halved against the served one's.
    /// </summary>
    public static HeldOutMetrics Evaluate(IReadOnlyList<Signal> signals, TrainingParameters p)
    {
        var (train, test, split, cutoff) = Split(signals);
        return Evaluate(train, test, split, cutoff, TimeSpan.FromDays(p.HalfLifeDays), p);
    }

    /// <returns>The trained ALS with its user rows (evaluation ranks for known users) and the served bundle, which drops them.</returns>
    private static (AlsModel Als, RecommenderBundle Bundle) Fit(InteractionSet set, IReadOnlyList<Signal> signals, TrainingParameters p,
        ServedCandidate served)
    {
        // Why compressed: summed weights grow with every repeat purchase; raw, they let a few heavy pairs drive the fit.
        var confidence = new ConfidenceCompression(p.ConfidenceEpsilon);
        var als = new AlsTrainer(new AlsOptions
        {
            Factors = Math.Min(p.Factors, Math.Max(2, set.ProductIds.Length)), Iterations = p.Iterations, Alpha = p.Alpha,
            Regularization = p.Regularization, Seed = p.Seed,
        }).Train(confidence.Apply(set.Interactions), set.UserCount, set.ProductIds.Length);
        var popularity = new PopularityTrainer(new PopularityOptions { HalfLifeDays = p.HalfLifeDays })
            .Train(set.Interactions, set.ProductIds.Length);
        // Bought together: baskets are orders and carts, not whole customer histories.
        var baskets = new Dictionary<string, int>(StringComparer.Ordinal);
        var basketItems = new List<Interaction>();
        foreach (var s in signals.Where(s => s.Kind != SignalKind.View))
        {
            if (!set.ItemIndex.TryGetValue(s.ProductId, out var item)) continue;
            var key = s.UserKey + "@" + s.At.UtcDateTime.Date.ToString("yyyyMMdd", System.Globalization.CultureInfo.InvariantCulture);
            if (!baskets.TryGetValue(key, out var b)) b = baskets[key] = baskets.Count;
            basketItems.Add(new Interaction(b, item));
        }
        var coOccurrence = new CoOccurrenceTrainer(new CoOccurrenceOptions()).Train(basketItems.Distinct().ToArray(), baskets.Count, set.ProductIds.Length);
        return (als, new RecommenderBundle(als, popularity, coOccurrence, set.ProductIds, served));
    }

    /// <summary>
    /// A time split: every signal before the cutoff trains, and the held-out customers are those who ordered in the window
    /// from it on, having had something before it. The window is the last 14 days, or for a small store (fewer than
    /// <see cref="MinTestUsers"/> such customers in them) doubled while it stays within half the store's history, the one
    /// with the most held-out customers kept. Until 6 Dec 2026 a small store held out the last order day of a fifth of its
    /// customers instead: everyone else's later orders stayed in training, so bestsellers and bought together were measured
    /// with the weeks after the held-out purchases already known.
    /// </summary>
    internal static (List<Signal> Train, Dictionary<string, HashSet<long>> Test, string Split, DateTimeOffset Cutoff) Split(IReadOnlyList<Signal> all)
    {
        // Held out: what the customers bought and kept (a line refunded by now is no good recommendation). Trained on: each
        // line as it stood at the cutoff, with the refunds processed before it (Signal.AsOf), not those that came after.
        var signals = Netted(all, DateTimeOffset.MaxValue);
        if (signals.Count == 0) return ([], [], "no signals", DateTimeOffset.MinValue);
        var newest = signals.Max(s => s.At);
        var half = (newest - signals.Min(s => s.At)) / 2;
        (DateTimeOffset Cutoff, Dictionary<string, HashSet<long>> Test, int Days)? best = null;
        for (var days = 14; ; days *= 2)
        {
            var cutoff = newest - TimeSpan.FromDays(days);
            var trainUsers = all.Where(s => s.At < cutoff && s.AsOf(cutoff).Quantity > 0).Select(s => s.UserKey).ToHashSet(StringComparer.Ordinal);
            var test = signals.Where(s => s.At >= cutoff && s.Kind == SignalKind.Order && trainUsers.Contains(s.UserKey))
                .GroupBy(s => s.UserKey, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Select(s => s.ProductId).ToHashSet(), StringComparer.Ordinal);
            if (best is null || test.Count > best.Value.Test.Count) best = (cutoff, test, days);
            if (test.Count >= MinTestUsers || TimeSpan.FromDays(days * 2) > half) break;
        }
        var (at, held, window) = best.Value;
        return (Netted(all.Where(s => s.At < at), at), held, $"last {window} days of orders", at);
    }

    /// <summary>The signals as known at <paramref name="t"/>, those left with nothing (refunded whole by then) dropped.</summary>
    private static List<Signal> Netted(IEnumerable<Signal> signals, DateTimeOffset t) =>
        signals.Select(s => s.AsOf(t)).Where(s => s.Quantity > 0).ToList();

    private static HeldOutMetrics Evaluate(List<Signal> train, Dictionary<string, HashSet<long>> test, string split,
        DateTimeOffset asOf, TimeSpan halfLife, TrainingParameters p)
    {
        var options = new CandidateSelectionOptions
        {
            MinEvalSize = p.MinEvalSize, Default = RecommenderCandidates.Blend, Baseline = RecommenderCandidates.Popularity,
        };
        if (train.Count == 0 || test.Count == 0) return Chosen([], 0, split + " (too little data to evaluate)", options);
        var set = InteractionBuilder.Build(train, asOf, halfLife);
        var (als, bundle) = Fit(set, train, p, ServedCandidate.Blend);
        var sums = RecommenderCandidates.All.ToDictionary(c => c, _ => (Ndcg: 0.0, Recall: 0.0), StringComparer.Ordinal);
        var users = 0;
        foreach (var (user, bought) in test)
        {
            if (!set.UserIndex.TryGetValue(user, out var u)) continue;
            var history = als.SeenItems(u).ToArray();
            var seen = history.ToHashSet();
            // What the customer went on to buy that no candidate is allowed to show them (what they had before): left out of
            // the answer as well as the question. Until 5 Dec 2026 repeat purchases counted against every candidate, lowering
            // each figure by however much the customer re-bought, and weighing customers by it.
            var relevant = bought.Where(set.ItemIndex.ContainsKey).Select(id => set.ItemIndex[id]).Where(i => !seen.Contains(i)).ToHashSet();
            if (relevant.Count == 0) continue;
            // Every candidate ranks for the same customer from the same training history, never returning what they had.
            var fromAls = als.RecommendForUser(u, K).Select(x => x.Item).ToArray();
            var together = bundle.CoOccurrence.RecommendForCart(history, K, seen.Contains).Select(x => x.Item).ToArray();
            var ranked = new Dictionary<string, int[]>(StringComparer.Ordinal)
            {
                [RecommenderCandidates.Als] = fromAls,
                [RecommenderCandidates.CoOccurrence] = together,
                [RecommenderCandidates.Popularity] = bundle.Popularity.Recommend(K, seen.Contains).Select(x => x.Item).ToArray(),
                [RecommenderCandidates.Blend] = Interleave(together, fromAls, K),
            };
            foreach (var (name, list) in ranked)
            {
                var (n, r) = sums[name];
                sums[name] = (n + RankingMetrics.Ndcg(list, relevant, K), r + RankingMetrics.Recall(list, relevant, K));
            }
            users++;
        }
        if (users == 0) return Chosen([], 0, split + " (no test user in training)", options);
        var scores = RecommenderCandidates.All.Select(c => new CandidateScore(c, sums[c].Ndcg / users, sums[c].Recall / users)).ToList();
        return Chosen(scores, users, split, options);
    }

    /// <summary>The metrics of a choice among <paramref name="scores"/> (none: nothing was measured and the default serves).</summary>
    private static HeldOutMetrics Chosen(List<CandidateScore> scores, int users, string split, CandidateSelectionOptions options)
    {
        var measured = scores.Count > 0;
        if (!measured) scores = RecommenderCandidates.All.Select(c => new CandidateScore(c, 0, 0)).ToList();
        var choice = CandidateSelection.Choose(scores, users, options);
        var pop = scores.Single(s => s.Name == RecommenderCandidates.Popularity);
        var als = scores.Single(s => s.Name == RecommenderCandidates.Als);
        return new HeldOutMetrics(als.RecallAt10, als.NdcgAt10, pop.RecallAt10, users, split)
        {
            ServedNdcgAt10 = measured ? choice.Winner.NdcgAt10 : null,
            ServedRecallAt10 = measured ? choice.Winner.RecallAt10 : null,
            BaselineNdcgAt10 = measured ? pop.NdcgAt10 : null,
            Winner = choice.Winner.Name,
            WinnerMeasured = choice.Measured,
            RunnerUp = choice.RunnerUp?.Name,
            MarginOverRunnerUp = choice.MarginOverRunnerUp,
            MarginOverPopularity = choice.MarginOverBaseline,
            Selection = choice.Reason,
            MinEvalSize = options.MinEvalSize,
            Candidates = measured ? scores.ToDictionary(s => s.Name, s => new CandidateMetrics(s.NdcgAt10, s.RecallAt10), StringComparer.Ordinal) : [],
        };
    }

    /// <summary>Bought together first, then the model, alternating, without repeats: the order the blend is served in.</summary>
    internal static int[] Interleave(int[] first, int[] second, int k)
    {
        var result = new List<int>(k);
        for (var i = 0; i < Math.Max(first.Length, second.Length) && result.Count < k; i++)
        {
            if (i < first.Length && !result.Contains(first[i])) result.Add(first[i]);
            if (result.Count < k && i < second.Length && !result.Contains(second[i])) result.Add(second[i]);
        }
        return [.. result];
    }

    private static int StableHash(string s)
    {
        var h = 2166136261u;
        foreach (var c in s) h = (h ^ c) * 16777619u;
        return (int)h;
    }
}
