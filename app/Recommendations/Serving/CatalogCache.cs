using System.Diagnostics.Metrics;
using System.Collections.Concurrent;
using System.Text.Json;
using Microsoft.Extensions.Options;
using Npgsql;

namespace PluginApp.Recommendations;

/// <param name="Tracked">Whether Shopify tracks the stock (null: not known yet, read as tracked).</param>
public sealed record CatalogVariant(long Id, decimal? Price, int? Inventory, string? Policy, decimal? Cost, bool? Tracked = null)
{
    /// <summary>Untracked stock (made to order, digital: its quantity stays 0), or selling past zero allowed, counts as in stock.</summary>
    public bool InStock => Tracked == false || Inventory is null or > 0 || Policy == "continue";
}

/// <param name="ImageUrl">The product's image as the blocks load it: sized for them where Shopify's CDN serves it (<see cref="Sized"/>).</param>
public sealed record CatalogProduct(long Id, string Title, string? Handle, string? ProductType, string? ImageUrl, bool Sellable,
    CatalogVariant[] Variants, long[] Collections)
{
    /// <summary>The width the blocks' images are asked for: twice the upsell card's 300 pixels, for sharp screens.</summary>
    public const int ImageWidth = 600;

    /// <summary>
    /// <paramref name="url"/> with Shopify's CDN asked for an image <paramref name="width"/> pixels wide (its <c>width</c>
    /// parameter; never larger than the upload) when Shopify's CDN serves it (cdn.shopify.com, or a shop's own /cdn/shop/
    /// path), else unchanged. Why: the catalog keeps the upload's address, often 2,000 to 4,000 pixels and megabytes, and
    /// until 6 Dec 2026 the blocks loaded it whole for a 300-pixel card or a 64-pixel thumbnail.
    /// </summary>
    public static string? Sized(string? url, int width)
    {
        if (!Uri.TryCreate(url, UriKind.Absolute, out var u) || u.Scheme != Uri.UriSchemeHttps
            || !(u.Host.Equals("cdn.shopify.com", StringComparison.OrdinalIgnoreCase) || u.AbsolutePath.StartsWith("/cdn/shop/", StringComparison.Ordinal)))
            return url;
        var query = u.Query.TrimStart('?');
        if (query.Split('&').Any(p => p.StartsWith("width=", StringComparison.Ordinal))) return url;
        var builder = new UriBuilder(u) { Query = (query.Length == 0 ? "" : query + "&") + "width=" + width.ToString(System.Globalization.CultureInfo.InvariantCulture) };
        return builder.Uri.AbsoluteUri;
    }

    /// <summary>The variant we show: the cheapest one in stock, else the cheapest.</summary>
    public CatalogVariant? Display { get; } = Variants.Where(v => v.InStock).MinBy(v => v.Price ?? decimal.MaxValue)
                                             ?? Variants.MinBy(v => v.Price ?? decimal.MaxValue);
    public bool InStock => Variants.Length == 0 || Variants.Any(v => v.InStock);
}

/// <summary>What serving reads about one shop, loaded in one go and kept for a few seconds.</summary>
/// <param name="Enabled">The merchant's switch for upsells; when off, <paramref name="WhenOff"/> says what the blocks show.</param>
/// <param name="Notice">The merchant's text behind "Why am I seeing this?", or null for the theme's default.</param>
/// <param name="Version">A digest of everything above but the load time: two loads of an unchanged shop have the same version, so
/// answers cached against it (<see cref="AnswerCache"/>) survive the periodic reload and end with the first real change.</param>
/// <param name="Bytes">The memory it is reckoned to take (<see cref="CatalogCache.EstimatedBytes"/>), counted against the catalog budget.</param>
public sealed record CatalogSnapshot(IReadOnlyDictionary<long, CatalogProduct> Products, IReadOnlyDictionary<long, long> ProductOfVariant,
    long[] Bestsellers, string Currency, BusinessRules Rules, DateTimeOffset LoadedAt, bool Enabled = true, string WhenOff = "nothing",
    string? Notice = null, ulong Version = 0, long Bytes = 0);

