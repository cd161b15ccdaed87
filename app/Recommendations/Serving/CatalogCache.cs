using System.Collections.Concurrent;
using System.Text.Json;
using Microsoft.Extensions.Options;
using Npgsql;

namespace PluginApp.Recommendations;

public sealed record CatalogVariant(long Id, decimal? Price, int? Inventory, string? Policy, decimal? Cost)
{
    /// <summary>Untracked stock, or selling past zero allowed, counts as in stock.</summary>
    public bool InStock => Inventory is null or > 0 || Policy == "continue";
}

public sealed record CatalogProduct(long Id, string Title, string? Handle, string? ProductType, string? ImageUrl, bool Sellable,
    CatalogVariant[] Variants, long[] Collections)
{
    /// <summary>The variant we show: the cheapest one in stock, else the cheapest.</summary>
    public CatalogVariant? Display { get; } = Variants.Where(v => v.InStock).MinBy(v => v.Price ?? decimal.MaxValue)
                                             ?? Variants.MinBy(v => v.Price ?? decimal.MaxValue);
    public bool InStock => Variants.Length == 0 || Variants.Any(v => v.InStock);
}

/// <summary>What serving reads about one shop, loaded in one go and kept for a few seconds.</summary>
/// <param name="Enabled">The merchant's switch for upsells; when off, <paramref name="WhenOff"/> says what the blocks show.</param>
/// <param name="Notice">The merchant's text behind "Why am I seeing this?", or null for the theme's default.</param>
public sealed record CatalogSnapshot(IReadOnlyDictionary<long, CatalogProduct> Products, IReadOnlyDictionary<long, long> ProductOfVariant,
    long[] Bestsellers, string Currency, BusinessRules Rules, DateTimeOffset LoadedAt, bool Enabled = true, string WhenOff = "nothing",
    string? Notice = null);

/// <summary>
/// Per-shop catalog snapshots for serving. A snapshot older than CatalogMaxAge is reloaded by one caller while
/// the others keep answering from the old one, so a stock change reaches the storefront within seconds.
/// </summary>
public sealed class CatalogCache(NpgsqlDataSource db, IOptions<RecommendationOptions> options, TimeProvider clock, ILogger<CatalogCache> logger)
{
    private sealed class Entry
    {
        public Task<CatalogSnapshot>? Current;
        public int Reloading;
    }

    private readonly ConcurrentDictionary<long, Entry> _entries = new();

    public async Task<CatalogSnapshot> GetAsync(long shopId, CancellationToken ct)
    {
        var entry = _entries.GetOrAdd(shopId, _ => new Entry());
        var current = Volatile.Read(ref entry.Current);
        if (current is null || current.IsFaulted)
        {
            var load = LoadAsync(shopId);
            _ = Interlocked.CompareExchange(ref entry.Current, load, current);
            return await Volatile.Read(ref entry.Current)!.WaitAsync(ct);
        }
        if (current.IsCompletedSuccessfully && clock.GetUtcNow() - current.Result.LoadedAt > options.Value.CatalogMaxAge
            && Interlocked.Exchange(ref entry.Reloading, 1) == 0)
        {
            _ = Task.Run(async () =>
            {
                try { Volatile.Write(ref entry.Current, Task.FromResult(await LoadAsync(shopId))); }
                catch (Exception e) when (e is NpgsqlException or TimeoutException) { logger.LogWarning("Catalog reload for shop {Shop} failed: {Message}", shopId, e.Message); }
                finally { Volatile.Write(ref entry.Reloading, 0); }
            }, CancellationToken.None);
        }
        return await current.WaitAsync(ct);
    }

    /// <summary>Drops a shop's snapshot (after a rules change on this instance).</summary>
    public void Invalidate(long shopId) => _entries.TryRemove(shopId, out _);

