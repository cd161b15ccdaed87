using PluginApp.Ml.Metrics;
using PluginApp.Ml.Recommenders;

namespace PluginApp.Recommendations;

public sealed record TrainingParameters(int Factors, int Iterations, double Alpha, double Regularization, double HalfLifeDays, ulong Seed);

/// <summary>Held-out quality of a model, measured when it was trained, with the popularity baseline on the same split.</summary>
public sealed record HeldOutMetrics(double RecallAt10, double NdcgAt10, double BaselineRecallAt10, int TestUsers, string Split);

public sealed record TrainedRecommender(RecommenderBundle Bundle, HeldOutMetrics Metrics, int Interactions, DateTimeOffset From, DateTimeOffset To);

/// <summary>
/// Trains a shop's recommender from its signals: evaluates on a held-out split (the last 14 days of orders,
/// or for small stores the last order of a fifth of the customers), then trains the served model on everything.
/// </summary>
public static class RecommenderTraining
{
    public static readonly TrainingParameters Defaults = new(Factors: 64, Iterations: 15, Alpha: 1, Regularization: 20, HalfLifeDays: 120, Seed: 42);
    private const int MinTestUsers = 30;

    public static TrainedRecommender Train(IReadOnlyList<Signal> signals, DateTimeOffset asOf, TrainingParameters p)
    {
        if (signals.Count == 0) throw new InvalidOperationException("the shop has no orders, carts or events to learn from yet");
        var halfLife = TimeSpan.FromDays(p.HalfLifeDays);
        var (train, test, split) = Split(signals);
        var metrics = Evaluate(train, test, split, asOf, halfLife, p);
        var full = InteractionBuilder.Build(signals, asOf, halfLife);
        var (_, bundle) = Fit(full, signals, p);
        return new TrainedRecommender(bundle, metrics, full.Interactions.Length, signals.Min(s => s.At), signals.Max(s => s.At));
    }

    /// <returns>The trained ALS with its user rows (evaluation ranks for known users) and the served bundle, which drops them.</returns>
    private static (AlsModel Als, RecommenderBundle Bundle) Fit(InteractionSet set, IReadOnlyList<Signal> signals, TrainingParameters p)
    {
        var als = new AlsTrainer(new AlsOptions
        {
            Factors = Math.Min(p.Factors, Math.Max(2, set.ProductIds.Length)), Iterations = p.Iterations, Alpha = p.Alpha,
            Regularization = p.Regularization, Seed = p.Seed,
        }).Train(set.Interactions, set.UserCount, set.ProductIds.Length);
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
        return (als, new RecommenderBundle(als, popularity, coOccurrence, set.ProductIds));
    }

    private static (List<Signal> Train, Dictionary<string, HashSet<long>> Test, string Split) Split(IReadOnlyList<Signal> signals)
    {
        var cutoff = signals.Max(s => s.At) - TimeSpan.FromDays(14);
        var trainUsers = signals.Where(s => s.At < cutoff).Select(s => s.UserKey).ToHashSet(StringComparer.Ordinal);
        var temporal = signals.Where(s => s.At >= cutoff && s.Kind == SignalKind.Order && trainUsers.Contains(s.UserKey))
            .GroupBy(s => s.UserKey).ToDictionary(g => g.Key, g => g.Select(s => s.ProductId).ToHashSet());
        if (temporal.Count >= MinTestUsers)
            return (signals.Where(s => s.At < cutoff).ToList(), temporal, "last 14 days of orders");

        // Small store: hold out the last order day of every fifth customer with at least two order days.
        var test = new Dictionary<string, HashSet<long>>(StringComparer.Ordinal);
        var held = new HashSet<(string, long, DateTimeOffset)>();
        foreach (var g in signals.Where(s => s.Kind == SignalKind.Order).GroupBy(s => s.UserKey).OrderBy(g => g.Key, StringComparer.Ordinal))
        {
            var days = g.Select(s => s.At.UtcDateTime.Date).Distinct().OrderBy(d => d).ToList();
            if (days.Count < 2 || (uint)StableHash(g.Key) % 5 != 0) continue;
            var last = g.Where(s => s.At.UtcDateTime.Date == days[^1]).ToList();
            test[g.Key] = last.Select(s => s.ProductId).ToHashSet();
            foreach (var s in last) held.Add((s.UserKey, s.ProductId, s.At));
        }
        return (signals.Where(s => !held.Contains((s.UserKey, s.ProductId, s.At))).ToList(), test, "last order of a fifth of the customers");
    }

    private static HeldOutMetrics Evaluate(List<Signal> train, Dictionary<string, HashSet<long>> test, string split,
        DateTimeOffset asOf, TimeSpan halfLife, TrainingParameters p)
    {
        if (train.Count == 0 || test.Count == 0) return new HeldOutMetrics(0, 0, 0, 0, split + " (too little data to evaluate)");
        var set = InteractionBuilder.Build(train, asOf, halfLife);
        var (als, bundle) = Fit(set, train, p);
        double recall = 0, ndcg = 0, baseline = 0;
        var users = 0;
        foreach (var (user, bought) in test)
        {
            if (!set.UserIndex.TryGetValue(user, out var u)) continue;
            var relevant = bought.Where(set.ItemIndex.ContainsKey).Select(id => set.ItemIndex[id]).ToHashSet();
            if (relevant.Count == 0) continue;
            var seen = als.SeenItems(u).ToArray().ToHashSet();
            var ranked = als.RecommendForUser(u, 10).Select(x => x.Item).ToArray();
            var popular = bundle.Popularity.Recommend(10, seen.Contains).Select(x => x.Item).ToArray();
            recall += RankingMetrics.Recall(ranked, relevant, 10);
            ndcg += RankingMetrics.Ndcg(ranked, relevant, 10);
            baseline += RankingMetrics.Recall(popular, relevant, 10);
            users++;
        }
        return users == 0
            ? new HeldOutMetrics(0, 0, 0, 0, split + " (no test user in training)")
            : new HeldOutMetrics(recall / users, ndcg / users, baseline / users, users, split);
    }

    private static int StableHash(string s)
    {
        var h = 2166136261u;
        foreach (var c in s) h = (h ^ c) * 16777619u;
        return (int)h;
    }
}