/// <summary>
/// Per-shop catalog snapshots for serving. A change to the shop's products (webhook), rules or upsell switch is announced
/// (NOTIFY catalog_changed, or feature_switched for the switch) in the changing transaction, and every instance drops the shop's
/// snapshot at once. A snapshot older than CatalogMaxAge is also reloaded by one caller while the others keep answering from the
/// old one, so what no notification covers (a product deleted, stock) reaches the storefront within seconds. The bestsellers
/// are the exception: they are kept through reloads and dropped snapshots until BestsellersMaxAge (see there for why).
/// Bounded like the model cache: past <see cref="RecommendationOptions.CatalogCacheBudgetBytes"/> the least recently used shops'
/// snapshots are dropped (<see cref="CacheBudget"/>) and loaded again on their next request; a reloaded unchanged catalog has the
/// same version, so its cached answers still hold.
/// </summary>
public sealed class CatalogCache
{
    private readonly NpgsqlDataSource db;
    private readonly IOptions<RecommendationOptions> options;
    private readonly TimeProvider clock;
    private readonly ILogger<CatalogCache> logger;

    public CatalogCache(NpgsqlDataSource db, IOptions<RecommendationOptions> options, TimeProvider clock, IMeterFactory meters, ILogger<CatalogCache> logger)
    {
        (this.db, this.options, this.clock, this.logger) = (db, options, clock, logger);
        var meter = meters.Create(Operations.OperatorMetrics.MeterName);
        meter.CreateObservableGauge("pluginapp.serving.catalog_cache.shops", () => Held().Shops, "{shop}", "Shops whose catalog snapshot is held in memory on this instance.");
        meter.CreateObservableGauge("pluginapp.serving.catalog_cache.size", () => Held().Bytes, "By",
            "Memory the held catalog snapshots are reckoned to take, against Recommendations:CatalogCacheBudgetBytes.");
        meter.CreateObservableCounter("pluginapp.serving.catalog_cache.evictions", () => Held().Evictions, "{shop}",
            "Shops whose catalog snapshot was dropped to stay within the budget (loaded again on their next request).");
        _loads = meter.CreateCounter<long>("pluginapp.serving.catalog_loads", "{load}",
            "Catalog snapshots read from the database: a shop's first request, after a change or an eviction, and every CatalogMaxAge.");
    }

    private readonly Counter<long> _loads;

    /// <summary>Announces that a shop's catalog or rules changed; the payload is the shop id.</summary>
    public const string Channel = "catalog_changed";

    private sealed class Entry
    {
        public Task<CatalogSnapshot>? Current;
        public int Reloading;
        /// <summary>When a request last asked for the shop (Stopwatch ticks); the smallest is evicted first.</summary>
        public long LastUsed;
        /// <summary>The bestsellers the last load read, kept for the next loads until they are BestsellersMaxAge old.</summary>
        public Bestsellers? Bestsellers;
    }

    private sealed record Bestsellers(long[] Ids, DateTimeOffset LoadedAt);

    private readonly ConcurrentDictionary<long, Entry> _entries = new();
    private readonly Lock _admitting = new();
    private long _evictions;

    public async Task<CatalogSnapshot> GetAsync(long shopId, CancellationToken ct)
    {
        var entry = _entries.GetOrAdd(shopId, _ => new Entry());
        Volatile.Write(ref entry.LastUsed, System.Diagnostics.Stopwatch.GetTimestamp());
        var current = Volatile.Read(ref entry.Current);
        if (current is null || current.IsFaulted)
        {
            // Why only the caller whose task went in starts the load: each caller that found no snapshot loaded one of its own,
            // so a shop's first moment of traffic, or the requests just after a product change, ran the catalog's queries (the
            // bestsellers' 0.9 s on a large store among them) once per request in flight.
            var loading = new TaskCompletionSource<CatalogSnapshot>(TaskCreationOptions.RunContinuationsAsynchronously);
            if (Interlocked.CompareExchange(ref entry.Current, loading.Task, current) == current) _ = LoadIntoAsync(shopId, entry, loading);
            return await Volatile.Read(ref entry.Current)!.WaitAsync(ct);
        }
        if (current.IsCompletedSuccessfully && clock.GetUtcNow() - current.Result.LoadedAt > options.Value.CatalogMaxAge
            && Interlocked.Exchange(ref entry.Reloading, 1) == 0)
        {
            _ = Task.Run(async () =>
            {
                try { Volatile.Write(ref entry.Current, Task.FromResult(await LoadAsync(shopId, entry))); }
                catch (Exception e) when (e is NpgsqlException or TimeoutException) { logger.LogWarning("Catalog reload for shop {Shop} failed: {Message}", shopId, e.Message); }
                finally { Volatile.Write(ref entry.Reloading, 0); }
            }, CancellationToken.None);
        }
        return await current.WaitAsync(ct);
    }

