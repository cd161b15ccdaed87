using System.Diagnostics;
using System.Net.Http.Headers;
using Npgsql;
using PluginApp.Shopify;

namespace LoadGen;

/// <summary>
/// Order risk off the webhook path: how long from sending a signed orders/create to its risk being recorded (risk_scores.scored_at,
/// the same machine's clock), first one order at a time on an idle app (the baseline), then under the ingest benchmark's load
/// (concurrency 32, every delivery sent twice, as Shopify delivers at least once).
/// </summary>
internal static class RiskLatencyBenchmark
{
    public static async Task<int> RunAsync(Args a)
    {
        var url = a.Get("url").TrimEnd('/');
        var secret = a.Get("secret");
        var n = a.GetInt("n", 10000);
        var idle = a.GetInt("idle", 100);
        var concurrency = a.GetInt("concurrency", 32);
        await using var db = NpgsqlDataSource.Create(a.Get("conn"));
        var shop = await IngestBenchmark.CreateShopAsync(db);

        var random = new Random(42);
        var total = idle + n;
        var orders = Enumerable.Range(0, total).Select(i => OrderBodies.Draw(random, 6_000_000_000L + i)).ToArray();
        var bodies = orders.AsParallel().AsOrdered().Select(OrderBodies.Body).ToArray();
        var hmacs = bodies.Select(b => ShopifySigner.Webhook(secret, b)).ToArray();
        var ids = Enumerable.Range(0, total).Select(_ => Guid.NewGuid().ToString()).ToArray();
        var sentAt = new DateTimeOffset[total];
        using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = concurrency }) { Timeout = TimeSpan.FromSeconds(30) };
        HttpRequestMessage Send(int i)
        {
            if (sentAt[i] == default) sentAt[i] = DateTimeOffset.UtcNow;
            return IngestBenchmark.Webhook(url, shop, "orders/create", bodies[i], hmacs[i], ids[i]);
        }
        static bool Ok(HttpResponseMessage r) => r.IsSuccessStatusCode;

        // Baseline: one order at a time, each waiting until it is scored.
        for (var i = 0; i < idle; i++)
        {
            using var response = await http.SendAsync(Send(i));
            if (!response.IsSuccessStatusCode) throw new InvalidOperationException($"orders/create answered {(int)response.StatusCode}");
            await WaitScoredAsync(db, shop, TimeSpan.FromSeconds(30));
        }

        // Under load: the rest at the ingest benchmark's concurrency, then all of them again (duplicates write nothing).
        var load = await LoadRunner.RunAsync(http, n, concurrency, i => Send(idle + i), Ok);
        var repeat = await LoadRunner.RunAsync(http, n, concurrency, i => Send(idle + i), Ok);
        var drained = Stopwatch.StartNew();
        await WaitScoredAsync(db, shop, TimeSpan.FromMinutes(15));

        var scoredAt = new Dictionary<long, DateTimeOffset>(total);
        await using (var cmd = db.CreateCommand("SELECT s.order_id, s.scored_at FROM risk_scores s JOIN shops h ON h.id = s.shop_id WHERE h.domain = $1"))
        {
            cmd.Parameters.AddWithValue(shop);
            await using var r = await cmd.ExecuteReaderAsync();
            while (await r.ReadAsync()) scoredAt[r.GetInt64(0)] = r.GetFieldValue<DateTimeOffset>(1);
        }
        double[] Latencies(int from, int count) => Enumerable.Range(from, count)
            .Where(i => scoredAt.ContainsKey(orders[i].Id)).Select(i => (scoredAt[orders[i].Id] - sentAt[i]).TotalMilliseconds).Order().ToArray();
        var baseline = Latencies(0, idle);
        var loaded = Latencies(idle, n);

        Console.WriteLine($"orders/create deliveries under load: {load}");
        Console.WriteLine($"repeated deliveries:                 {repeat}");
        Console.WriteLine($"scored: {scoredAt.Count} of {total}; the queue drained {drained.Elapsed.TotalSeconds:F1} s after the last delivery");
        Console.WriteLine($"baseline, idle app, one order at a time ({baseline.Length}): {Describe(baseline)}");
        Console.WriteLine($"under load ({loaded.Length}):                              {Describe(loaded)}");
        var p99 = Percentile(loaded, 0.99);
        Console.WriteLine($"webhook sent -> risk recorded p99 under load: {p99 / 1000:F2} s (aim 5 s: {(p99 <= 5000 ? "met" : "NOT met")}); " +
                          $"loaded/idle p99 = {p99 / Percentile(baseline, 0.99):F1}");
        return scoredAt.Count == total && load.Failures == 0 && repeat.Failures == 0 ? 0 : 1;
    }

    private static string Describe(double[] sorted) =>
        $"p50 {Percentile(sorted, 0.5):F0} ms, p99 {Percentile(sorted, 0.99):F0} ms, max {(sorted.Length > 0 ? sorted[^1] : 0):F0} ms";

    private static double Percentile(double[] sorted, double p) =>
        sorted.Length == 0 ? double.NaN : sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(p * sorted.Length) - 1)];

    private static async Task WaitScoredAsync(NpgsqlDataSource db, string shop, TimeSpan limit)
    {
        var deadline = Stopwatch.StartNew();
        await using var cmd = db.CreateCommand("SELECT count(*) FROM risk_pending p JOIN shops h ON h.id = p.shop_id WHERE h.domain = $1");
        cmd.Parameters.AddWithValue(shop);
        while ((long)(await cmd.ExecuteScalarAsync())! > 0)
        {
            if (deadline.Elapsed > limit) throw new TimeoutException($"orders still waiting to be scored after {limit}");
            await Task.Delay(20);
        }
    }
}
