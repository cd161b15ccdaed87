using System.Globalization;
using Npgsql;
using NpgsqlTypes;
using PluginApp.Recommendations;
using PluginApp.Shopify;

namespace LoadGen;

/// <summary>
/// Memory per store: writes small stores straight into the database (a shop, its catalog and an active recommender trained by
/// the app's own training code on a synthetic store of that size, its ids moved to the store's own), asks each store's product
/// page once so the app holds its model and catalog, and reads the app's resident memory (/proc) and managed heap (operator
/// metrics) before and after. Two catalog sizes give the cost per store and per 1,000 catalog items, and the slope between them.
/// </summary>
internal static class MemoryBenchmark
{
    public static async Task<int> RunAsync(Args a)
    {
        var url = a.Get("url").TrimEnd('/');
        var secret = a.Get("secret");
        var conn = a.Get("conn");
        var token = a.Get("token");
        var pid = a.GetInt("pid", 0);
        var groups = new[] { (Stores: a.GetInt("stores", 1000), Items: a.GetInt("items", 200)), (Stores: a.GetInt("stores2", 100), Items: a.GetInt("items2", 2000)) };
        await using var db = NpgsqlDataSource.Create(conn);
        using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 16 }) { Timeout = TimeSpan.FromSeconds(60) };
        var start = await Memory.ReadAsync(http, url, token, pid);
        Console.WriteLine($"before the small stores: {start}");
        var results = new List<(int Stores, int Items, double RssPerStore, double HeapPerStore, double ReckonedPerStore, double CatalogPerStore)>();
        var before = start;
        var first = 0;
        foreach (var (count, items) in groups)
        {
            if (count == 0) continue;
            var bundle = TrainShape(items);
            var stores = await WriteStoresAsync(db, first, count, items, bundle);
            first += count;
            var now = DateTimeOffset.UtcNow;
            var failed = 0;
            // Each store's product page once: the app loads the store's catalog and model and keeps them.
            await Parallel.ForEachAsync(stores, new ParallelOptions { MaxDegreeOfParallelism = 16 }, async (s, ct) =>
            {
                var query = new Dictionary<string, string> { ["placement"] = "product", ["product_id"] = s.Product.ToString(CultureInfo.InvariantCulture), ["limit"] = "4", ["visitor_id"] = "memory" };
                using var r = await http.GetAsync($"{url}/proxy/recommendations?{ShopifySigner.ProxyQuery(secret, s.Domain, query, now)}", ct);
                var body = await r.Content.ReadAsStringAsync(ct);
                if (!r.IsSuccessStatusCode || !body.Contains("\"model_version\":1", StringComparison.Ordinal)) Interlocked.Increment(ref failed);
            });
            var after = await Memory.ReadAsync(http, url, token, pid);
            var reckoned = (after.ModelBytes - before.ModelBytes) / count;
            var catalog = (after.CatalogBytes - before.CatalogBytes) / (double)count;
            results.Add((count, items, (after.Rss - before.Rss) / (double)count, (after.Heap - before.Heap) / (double)count, reckoned, catalog));
            Console.WriteLine($"{count} stores of {items} items ({bundle.ToBytes().Length / 1024.0:F0} KB model file each, {failed} not answered by their model): {after}");
            Console.WriteLine($"  per store: resident {Kb(results[^1].RssPerStore)}, managed heap {Kb(results[^1].HeapPerStore)}, model as reckoned by the cache {Kb(reckoned)}, catalog snapshot as reckoned by its cache {Kb(catalog)}; " +
                              $"per 1,000 catalog items: resident {Kb(results[^1].RssPerStore / items * 1000)}");
            before = after;
        }
        if (results.Count == 2)
        {
            var (s1, s2) = (results[0], results[1]);
            var slope = (s2.RssPerStore - s1.RssPerStore) / (s2.Items - s1.Items) * 1000;
            var fixedCost = s1.RssPerStore - slope * s1.Items / 1000;
            Console.WriteLine($"resident memory per store ≈ {Kb(fixedCost)} + {Kb(slope)} per 1,000 catalog items (from {s1.Items} and {s2.Items} items)");
        }
        Console.WriteLine($"app resident memory with {first} small stores and the busy store held: {before.Rss / 1048576.0:F0} MiB (2 GiB = 2048 MiB: {(before.Rss <= 2L << 30 ? "fits" : "DOES NOT FIT")})");
        return 0;
    }

    private static string Kb(double bytes) => $"{bytes / 1024:F0} KB";

    /// <summary>
    /// A small store's recommender, trained by the app's own training code on a synthetic store of <paramref name="items"/>
    /// products in groups of 8 bought together, two customers per product with three orders each, over the last year.
    /// </summary>
    private static RecommenderBundle TrainShape(int items)
    {
        var random = new Random(items);
        var asOf = DateTimeOffset.UtcNow;
        var signals = new List<PluginApp.Recommendations.Signal>();
        for (var c = 0; c < items * 2; c++)
        {
            var group = random.Next(items / 8);
            for (var o = 0; o < 3; o++)
            {
                var at = asOf.AddDays(-random.Next(365));
                for (var k = 0; k < 2 + random.Next(3); k++)
                    signals.Add(new($"c:{c}", 1 + group * 8 + random.Next(8), PluginApp.Recommendations.SignalKind.Order, at));
            }
        }
        return RecommenderTraining.Train(signals, asOf, RecommenderTraining.Defaults).Bundle;
    }

    private sealed record Store(string Domain, long Product);

    /// <summary>The stores as installed shops with a catalog (one variant per product) and the bundle as their active model, ids moved to their own.</summary>
    private static async Task<List<Store>> WriteStoresAsync(NpgsqlDataSource db, int first, int count, int items, RecommenderBundle shape)
    {
        var stores = new List<Store>();
        await using var conn = await db.OpenConnectionAsync();
        for (var i = first; i < first + count; i++)
        {
            var domain = $"small-{i}.myshopify.com";
            // Shopify's ids are unique across shops: each store's products live in a range of their own.
            var offset = 1_000_000_000L + i * 1_000_000L;
            await using (var shop = new NpgsqlCommand("INSERT INTO shops (domain, installed_at, currency) VALUES ($1, now(), 'USD') RETURNING id", conn))
            {
                shop.Parameters.AddWithValue(domain);
                var shopId = (long)(await shop.ExecuteScalarAsync())!;
                await using (var products = await conn.BeginBinaryImportAsync("COPY products (shop_id, id, title, handle, product_type, status, image_url, created_at) FROM STDIN (FORMAT BINARY)"))
                {
                    for (var p = 1; p <= items; p++)
                    {
                        await products.StartRowAsync();
                        await products.WriteAsync(shopId, NpgsqlDbType.Bigint);
                        await products.WriteAsync(offset + p, NpgsqlDbType.Bigint);
                        await products.WriteAsync($"Product {p} of store {i}", NpgsqlDbType.Text);
                        await products.WriteAsync($"product-{p}", NpgsqlDbType.Text);
                        await products.WriteAsync($"type-{p % 5}", NpgsqlDbType.Text);
                        await products.WriteAsync("active", NpgsqlDbType.Text);
                        await products.WriteAsync($"https://cdn.example.com/{i}/{p}.jpg", NpgsqlDbType.Text);
                        await products.WriteAsync(DateTime.UtcNow, NpgsqlDbType.TimestampTz);
                    }
                    await products.CompleteAsync();
                }
                await using (var variants = await conn.BeginBinaryImportAsync("COPY variants (shop_id, id, product_id, price, inventory_quantity, inventory_policy) FROM STDIN (FORMAT BINARY)"))
                {
                    for (var p = 1; p <= items; p++)
                    {
                        await variants.StartRowAsync();
                        await variants.WriteAsync(shopId, NpgsqlDbType.Bigint);
                        await variants.WriteAsync((offset + p) * 10, NpgsqlDbType.Bigint);
                        await variants.WriteAsync(offset + p, NpgsqlDbType.Bigint);
                        await variants.WriteAsync(10m + p % 40, NpgsqlDbType.Numeric);
                        await variants.WriteAsync(10, NpgsqlDbType.Integer);
                        await variants.WriteAsync("deny", NpgsqlDbType.Text);
                    }
                    await variants.CompleteAsync();
                }
                var own = new RecommenderBundle(shape.Als, shape.Popularity, shape.CoOccurrence, Array.ConvertAll(shape.ProductIds, id => id + offset), shape.Served);
                await using var model = new NpgsqlCommand("""
                    INSERT INTO models (shop_id, kind, version, status, parameters, metrics, artifact, created_at, activated_at)
                    VALUES ($1, 'recommender', 1, 'active', '{}', '{}', $2, now(), now())
                    """, conn);
                model.Parameters.AddWithValue(shopId);
                model.Parameters.AddWithValue(own.ToBytes());
                await model.ExecuteNonQueryAsync();
                stores.Add(new Store(domain, offset + 1 + i % items));
            }
        }
        return stores;
    }
}