    /// <summary>What the cache holds now: shops with a snapshot loaded, their reckoned bytes, and how many were evicted since start.</summary>
    public (int Shops, long Bytes, long Evictions) Held()
    {
        var (shops, bytes) = (0, 0L);
        foreach (var (_, e) in _entries)
            if (Volatile.Read(ref e.Current) is { IsCompletedSuccessfully: true } t) (shops, bytes) = (shops + 1, bytes + t.Result.Bytes);
        return (shops, bytes, Interlocked.Read(ref _evictions));
    }

    /// <summary>Whether the shop's snapshot is in memory now (loaded, not evicted).</summary>
    public bool Holds(long shopId) => _entries.TryGetValue(shopId, out var e) && Volatile.Read(ref e.Current) is { IsCompletedSuccessfully: true };

    /// <summary>
    /// The memory a snapshot is reckoned to take: per product its record, dictionary entry and strings (UTF-16), per variant its
    /// record and its entry in the variant index, per collection an id, and the bestsellers.
    /// </summary>
    public static long EstimatedBytes(CatalogSnapshot s)
    {
        var bytes = 1024L + s.Bestsellers.Length * 8L;
        foreach (var p in s.Products.Values)
            bytes += 160 + 2L * (p.Title.Length + (p.Handle?.Length ?? 0) + (p.ProductType?.Length ?? 0) + (p.ImageUrl?.Length ?? 0))
                     + p.Variants.Length * 112L + p.Collections.Length * 8L;
        return bytes;
    }

    /// <summary>Drops the least recently used shops' snapshots until what is held, with the one just loaded, fits the budget.</summary>
    private void Admit(long shopId, long bytes)
    {
        lock (_admitting)
        {
            var evicted = CacheBudget.Trim(_entries, shopId, bytes, options.Value.CatalogCacheBudgetBytes,
                e => Volatile.Read(ref e.Current) is { IsCompletedSuccessfully: true } t ? (t.Result.Bytes, Volatile.Read(ref e.LastUsed)) : null);
            if (evicted > 0) Interlocked.Add(ref _evictions, evicted);
        }
    }

    /// <summary>Drops a shop's snapshot; the next request loads it again (its bestsellers only once they are BestsellersMaxAge old).</summary>
    /// <remarks>Why a new entry rather than the old one emptied: a reload in flight writes into the entry it started from, and must
    /// not put back the snapshot from before the change.</remarks>
    public void Invalidate(long shopId)
    {
        if (_entries.TryRemove(shopId, out var old) && Volatile.Read(ref old.Bestsellers) is { } kept)
            _entries.TryAdd(shopId, new Entry { Bestsellers = kept, LastUsed = Volatile.Read(ref old.LastUsed) });
    }

    /// <summary>The listener reconnected: a change may have been missed, so every snapshot is loaded again.</summary>
    internal void InvalidateAll() => _entries.Clear();

    /// <summary>The statement that announces a change of the shop's catalog or rules, to add to the changing transaction.</summary>
    public static NpgsqlBatchCommand Announcement(long shopId) => new("SELECT pg_notify($1, $2)")
    {
        Parameters = { new() { Value = Channel }, new() { Value = shopId.ToString(System.Globalization.CultureInfo.InvariantCulture) } },
    };

    private async Task LoadIntoAsync(long shopId, Entry entry, TaskCompletionSource<CatalogSnapshot> loading)
    {
        try { loading.SetResult(await LoadAsync(shopId, entry)); }
        catch (Exception e)
        {
            loading.SetException(e);
            _ = loading.Task.Exception; // observed: the callers may all have stopped waiting
        }
    }

