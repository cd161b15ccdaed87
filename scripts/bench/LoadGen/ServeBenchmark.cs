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
        // Why one timestamp for all: the URLs are built before the run, which must end within the app's proxy ClockSkew.
        var now = DateTimeOffset.UtcNow;
        var urls = Enumerable.Range(0, n).Select(i =>
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
            return $"{url}/proxy/recommendations?{ShopifySigner.ProxyQuery(secret, shop, query, now)}";
        }).ToArray();

        using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = concurrency }) { Timeout = TimeSpan.FromSeconds(30) };
        var paths = new System.Collections.Concurrent.ConcurrentDictionary<string, int>();
        bool Ok(HttpResponseMessage r) => r.IsSuccessStatusCode;

        await LoadRunner.RunAsync(http, Math.Min(n, 3000), concurrency, i => new HttpRequestMessage(HttpMethod.Get, urls[i]), Ok); // warm-up
        var health = await LoadRunner.RunAsync(http, n, concurrency, _ => new HttpRequestMessage(HttpMethod.Get, url + "/healthz"), Ok);
        var serve = await LoadRunner.RunAsync(http, n, concurrency, i => new HttpRequestMessage(HttpMethod.Get, urls[i]), Ok);

        // Which path answered, on a sample: the model should be serving, not the fallback.
        foreach (var u in urls.Take(300))
        {
            var body = await http.GetStringAsync(u);
            var path = body.Contains("\"path\":\"model\"", StringComparison.Ordinal) ? "model"
                : body.Contains("\"path\":\"co_occurrence\"", StringComparison.Ordinal) ? "co_occurrence" : "bestsellers";
            paths.AddOrUpdate(path, 1, (_, c) => c + 1);
        }

        Console.WriteLine($"baseline GET /healthz:           {health}");
        Console.WriteLine($"GET /proxy/recommendations:      {serve}");
        Console.WriteLine($"serve/healthz throughput ratio = {serve.PerSecond / health.PerSecond:F2}; paths on a sample of 300: " +
                          string.Join(", ", paths.OrderBy(p => p.Key).Select(p => $"{p.Key} {p.Value}")));
        return serve.Failures == 0 ? 0 : 1;
    }
}