    private async Task<CatalogSnapshot> LoadAsync(long shopId)
    {
        var loadedAt = clock.GetUtcNow();
        await using var conn = await db.OpenConnectionAsync();
        await using var batch = new NpgsqlBatch(conn)
        {
            BatchCommands =
            {
                Cmd("SELECT id, title, handle, product_type, image_url, coalesce(status, 'active') = 'active' AND deleted_at IS NULL FROM products WHERE shop_id = $1", shopId),
                Cmd("SELECT product_id, id, price, inventory_quantity, inventory_policy, unit_cost FROM variants WHERE shop_id = $1 ORDER BY product_id, id", shopId),
                Cmd("SELECT product_id, collection_id FROM product_collections WHERE shop_id = $1", shopId),
                Cmd("""
                    SELECT l.product_id FROM order_lines l JOIN orders o ON o.shop_id = l.shop_id AND o.id = l.order_id
                    WHERE l.shop_id = $1 AND l.product_id IS NOT NULL AND o.cancelled_at IS NULL
                      AND o.created_at >= (SELECT max(created_at) FROM orders WHERE shop_id = $1) - interval '90 days'
                    GROUP BY l.product_id ORDER BY sum(l.quantity) DESC LIMIT 200
                    """, shopId),
                Cmd("SELECT coalesce((SELECT currency FROM shops WHERE id = $1), (SELECT currency FROM orders WHERE shop_id = $1 ORDER BY created_at DESC LIMIT 1), 'USD')", shopId),
                Cmd("SELECT rules::text FROM recommendation_rules WHERE shop_id = $1", shopId),
                Cmd($"SELECT enabled, when_off FROM ai_feature_switches WHERE shop_id = $1 AND feature = '{UpsellFeature.Name}'", shopId),
                Cmd("SELECT text FROM shopper_notices WHERE shop_id = $1", shopId),
            },
        };
        await using var r = await batch.ExecuteReaderAsync();
        var heads = new List<(long, string, string?, string?, string?, bool)>();
        while (await r.ReadAsync())
            heads.Add((r.GetInt64(0), r.GetString(1), r.IsDBNull(2) ? null : r.GetString(2), r.IsDBNull(3) ? null : r.GetString(3),
                r.IsDBNull(4) ? null : r.GetString(4), r.GetBoolean(5)));
        await r.NextResultAsync();
        var variants = new Dictionary<long, List<CatalogVariant>>();
        var productOfVariant = new Dictionary<long, long>();
        while (await r.ReadAsync())
        {
            var v = new CatalogVariant(r.GetInt64(1), r.IsDBNull(2) ? null : r.GetDecimal(2), r.IsDBNull(3) ? null : r.GetInt32(3),
                r.IsDBNull(4) ? null : r.GetString(4), r.IsDBNull(5) ? null : r.GetDecimal(5));
            (variants.TryGetValue(r.GetInt64(0), out var list) ? list : variants[r.GetInt64(0)] = []).Add(v);
            productOfVariant[v.Id] = r.GetInt64(0);
        }
        await r.NextResultAsync();
        var collections = new Dictionary<long, List<long>>();
        while (await r.ReadAsync()) (collections.TryGetValue(r.GetInt64(0), out var l) ? l : collections[r.GetInt64(0)] = []).Add(r.GetInt64(1));
        await r.NextResultAsync();
        var bestsellers = new List<long>();
        while (await r.ReadAsync()) bestsellers.Add(r.GetInt64(0));
        await r.NextResultAsync();
        await r.ReadAsync();
        var currency = r.GetString(0);
        await r.NextResultAsync();
        var rules = await r.ReadAsync() ? JsonSerializer.Deserialize<BusinessRules>(r.GetString(0), RulesStore.Json)! : BusinessRules.Default;
        await r.NextResultAsync();
        var (enabled, whenOff) = await r.ReadAsync() ? (r.GetBoolean(0), r.GetString(1)) : (true, UpsellFeature.Registration.OffChoices[0]);
        await r.NextResultAsync();
        var notice = await r.ReadAsync() ? r.GetString(0) : null;

        var products = heads.ToDictionary(h => h.Item1, h => new CatalogProduct(h.Item1, h.Item2, h.Item3, h.Item4, h.Item5, h.Item6,
            variants.TryGetValue(h.Item1, out var vs) ? vs.ToArray() : [], collections.TryGetValue(h.Item1, out var cs) ? cs.ToArray() : []));
        return new CatalogSnapshot(products, productOfVariant, bestsellers.ToArray(), currency, rules, loadedAt, enabled, whenOff, notice);
    }

    private static NpgsqlBatchCommand Cmd(string sql, long shopId) => new(sql) { Parameters = { new NpgsqlParameter { Value = shopId } } };
}
