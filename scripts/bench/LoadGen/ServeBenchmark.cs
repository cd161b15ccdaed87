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
            if (!IsProduct(i))
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
        // Why signed just before each phase, not as sent: signing is Shopify's work, not the app's, and the generator's HMAC per
        // request (healthz needs none) took CPU from the app on this shared machine; a phase lasts seconds, well inside the proxy's
        // ClockSkew (90 s), which a whole run would outlast.
        string Signed(int i) => $"{url}/proxy/recommendations?{ShopifySigner.ProxyQuery(secret, shop, queries[i], DateTimeOffset.UtcNow)}";
        string[] SignPhase() => Enumerable.Range(0, n).Select(Signed).ToArray();
        using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = concurrency }) { Timeout = TimeSpan.FromSeconds(30) };
        var paths = new System.Collections.Concurrent.ConcurrentDictionary<string, int>();
        bool Ok(HttpResponseMessage r) => r.IsSuccessStatusCode;

        // Warm-up: both endpoints long enough for the JIT's optimized code (tiered compilation promotes hot methods in the
        // background after their first calls; a short warm-up measured half-compiled code in the first phase). With the
        // operators' token, storefront phases go on until the JIT's compilation time in a phase is under 1 % of it: on two
        // busy cores the background compiler still took a tenth of the app's CPU 20 s into the load, and rounds measured
        // while it ran cost up to twice the app's CPU per request of the rounds after.
        await LoadRunner.RunAsync(http, Math.Min(n, 10000), concurrency, _ => new HttpRequestMessage(HttpMethod.Get, url + "/healthz"), Ok);
        var token = a.Values.GetValueOrDefault("token");
        const string jitTime = "dotnet_jit_compilation_time";
        string[] signed;
        for (var phase = 1; ; phase++)
        {
            signed = SignPhase();
            Metrics? before = token is null ? null : await Metrics.ReadAsync(http, url, token);
            var warm = await LoadRunner.RunAsync(http, n, concurrency, i => new HttpRequestMessage(HttpMethod.Get, signed[i]), Ok);
            if (token is null) break;
            var jit = (await Metrics.ReadAsync(http, url, token)).Sum(jitTime) - before!.Sum(jitTime);
            Console.WriteLine($"warm-up phase {phase}: {warm.PerSecond:F0} req/s, JIT compiling {jit * 1000:F0} ms of its {warm.Seconds:F1} s");
            if (jit < 0.01 * warm.Seconds || phase == 10) break;
        }
        // Rounds of healthz then recommendations, so a swing in the machine's speed shows as spread between rounds instead of
        // landing on one side of the ratio; the figures reported are each side's median and the median of the rounds' ratios.
        // With the operators' token: the app's allocations per request over each phase (its whole process, background work
        // included, so the healthz phase is the floor) and the answer cache's hits.
        var rounds = a.GetInt("rounds", 5);
        var healths = new List<LoadRunner.Result>();
        // CPU per request of each phase (app, PostgreSQL, this generator), from /proc: unlike throughput it hardly moves with
        // what else the machine is doing, so two changes measured minutes apart compare.
        var healthCpu = new List<Dictionary<string, double>>();
        var serveCpu = new List<Dictionary<string, double>>();
        string PerRequest(Dictionary<string, double> s) => $"CPU µs per request: app {s["app"] * 1e6 / n:F0}, PostgreSQL {s["postgres"] * 1e6 / n:F0}, generator {s["load"] * 1e6 / n:F0}";
        var serves = new List<LoadRunner.Result>();
        double healthAlloc = 0, serveAlloc = 0, hits = 0, misses = 0, healthPause = 0, servePause = 0;
        const string gcPause = "dotnet_gc_pause_time";
        const string gcCount = "dotnet_gc_collections";
        const string allocated = "dotnet_gc_heap_total_allocated";
        const string lookups = "pluginapp_serving_answer_cache_lookups";
        for (var r = 0; r < rounds; r++)
        {
            Metrics? m0 = token is null ? null : await Metrics.ReadAfterPauseAsync(http, url, token);
            var cpu = ProcessCpu.Start();
            var ownPause = GC.GetTotalPauseDuration();
            healths.Add(await LoadRunner.RunAsync(http, n, concurrency, _ => new HttpRequestMessage(HttpMethod.Get, url + "/healthz"), Ok));
            healthCpu.Add(cpu.Seconds());
            var healthOwnPause = GC.GetTotalPauseDuration() - ownPause;
            signed = SignPhase();
            Metrics? m1 = token is null ? null : await Metrics.ReadAfterPauseAsync(http, url, token);
            cpu = ProcessCpu.Start();
            ownPause = GC.GetTotalPauseDuration();
            serves.Add(await LoadRunner.RunAsync(http, n, concurrency, i => new HttpRequestMessage(HttpMethod.Get, signed[i]), Ok));
            serveCpu.Add(cpu.Seconds());
            var serveOwnPause = GC.GetTotalPauseDuration() - ownPause;
            Metrics? m2 = token is null ? null : await Metrics.ReadAfterPauseAsync(http, url, token);
            Console.WriteLine($"round {r + 1}: healthz {healths[^1].PerSecond:F0} req/s (p99 {healths[^1].P99Ms:F1} ms, {PerRequest(healthCpu[^1])}), recommendations " +
                              $"{serves[^1].PerSecond:F0} req/s (p99 {serves[^1].P99Ms:F1} ms: product pages {serves[^1].Percentile(0.99, IsProduct):F1}, carts {serves[^1].Percentile(0.99, i => !IsProduct(i)):F1}, " +
                              $"sent after the phase's first second {serves[^1].Percentile(0.99, i => serves[^1].Starts[i] >= 1000):F1}; " +
                              $"{PerRequest(serveCpu[^1])}), ratio {serves[^1].PerSecond / healths[^1].PerSecond:F2}; " +
                              // Why: a pause of this process delays every request in flight as a pause of the app's does.
                              $"the generator's own GC pauses: healthz {healthOwnPause.TotalMilliseconds:F0} ms, recommendations {serveOwnPause.TotalMilliseconds:F0} ms" +
                              (m1 is null || m2 is null ? "" : $"; the app's collections in the recommendations phase: {m2.Sum(gcCount) - m1.Sum(gcCount):F0} " +
                                  $"({(m2.Sum(gcPause) - m1.Sum(gcPause)) * 1000:F0} ms paused)") +
                              $"; stalls: healthz {Stalls(healths[^1], concurrency)}, recommendations {Stalls(serves[^1], concurrency)}");
            // Each request's start, latency and kind, for looking at when the slow ones happen.
            if (Environment.GetEnvironmentVariable("SERVE_LATENCY_DUMP") is { } dump)
                foreach (var (phase, name, kind) in new[] { (serves[^1], "", (Func<int, string>)(i => IsProduct(i) ? "p" : "c")), (healths[^1], ".healthz", _ => "h") })
                    File.WriteAllLines($"{dump}.{r + 1}{name}", Enumerable.Range(0, n).Select(i =>
                        FormattableString.Invariant($"{phase.Starts[i]:F2} {phase.Latencies[i]:F2} {kind(i)}"))
                        .Prepend(FormattableString.Invariant($"# began {phase.Began.ToUnixTimeMilliseconds()}")));
            if (m0 is null || m1 is null || m2 is null) continue;
            healthAlloc += m1.Sum(allocated) - m0.Sum(allocated);
            serveAlloc += m2.Sum(allocated) - m1.Sum(allocated);
            healthPause += m1.Sum(gcPause) - m0.Sum(gcPause);
            servePause += m2.Sum(gcPause) - m1.Sum(gcPause);
            hits += m2.Sum(lookups, "result=\"hit\"") - m1.Sum(lookups, "result=\"hit\"");
            misses += m2.Sum(lookups, "result=\"miss\"") - m1.Sum(lookups, "result=\"miss\"");
        }
        var health = Median(healths);
        var serve = Median(serves);
        var ratio = healths.Zip(serves, (h, s) => s.PerSecond / h.PerSecond).Order().ElementAt(rounds / 2);
        // "4 instances' worth": the same requests at four times the concurrency against this one instance.
        var scale = a.GetInt("scale", 1);
        LoadRunner.Result? scaled = null;
        if (scale > 1)
        {
            using var wide = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = concurrency * scale }) { Timeout = TimeSpan.FromSeconds(30) };
            signed = SignPhase();
            scaled = await LoadRunner.RunAsync(wide, n, concurrency * scale, i => new HttpRequestMessage(HttpMethod.Get, signed[i]), Ok);
        }

        // Which path answered, on a sample: the model should be serving, not the fallback.
        for (var i = 0; i < Math.Min(n, 300); i++)
        {
            var body = await http.GetStringAsync(Signed(i));
            var path = body.Contains("\"path\":\"model\"", StringComparison.Ordinal) ? "model"
                : body.Contains("\"path\":\"co_occurrence\"", StringComparison.Ordinal) ? "co_occurrence" : "bestsellers";
            paths.AddOrUpdate(path, 1, (_, c) => c + 1);
        }

        Console.WriteLine($"baseline GET /healthz (median of {rounds} rounds): {health}");
        Console.WriteLine($"GET /proxy/recommendations (median):  {serve}");
        Console.WriteLine($"median over the rounds, healthz: {PerRequest(MedianCpu(healthCpu))}; recommendations: {PerRequest(MedianCpu(serveCpu))}");
        Console.WriteLine($"serve/healthz throughput ratio = {ratio:F2} (median of the rounds); paths on a sample of 300: " +
                          string.Join(", ", paths.OrderBy(p => p.Key).Select(p => $"{p.Key} {p.Value}")));
        if (scaled is not null)
            Console.WriteLine($"same requests at concurrency {concurrency * scale} ({scale} instances' worth of load on this one): {scaled}");
        if (token is not null)
            Console.WriteLine($"allocated per request (the app process, GC.GetTotalAllocatedBytes over the phases / requests): healthz {healthAlloc / rounds / n / 1024:F1} KB, " +
                              $"recommendations {serveAlloc / rounds / n / 1024:F1} KB; garbage collection pauses per phase: healthz {healthPause / rounds * 1000:F0} ms, " +
                              $"recommendations {servePause / rounds * 1000:F0} ms; answer cache over the rounds: {hits:F0} hits, {misses:F0} misses " +
                              $"({(hits + misses > 0 ? hits / (hits + misses) : 0):P0} of product pages)");
        return serves.Sum(r => r.Failures) + (scaled?.Failures ?? 0) == 0 ? 0 : 1;
    }

    /// <summary>
    /// The phase's stalls: moments when at least half the requests in flight were held up together, seen as groups of requests
    /// over the phase's p99 that all finished within 5 ms of one another. Why count them: each holds up half or all of the
    /// requests in flight at once, so a few of them make a phase's p99 (1 % of 30,000 requests is five stalls of 64).
    /// </summary>
    private static string Stalls(LoadRunner.Result phase, int concurrency)
    {
        var slow = Enumerable.Range(0, phase.Latencies.Length).Where(i => phase.Latencies[i] > phase.P99Ms)
            .Select(i => phase.Starts[i] + phase.Latencies[i]).Order().ToArray();
        var groups = new List<int>();
        for (int i = 0, start = 0; i <= slow.Length; i++)
            if (i == slow.Length || (i > start && slow[i] - slow[i - 1] > 5))
            {
                if (i - start >= concurrency / 2) groups.Add(i - start);
                start = i;
            }
        return $"{groups.Count} holding {groups.Sum()} of the {slow.Length} requests over p99";
    }

    /// <summary>Two requests in three are product pages, the third a cart.</summary>
    private static bool IsProduct(int i) => i % 3 != 2;

    private static Dictionary<string, double> MedianCpu(List<Dictionary<string, double>> rounds) =>
        rounds[0].Keys.ToDictionary(k => k, k => rounds.Select(r => r[k]).Order().ElementAt(rounds.Count / 2));

    private static LoadRunner.Result Median(List<LoadRunner.Result> results) => results.OrderBy(r => r.PerSecond).ElementAt(results.Count / 2);
}