    private async Task<CatalogSnapshot> LoadAsync(long shopId, Entry entry)
    {
        _loads.Add(1);
        var loadedAt = clock.GetUtcNow();
        var kept = Volatile.Read(ref entry.Bestsellers) is { } b && loadedAt - b.LoadedAt < options.Value.BestsellersMaxAge ? b : null;
        await using var conn = await db.OpenConnectionAsync();
        await using var batch = new NpgsqlBatch(conn)
        {
            BatchCommands =
            {
                Cmd("SELECT id, title, handle, product_type, image_url, coalesce(status, 'active') = 'active' AND published AND deleted_at IS NULL FROM products WHERE shop_id = $1", shopId),
                // Whether the stock is tracked: the inventory item's webhook, else the backfill's (migration 0069).
                Cmd("""
                    SELECT v.product_id, v.id, v.price, v.inventory_quantity, v.inventory_policy, v.unit_cost, coalesce(i.tracked, v.inventory_tracked)
                    FROM variants v LEFT JOIN inventory_items i ON i.shop_id = v.shop_id AND i.id = v.inventory_item_id
                    WHERE v.shop_id = $1 ORDER BY v.product_id, v.id
                    """, shopId),
                Cmd("SELECT product_id, collection_id FROM product_collections WHERE shop_id = $1", shopId),
                Cmd($"SELECT coalesce({StoreData.ShopCurrency.Of("$1")}, 'USD')", shopId),
                Cmd("SELECT rules::text FROM recommendation_rules WHERE shop_id = $1", shopId),
                Cmd($"SELECT enabled, when_off FROM ai_feature_switches WHERE shop_id = $1 AND feature = '{UpsellFeature.Name}'", shopId),
                Cmd("SELECT text FROM shopper_notices WHERE shop_id = $1", shopId),
            },
        };
        // Why ties go by id: an unchanged store must load the same list, or its version (and its cached answers) would churn.
        // Why not test orders: a merchant trying the checkout with a product bought it for nobody (until 5 Dec 2026 it could
        // top the bestsellers, every holdout answer and fill, for 90 days). Why when placed too (OrderTime): an order imported
        // from the store's old platform is created on the import's day; read by its creation, years of history counted as the
        // last 90 days' (until 7 Dec 2026). The creation's bound stays, for the index (orders_created_idx).
        if (kept is null)
            batch.BatchCommands.Add(Cmd($$"""
                SELECT l.product_id FROM order_lines l JOIN orders o ON o.shop_id = l.shop_id AND o.id = l.order_id
                WHERE l.shop_id = $1 AND l.product_id IS NOT NULL AND o.cancelled_at IS NULL AND NOT o.test
                  AND o.created_at >= (SELECT max(created_at) FROM orders WHERE shop_id = $1) - interval '90 days'
                  AND {{StoreData.OrderTime.Placed("o")}} >= (SELECT max(created_at) FROM orders WHERE shop_id = $1) - interval '90 days'
                GROUP BY l.product_id ORDER BY sum(l.quantity) DESC, l.product_id LIMIT 200
                """, shopId));
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
                r.IsDBNull(4) ? null : r.GetString(4), r.IsDBNull(5) ? null : r.GetDecimal(5), r.IsDBNull(6) ? null : r.GetBoolean(6));
            (variants.TryGetValue(r.GetInt64(0), out var list) ? list : variants[r.GetInt64(0)] = []).Add(v);
            productOfVariant[v.Id] = r.GetInt64(0);
        }
        await r.NextResultAsync();
        var collections = new Dictionary<long, List<long>>();
        while (await r.ReadAsync()) (collections.TryGetValue(r.GetInt64(0), out var l) ? l : collections[r.GetInt64(0)] = []).Add(r.GetInt64(1));
        await r.NextResultAsync();
        await r.ReadAsync();
        var currency = r.GetString(0);
        await r.NextResultAsync();
        var rules = await r.ReadAsync() ? JsonSerializer.Deserialize<BusinessRules>(r.GetString(0), RulesStore.Json)! : BusinessRules.Default;
        await r.NextResultAsync();
        var (enabled, whenOff) = await r.ReadAsync() ? (r.GetBoolean(0), r.GetString(1)) : (true, UpsellFeature.Registration.OffChoices[0]);
        await r.NextResultAsync();
        var notice = await r.ReadAsync() ? r.GetString(0) : null;
        if (kept is null)
        {
            await r.NextResultAsync();
            var ids = new List<long>();
            while (await r.ReadAsync()) ids.Add(r.GetInt64(0));
            Volatile.Write(ref entry.Bestsellers, kept = new Bestsellers(ids.ToArray(), loadedAt));
        }
        var bestsellers = kept.Ids;

        var products = heads.ToDictionary(h => h.Item1, h => new CatalogProduct(h.Item1, h.Item2, h.Item3, h.Item4,
            CatalogProduct.Sized(h.Item5, CatalogProduct.ImageWidth), h.Item6,
            variants.TryGetValue(h.Item1, out var vs) ? vs.ToArray() : [], collections.TryGetValue(h.Item1, out var cs) ? cs.ToArray() : []));
        var snapshot = new CatalogSnapshot(products, productOfVariant, bestsellers, currency, rules, loadedAt, enabled, whenOff, notice);
        snapshot = snapshot with { Version = Digest(snapshot), Bytes = EstimatedBytes(snapshot) };
        Admit(shopId, snapshot.Bytes);
        return snapshot;
    }

    /// <summary>
    /// SHA-256 (first 8 bytes) over what an answer is built from, in a fixed order (the products by id: the query has no order).
    /// Why a digest and not a change counter: the bestsellers and stock move without any one row saying so.
    /// </summary>
    internal static ulong Digest(CatalogSnapshot s)
    {
        using var h = System.Security.Cryptography.IncrementalHash.CreateHash(System.Security.Cryptography.HashAlgorithmName.SHA256);
        var buffer = new System.Buffers.ArrayBufferWriter<byte>(4096);
        void Flush()
        {
            h.AppendData(buffer.WrittenSpan);
            buffer.ResetWrittenCount();
        }
        void Long(long v)
        {
            System.Buffers.Binary.BinaryPrimitives.WriteInt64LittleEndian(buffer.GetSpan(8), v);
            buffer.Advance(8);
            if (buffer.WrittenCount > 3072) Flush();
        }
        void Text(string? v)
        {
            Long(v is null ? -1 : v.Length);
            if (v is null) return;
            buffer.Advance(System.Text.Encoding.UTF8.GetBytes(v, buffer.GetSpan(System.Text.Encoding.UTF8.GetMaxByteCount(v.Length))));
            if (buffer.WrittenCount > 3072) Flush();
        }
        void Number(decimal? v) => Text(v?.ToString(System.Globalization.CultureInfo.InvariantCulture));
        foreach (var id in s.Products.Keys.Order())
        {
            var p = s.Products[id];
            Long(p.Id);
            Text(p.Title);
            Text(p.Handle);
            Text(p.ProductType);
            Text(p.ImageUrl);
            Long(p.Sellable ? 1 : 0);
            Long(p.Variants.Length);
            foreach (var v in p.Variants)
            {
                Long(v.Id);
                Number(v.Price);
                Long(v.Inventory ?? long.MinValue);
                Text(v.Policy);
                Number(v.Cost);
                Long(v.Tracked switch { null => -1, true => 1, false => 0 });
            }
            Long(p.Collections.Length);
            foreach (var c in p.Collections.Order()) Long(c);
        }
        Long(s.Bestsellers.Length);
        foreach (var b in s.Bestsellers) Long(b);
        Text(s.Currency);
        Text(JsonSerializer.Serialize(s.Rules, RulesStore.Json));
        Long(s.Enabled ? 1 : 0);
        Text(s.WhenOff);
        Text(s.Notice);
        Flush();
        Span<byte> digest = stackalloc byte[32];
        h.GetHashAndReset(digest);
        return System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(digest);
    }

    private static NpgsqlBatchCommand Cmd(string sql, long shopId) => new(sql) { Parameters = { new NpgsqlParameter { Value = shopId } } };
}
