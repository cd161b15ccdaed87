using System.Globalization;
using PluginApp.Shopify;

namespace LoadGen;

/// <summary>
/// Signed app-proxy requests for recommendations (product pages and carts, many visitors) against the running
/// app; the baseline is GET /healthz at the same concurrency in the same run.
/// </summary>
internal static class ServeBenchmark
{
    public static async Task<int> RunAsync(Args a)
    {
        var url = a.Get("url").TrimEnd('/');
        var secret = a.Get("secret");
        var shop = a.Get("shop");
        var n = a.GetInt("n", 30000);
        var concurrency = a.GetInt("concurrency", 64);
        var products = File.ReadAllLines(a.Get("products")).Select(l => l.Split(' ')).Where(p => p.Length == 2)
            .Select(p => (Product: long.Parse(p[0], CultureInfo.InvariantCulture), Variant: long.Parse(p[1], CultureInfo.InvariantCulture))).ToArray();
        var random = new Random(11);
        var queries = Enumerable.Range(0, n).Select(i =>
        {
            var query = new Dictionary<string, string> { ["visitor_id"] = $"bench-{random.Next(5000)}", ["limit"] = "4" };
            if (i % 3 == 2)
            {
                query["placement"] = "cart";
                query["variant_ids"] = string.Join(',', Enumerable.Range(0, 1 + random.Next(3)).Select(_ => products[random.Next(products.Length)].Variant));
            }
            else
            {
                query["placement"] = "product";
                query["product_id"] = products[random.Next(products.Length)].Product.ToString(CultureInfo.InvariantCulture);
            }
            return query;
        }).ToArray();
        // Why signed as sent: a phase on a busy machine outlasts the app proxy's ClockSkew, and a request signed before it would be refused.
        string Signed(int i) => $"{url}/proxy/recommendations?{ShopifySigner.ProxyQuery(secret, shop, queries[i], DateTimeOffset.UtcNow)}";
        using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = concurrency }) { Timeout = TimeSpan.FromSeconds(30) };
        var paths = new System.Collections.Concurrent.ConcurrentDictionary<string, int>();
        bool Ok(HttpResponseMessage r) => r.IsSuccessStatusCode;

        await LoadRunner.RunAsync(http, Math.Min(n, 3000), concurrency, i => new HttpRequestMessage(HttpMethod.Get, Signed(i)), Ok); // warm-up
        // With the operators' token: the app's allocations per request over each phase (its whole process, background work
        // included, so the healthz phase is the floor) and the answer cache's hits.
        var token = a.Values.GetValueOrDefault("token");
        Metrics? m0 = token is null ? null : await Metrics.ReadAfterPauseAsync(http, url, token);
        var health = await LoadRunner.RunAsync(http, n, concurrency, _ => new HttpRequestMessage(HttpMethod.Get, url + "/healthz"), Ok);
        Metrics? m1 = token is null ? null : await Metrics.ReadAfterPauseAsync(http, url, token);
        var serve = await LoadRunner.RunAsync(http, n, concurrency, i => new HttpRequestMessage(HttpMethod.Get, Signed(i)), Ok);
        Metrics? m2 = token is null ? null : await Metrics.ReadAfterPauseAsync(http, url, token);
        // "4 instances' worth": the same requests at four times the concurrency against this one instance.
        var scale = a.GetInt("scale", 1);
        LoadRunner.Result? scaled = null;
        if (scale > 1)
        {
                using var wide = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = concurrency * scale }) { Timeout = TimeSpan.FromSeconds(30) };
            scaled = await LoadRunner.RunAsync(wide, n, concurrency * scale, i => new HttpRequestMessage(HttpMethod.Get, Signed(i)), Ok);
        }

        // Which path answered, on a sample: the model should be serving, not the fallback.
        for (var i = 0; i < Math.Min(n, 300); i++)
        {
            var body = await http.GetStringAsync(Signed(i));
            var path = body.Contains("\"path\":\"model\"", StringComparison.Ordinal) ? "model"
                : body.Contains("\"path\":\"co_occurrence\"", StringComparison.Ordinal) ? "co_occurrence" : "bestsellers";
            paths.AddOrUpdate(path, 1, (_, c) => c + 1);
        }

        Console.WriteLine($"baseline GET /healthz:           {health}");
        Console.WriteLine($"GET /proxy/recommendations:      {serve}");
        Console.WriteLine($"serve/healthz throughput ratio = {serve.PerSecond / health.PerSecond:F2}; paths on a sample of 300: " +
                          string.Join(", ", paths.OrderBy(p => p.Key).Select(p => $"{p.Key} {p.Value}")));
        if (scaled is not null)
            Console.WriteLine($"same requests at concurrency {concurrency * scale} ({scale} instances' worth of load on this one): {scaled}");
        if (m0 is not null && m1 is not null && m2 is not null)
        {
            const string allocated = "dotnet_gc_heap_total_allocated";
            const string lookups = "pluginapp_serving_answer_cache_lookups";
            var healthAlloc = (m1.Sum(allocated) - m0.Sum(allocated)) / n;
            var serveAlloc = (m2.Sum(allocated) - m1.Sum(allocated)) / n;
            var hits = m2.Sum(lookups, "result=\"hit\"") - m1.Sum(lookups, "result=\"hit\"");
            var misses = m2.Sum(lookups, "result=\"miss\"") - m1.Sum(lookups, "result=\"miss\"");
            Console.WriteLine($"allocated per request (the app process, GC.GetTotalAllocatedBytes over the phase / requests): healthz {healthAlloc / 1024:F1} KB, " +
                              $"recommendations {serveAlloc / 1024:F1} KB; answer cache over the run: {hits:F0} hits, {misses:F0} misses " +
                              $"({(hits + misses > 0 ? hits / (hits + misses) : 0):P0} of product pages)");
        }
        return serve.Failures == 0 ? 0 : 1;
    }
}
