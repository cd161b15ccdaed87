using PluginApp.Ml.Recommenders;

namespace PluginApp.Recommendations;

/// <summary>What a shopper did with a product. The kind sets its weight.</summary>
public enum SignalKind { View = 1, AddToCart = 2, Order = 3 }

/// <summary>
/// One shopper-product signal. UserKey is a customer ("c:123"), a cart ("k:token") or a visitor hash ("v:..."). An order
/// line's <paramref name="Quantity"/> is what was bought, and <paramref name="Refunds"/> what was refunded of it and when:
/// a held-out evaluation trains on each line as it stood at its cutoff (<see cref="AsOf"/>), not with refunds that came
/// after it.
/// </summary>
public readonly record struct Signal(string UserKey, long ProductId, SignalKind Kind, DateTimeOffset At, float Quantity = 1,
    (DateTimeOffset At, float Quantity)[]? Refunds = null)
{
    /// <summary>The signal as known at <paramref name="t"/>: its quantity less what was refunded before then.</summary>
    public Signal AsOf(DateTimeOffset t)
    {
        if (Refunds is null) return this;
        var left = Quantity;
        foreach (var r in Refunds)
            if (r.At < t) left -= r.Quantity;
        return this with { Quantity = left, Refunds = null };
    }

    /// <summary>The signal as it stands now, every refund taken off.</summary>
    public Signal Net => AsOf(DateTimeOffset.MaxValue);
}

/// <summary>The interactions of one shop, indexed for the trainers, and the product id of each item index.</summary>
public sealed record InteractionSet(Interaction[] Interactions, int UserCount, long[] ProductIds, Dictionary<long, int> ItemIndex,
    Dictionary<string, int> UserIndex);

/// <summary>
/// The one place signals become weighted interactions, used by training and by serving (cart fold-in), so
/// both weigh the same things the same way: an order counts more than an add-to-cart, which counts more than
/// a view, and older signals fade with a half-life.
/// </summary>
public static class InteractionBuilder
{
    public static float Weight(SignalKind kind) => kind switch
    {
        SignalKind.Order => 3f,
        SignalKind.AddToCart => 2f,
        _ => 1f,
    };

    /// <summary>Recency decay: a signal loses half its weight every <paramref name="halfLife"/>.</summary>
    public static float Decay(DateTimeOffset at, DateTimeOffset asOf, TimeSpan halfLife) =>
        at >= asOf ? 1f : (float)Math.Pow(0.5, (asOf - at).TotalDays / halfLife.TotalDays);

    public static InteractionSet Build(IEnumerable<Signal> signals, DateTimeOffset asOf, TimeSpan halfLife)
    {
        var list = signals as IReadOnlyList<Signal> ?? signals.ToList();
        // Why sorted ids: indexes must not depend on the order rows came from the database, or the same data
        // would train a different model.
        var ids = list.Select(s => s.ProductId).Distinct().Order().ToArray();
        var items = new Dictionary<long, int>(ids.Length);
        for (var i = 0; i < ids.Length; i++) items[ids[i]] = i;
        var users = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var key in list.Select(s => s.UserKey).Distinct().Order(StringComparer.Ordinal))
            users[key] = users.Count;
        var weights = new Dictionary<(int, int), float>();
        foreach (var s in list)
        {
            var item = items[s.ProductId];
            var user = users[s.UserKey];
            var w = Weight(s.Kind) * Math.Max(1f, MathF.Log2(1 + s.Quantity)) * Decay(s.At, asOf, halfLife);
            weights[(user, item)] = weights.GetValueOrDefault((user, item)) + w;
        }
        var interactions = weights.OrderBy(kv => kv.Key).Select(kv => new Interaction(kv.Key.Item1, kv.Key.Item2, kv.Value)).ToArray();
        return new InteractionSet(interactions, users.Count, ids, items, users);
    }

    /// <summary>A cart or a product page as item indexes and weights for fold-in, weighed like add-to-cart signals.</summary>
    public static (int[] Items, float[] Weights) ForFoldIn(IEnumerable<long> productIds, IReadOnlyDictionary<long, int> itemIndex)
    {
        var items = productIds.Distinct().Where(itemIndex.ContainsKey).Select(p => itemIndex[p]).ToArray();
        return (items, items.Select(_ => Weight(SignalKind.AddToCart)).ToArray());
    }
}