/// <summary>The app's memory as the benchmark reads it: resident set (/proc/PID/status), managed heap after the last GC and the model cache's figures (operator metrics).</summary>
internal sealed record Memory(long Rss, long Heap, long ModelBytes, long ModelShops, long CatalogBytes, long CatalogShops)
{
    public static async Task<Memory> ReadAsync(HttpClient http, string url, string token, int pid)
    {
        var metrics = await Metrics.ReadAfterPauseAsync(http, url, token);
        long rss = 0;
        if (pid > 0)
            foreach (var line in await File.ReadAllLinesAsync($"/proc/{pid}/status"))
                if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                    rss = long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;
        return new Memory(rss, (long)metrics.Sum("dotnet_gc_last_collection_heap_size"), (long)metrics.Sum("pluginapp_serving_model_cache_size"),
            (long)metrics.Sum("pluginapp_serving_model_cache_shops"), (long)metrics.Sum("pluginapp_serving_catalog_cache_size"),
            (long)metrics.Sum("pluginapp_serving_catalog_cache_shops"));
    }

    public override string ToString() =>
        $"resident {Rss / 1048576.0:F0} MiB, managed heap after the last GC {Heap / 1048576.0:F0} MiB, models held {ModelShops} ({ModelBytes / 1048576.0:F0} MiB as reckoned), catalogs held {CatalogShops} ({CatalogBytes / 1048576.0:F0} MiB as reckoned)";
}

