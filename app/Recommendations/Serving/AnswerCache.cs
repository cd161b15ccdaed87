using System.Collections.Concurrent;
using System.Diagnostics.CodeAnalysis;
using System.Diagnostics.Metrics;
using Microsoft.Extensions.Options;

namespace PluginApp.Recommendations;

/// <summary>
/// A product page's answer as composed, before the parts that stay per request are added (request id, rank tokens, the
/// decision-log row, the visitor's exposure).
/// </summary>
/// <param name="Output">The canary's note for the decision log, as the first answer wrote it.</param>
/// <param name="Shadow">The shadow version's answer to the same page, logged beside every answer served from here.</param>
public sealed record CachedAnswer(string Path, int? Version, RecommendedItem[] Items, string? Output, string? Shadow);

/// <summary>
/// Product-page answers per shop. A product page's answer depends only on the shop's catalog snapshot (products, stock, prices,
/// rules, the upsell switch and notice: <see cref="CatalogSnapshot.Version"/>), on its models (active version, the version in
/// shadow or canary and the canary's share: <see cref="ShopModels.Generation"/>), and on the product, the number of items, the
/// visitor's arm and whether the visitor is in the canary's share. So answers are kept per (product, limit, arm, canary) in a
/// table that belongs to one (catalog version, models generation) pair; a request that finds another pair starts a new table.
/// Each of those changes is announced to every instance (catalog_changed, feature_switched, model_changed), which reloads what
/// changed, so no instance serves an answer from before a change once it has heard of it. Carts are never cached: their
/// combinations rarely repeat.
/// </summary>
public sealed class AnswerCache
{
    private readonly IOptions<RecommendationOptions> options;

    public AnswerCache(IOptions<RecommendationOptions> options, IMeterFactory meters)
    {
        this.options = options;
        var meter = meters.Create(Operations.OperatorMetrics.MeterName);
        meter.CreateObservableGauge("pluginapp.serving.answer_cache.answers", () => Volatile.Read(ref _count), "{answer}",
            "Product-page answers held in this instance's answer cache.");
        meter.CreateObservableCounter("pluginapp.serving.answer_cache.lookups", () => new[]
        {
            new Measurement<long>(Interlocked.Read(ref _hits), new KeyValuePair<string, object?>("result", "hit")),
            new Measurement<long>(Interlocked.Read(ref _misses), new KeyValuePair<string, object?>("result", "miss")),
        }, "{lookup}", "Product-page answers looked up in the answer cache, by result.");
    }

    /// <summary>What, besides the shop's catalog and models, a product page's answer depends on.</summary>
    public readonly record struct Key(long ProductId, int Limit, string Arm, bool InCanary);

    private sealed class Table(ulong catalog, long models)
    {
        public ulong Catalog { get; } = catalog;
        public long Models { get; } = models;
        public ConcurrentDictionary<Key, CachedAnswer> Answers { get; } = new();
    }

    private readonly ConcurrentDictionary<long, Table> _shops = new();
    private int _count;
    private long _hits;
    private long _misses;

    public bool TryGet(long shopId, ulong catalog, long models, Key key, [NotNullWhen(true)] out CachedAnswer? answer)
    {
        if (_shops.TryGetValue(shopId, out var t) && t.Catalog == catalog && t.Models == models && t.Answers.TryGetValue(key, out answer))
        {
            Interlocked.Increment(ref _hits);
            return true;
        }
        Interlocked.Increment(ref _misses);
        answer = null;
        return false;
    }

    /// <summary>
    /// Keeps an answer, unless the cache is full (then answers are kept again once a shop's table is replaced). Why the
    /// replacement before the check: until 6 Dec 2026 a full cache returned first, so no table was replaced again, no count
    /// came back down, and every shop's answers went stale and missed until the process restarted.
    /// </summary>
    public void Put(long shopId, ulong catalog, long models, Key key, CachedAnswer answer)
    {
        var t = _shops.GetOrAdd(shopId, static (_, v) => new Table(v.catalog, v.models), (catalog, models));
        if (t.Catalog != catalog || t.Models != models)
        {
            var fresh = new Table(catalog, models);
            if (!_shops.TryUpdate(shopId, fresh, t)) return; // another request replaced it first
            // Why count here: the replaced table's answers go with it (one answered concurrently may be counted on: the bound is loose by that).
            Interlocked.Add(ref _count, -t.Answers.Count);
            t = fresh;
        }
        if (Volatile.Read(ref _count) >= options.Value.AnswerCacheEntries) return;
        if (t.Answers.TryAdd(key, answer)) Interlocked.Increment(ref _count);
    }

    /// <summary>Answers held, and hits and misses since start (for the operator metrics and the benchmark).</summary>
    public (int Answers, long Hits, long Misses) Stats() => (Volatile.Read(ref _count), Interlocked.Read(ref _hits), Interlocked.Read(ref _misses));
}
