using System.Diagnostics;
using System.Text.Json;
using Npgsql;
using PluginApp.Shopify;

namespace LoadGen;

/// <summary>
/// The crash test of webhook ingestion, in two phases around a SIGKILL of the app (scripts/bench/crash.sh):
/// "load" sends N signed orders/create deliveries at a fixed concurrency and kills the app once a share of them has been
/// acknowledged, noting which got a 200; "resend", after the app is started again, checks that every acknowledged delivery
/// is stored, sends again every delivery that was not acknowledged (as Shopify would), and checks that each delivery and
/// each order is stored exactly once with all its lines.
/// </summary>
internal static class CrashTest
{
    private sealed record State(string Shop, int N, int Seed, string RunId, int[] Acknowledged);

    public static async Task<int> RunAsync(Args a)
    {
        var url = a.Get("url").TrimEnd('/');
        var secret = a.Get("secret");
        var statePath = a.Get("state");
        var concurrency = a.GetInt("concurrency", 32);
        using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = concurrency }) { Timeout = TimeSpan.FromSeconds(30) };
        await using var db = NpgsqlDataSource.Create(a.Get("conn"));

        if (a.Get("phase") == "load")
        {
            var n = a.GetInt("n", 5000);
            var state = new State(await IngestBenchmark.CreateShopAsync(db), n, 7, Guid.NewGuid().ToString("N")[..8], []);
            var deliveries = Build(state, secret);
            var killAfter = a.GetInt("kill-after", n / 3);
            var app = Process.GetProcessById(a.GetInt("kill-pid", 0));
            var acknowledged = new bool[n];
            var acks = 0;
            var killed = 0;
            var next = -1;
            var clock = Stopwatch.StartNew();
            await Task.WhenAll(Enumerable.Range(0, concurrency).Select(async _ =>
            {
                int i;
                while ((i = Interlocked.Increment(ref next)) < n)
                {
                    try
                    {
                        using var response = await http.SendAsync(deliveries[i].Request(url, state.Shop));
                        if (response.IsSuccessStatusCode) acknowledged[i] = true;
                    }
                    catch (HttpRequestException) { }
                    catch (TaskCanceledException) { }
                    // Why SIGKILL from here: the app dies with requests in flight, mid-batch, no shutdown code run.
                    if (acknowledged[i] && Interlocked.Increment(ref acks) == killAfter && Interlocked.Exchange(ref killed, 1) == 0)
                    {
                        app.Kill();
                        Console.WriteLine($"killed the app (pid {app.Id}, SIGKILL) after {killAfter} acknowledged deliveries, {clock.Elapsed.TotalSeconds:F1} s into the load");
                    }
                }
            }));
            var acked = Enumerable.Range(0, n).Where(i => acknowledged[i]).ToArray();
            await File.WriteAllTextAsync(statePath, JsonSerializer.Serialize(state with { Acknowledged = acked }));
            Console.WriteLine($"sent {n}; acknowledged with 200: {acked.Length}; not acknowledged: {n - acked.Length}");
            return killed == 1 ? 0 : 1;
        }
        else
        {
            var state = JsonSerializer.Deserialize<State>(await File.ReadAllTextAsync(statePath))!;
            var deliveries = Build(state, secret);
            var ids = deliveries.Select(d => d.Id).ToArray();
            var acked = state.Acknowledged.ToHashSet();

            // Before anything is sent again: every acknowledged delivery must already be stored, with its order.
            var storedAfterCrash = await StoredAsync(db, state.Shop);
            var lost = state.Acknowledged.Count(i => !storedAfterCrash.Contains(ids[i]));
            var storedNotAcked = Enumerable.Range(0, state.N).Count(i => !acked.Contains(i) && storedAfterCrash.Contains(ids[i]));
            Console.WriteLine($"after the restart: stored {storedAfterCrash.Count}; acknowledged but lost: {lost}; " +
                              $"stored but never acknowledged (the kill came before their answer): {storedNotAcked}");

            var resend = Enumerable.Range(0, state.N).Where(i => !acked.Contains(i)).ToArray();
            var failed = 0;
            var next = -1;
            await Task.WhenAll(Enumerable.Range(0, concurrency).Select(async _ =>
            {
                int k;
                while ((k = Interlocked.Increment(ref next)) < resend.Length)
                {
                    using var response = await http.SendAsync(deliveries[resend[k]].Request(url, state.Shop));
                    if (!response.IsSuccessStatusCode) Interlocked.Increment(ref failed);
                }
            }));
            Console.WriteLine($"re-sent the {resend.Length} deliveries not acknowledged; not answered 200: {failed}");

            var counts = await CountsAsync(db, state.Shop);
            var expectedLines = deliveries.Sum(d => d.Lines);
            Console.WriteLine($"deliveries stored: {counts.Deliveries} (distinct ids {counts.DistinctDeliveries}, expected {state.N})");
            Console.WriteLine($"orders stored: {counts.Orders} (distinct ids {counts.DistinctOrders}, expected {state.N}); " +
                              $"order lines: {counts.Lines} (expected {expectedLines}); orders queued or scored for risk (a step in the same transaction): {counts.RiskQueued}");
            var ok = lost == 0 && failed == 0 && counts.Deliveries == state.N && counts.DistinctDeliveries == state.N
                     && counts.Orders == state.N && counts.DistinctOrders == state.N && counts.Lines == expectedLines && counts.RiskQueued == state.N;
            Console.WriteLine(ok ? "CRASH TEST OK: nothing acknowledged was lost, nothing stored twice"
                                 : "CRASH TEST FAILED");
            return ok ? 0 : 1;
        }
    }

    private sealed record Delivery(string Id, byte[] Body, string Hmac, int Lines)
    {
        public HttpRequestMessage Request(string url, string shop) => IngestBenchmark.Webhook(url, shop, "orders/create", Body, Hmac, Id);
    }

    /// <summary>The same N deliveries in both phases: the draws come from the state's seed, the ids from its run id.</summary>
    private static Delivery[] Build(State s, string secret)
    {
        var random = new Random(s.Seed);
        return Enumerable.Range(0, s.N).Select(i =>
        {
            var order = OrderBodies.Draw(random, 6_000_000_000L + i);
            var body = OrderBodies.Body(order);
            return new Delivery($"crash-{s.RunId}-{i}", body, ShopifySigner.Webhook(secret, body), order.Lines.Select(l => l.Id).Distinct().Count());
        }).ToArray();
    }

    private static async Task<HashSet<string>> StoredAsync(NpgsqlDataSource db, string shop)
    {
        // A delivery counts as stored only with its order: the raw delivery and its rows commit together.
        await using var cmd = db.CreateCommand("""
            SELECT d.delivery_id FROM webhook_deliveries d
            JOIN orders o ON o.shop_id = d.shop_id AND o.id = (d.body->>'id')::bigint
            WHERE d.shop_domain = $1 AND d.outcome = 'normalized'
            """);
        cmd.Parameters.AddWithValue(shop);
        var stored = new HashSet<string>();
        await using var reader = await cmd.ExecuteReaderAsync();
        while (await reader.ReadAsync()) stored.Add(reader.GetString(0));
        return stored;
    }

    private sealed record Counts(long Deliveries, long DistinctDeliveries, long Orders, long DistinctOrders, long Lines, long RiskQueued);

    private static async Task<Counts> CountsAsync(NpgsqlDataSource db, string shop)
    {
        await using var cmd = db.CreateCommand("""
            WITH s AS (SELECT id FROM shops WHERE domain = $1)
            SELECT (SELECT count(*) FROM webhook_deliveries WHERE shop_domain = $1),
                   (SELECT count(DISTINCT delivery_id) FROM webhook_deliveries WHERE shop_domain = $1),
                   (SELECT count(*) FROM orders WHERE shop_id = (SELECT id FROM s)),
                   (SELECT count(DISTINCT id) FROM orders WHERE shop_id = (SELECT id FROM s)),
                   (SELECT count(*) FROM order_lines WHERE shop_id = (SELECT id FROM s)),
                   (SELECT count(DISTINCT order_id) FROM (SELECT order_id FROM risk_pending WHERE shop_id = (SELECT id FROM s)
                                                          UNION ALL SELECT order_id FROM risk_scores WHERE shop_id = (SELECT id FROM s)) r)
            """);
        cmd.Parameters.AddWithValue(shop);
        await using var reader = await cmd.ExecuteReaderAsync();
        await reader.ReadAsync();
        return new Counts(reader.GetInt64(0), reader.GetInt64(1), reader.GetInt64(2), reader.GetInt64(3), reader.GetInt64(4), reader.GetInt64(5));
    }
}