/// <summary>One read of the operators' metrics endpoint (Prometheus text).</summary>
internal sealed class Metrics(string text)
{
    /// <summary>Why a pause first: the endpoint may answer from a scrape made a moment before.</summary>
    public static async Task<Metrics> ReadAfterPauseAsync(HttpClient http, string url, string token)
    {
        await Task.Delay(1500);
        return await ReadAsync(http, url, token);
    }

    public static async Task<Metrics> ReadAsync(HttpClient http, string url, string token)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, url + "/operator/metrics");
        request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", token);
        using var response = await http.SendAsync(request);
        response.EnsureSuccessStatusCode();
        return new Metrics(await response.Content.ReadAsStringAsync());
    }

    /// <summary>The sum of every sample whose name starts with <paramref name="prefix"/> and whose line holds <paramref name="label"/>.</summary>
    public double Sum(string prefix, string? label = null)
    {
        var sum = 0.0;
        foreach (var line in text.Split('\n'))
        {
            if (!line.StartsWith(prefix, StringComparison.Ordinal) || (label is not null && !line.Contains(label, StringComparison.Ordinal))) continue;
            var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length >= 2 && double.TryParse(parts[1], NumberStyles.Float, CultureInfo.InvariantCulture, out var v)) sum += v;
        }
        return sum;
    }
}
