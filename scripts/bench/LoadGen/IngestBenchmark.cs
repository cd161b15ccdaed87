using System.Net.Http.Headers;
using Npgsql;
using PluginApp.Shopify;

namespace LoadGen;

/// <summary>
/// N signed orders/create deliveries, each sent twice (Shopify delivers at least once), against the
/// running app; the ceiling is the same bodies posted to an endpoint that touches no database.
/// </summary>
internal static class IngestBenchmark
{
    public static async Task<int> RunAsync(Args a)
    {
        // Several app instances (comma-separated): requests go to each in turn, as a load balancer would spread them.
        var urls = a.Get("url").Split(',').Select(u => u.TrimEnd('/')).ToArray();
        string UrlOf(int i) => urls[i % urls.Length];
        var secret = a.Get("secret");
        var n = a.GetInt("n", 20000);
        var concurrency = a.GetInt("concurrency", 32);
        string shop;
        // Why a switch: to show what ingestion costs without the risk scoring every order queues (the merchant's own switch,
        // off with nothing in its place; the deliveries and their rows are written as ever).
        var riskOff = a.Values.GetValueOrDefault("risk") == "off";
        await using (var db = NpgsqlDataSource.Create(a.Get("conn"))) shop = await CreateShopAsync(db, riskOff);
        if (riskOff) Console.WriteLine("order risk: switched off for the measured shop and the warm-up's (nothing scored; the rows are written as ever)");
        if (a.GetInt("traffic", 0) is > 0 and var visitors)
        {
            await using var db = NpgsqlDataSource.Create(a.Get("conn"));
            Console.WriteLine(await SeedTrafficAsync(db, shop, visitors));
        }

        var random = new Random(42);
        // Why a range per run: several runs on one database each need orders of their own, or the replay check refuses
        // them as another shop's.
        var firstId = 5_000_000_000L + 10_000_000L * a.GetInt("run", 0);
        var addresses = a.GetInt("addresses", OrderBodies.ConcentratedAddresses);
        var orders = Enumerable.Range(0, n).Select(i => OrderBodies.Draw(random, firstId + i, addresses)).ToArray();
        // Why parallel: shaping 20,000 orders through JsonObject is the slow part of the start; the draws above stay sequential.
        var bodies = orders.AsParallel().AsOrdered().Select(OrderBodies.Body).ToArray();
        var hmacs = bodies.Select(b => ShopifySigner.Webhook(secret, b)).ToArray();
        var ids = Enumerable.Range(0, n).Select(_ => Guid.NewGuid().ToString()).ToArray();
        Console.WriteLine($"browser addresses: {orders.Select(o => o.Client!.BrowserIp).Distinct().Count()} among the {n} orders (drawn from {addresses})");
        Console.WriteLine($"bodies: {n}, mean {bodies.Average(b => b.Length) / 1024:F1} KB (min {bodies.Min(b => b.Length) / 1024.0:F1}, max {bodies.Max(b => b.Length) / 1024.0:F1}), concurrency {concurrency}");

        using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = concurrency, PooledConnectionLifetime = TimeSpan.FromMinutes(10) })
        { Timeout = TimeSpan.FromSeconds(30) };

        HttpRequestMessage Webhook(int i) => IngestBenchmark.Webhook(UrlOf(i), shop, "orders/create", bodies[i], hmacs[i], ids[i]);
        HttpRequestMessage Ceiling(int i)
        {
            var req = new HttpRequestMessage(HttpMethod.Post, UrlOf(i) + "/healthz") { Content = new ByteArrayContent(bodies[i]) };
            req.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
            return req;
        }
        static bool Ok(HttpResponseMessage r) => r.IsSuccessStatusCode;

        // The ingest path warmed too, as a running app is: deliveries of another shop, first, so the JIT's optimized code and
        // the batch's plans are there (unwarmed, a seventh of the machine went to compiling during the measured pass); then
        // the risk scoring they queued is let finish, so the measured pass competes only with its own.
        // With the operators' token (metrics on), phases of it go on until the JIT's compilation time in a phase is under 1 % of
        // the phase (at most ten), as in the serving benchmark: one phase of 3,000 left the JIT a tenth to a fifth of the
        // machine in the measured pass.
        var warmApp = a.GetInt("warm-app", Math.Min(n, 3000));
        var token = a.Values.GetValueOrDefault("token");
        if (warmApp > 0)
        {
            string warmShop;
            await using (var db = NpgsqlDataSource.Create(a.Get("conn"))) warmShop = await CreateShopAsync(db, riskOff);
            for (var phase = 1; ; phase++)
            {
                var warmOrders = Enumerable.Range(0, warmApp)
                    .Select(i => OrderBodies.Body(OrderBodies.Draw(random, firstId + 5_000_000 + (phase - 1) * warmApp + i, addresses))).ToArray();
                var warmHmacs = warmOrders.Select(b => ShopifySigner.Webhook(secret, b)).ToArray();
                Metrics? before = token is null ? null : await Metrics.ReadAsync(http, UrlOf(0), token);
                var warmed = await LoadRunner.RunAsync(http, warmApp, concurrency,
                    i => IngestBenchmark.Webhook(UrlOf(i), warmShop, "orders/create", warmOrders[i], warmHmacs[i], Guid.NewGuid().ToString()), Ok);
                var settled = await SettleAsync(a.Get("conn"), TimeSpan.FromSeconds(120));
                var jit = token is null ? double.NaN
                    : (await Metrics.ReadAsync(http, UrlOf(0), token)).Sum("dotnet_jit_compilation_time") - before!.Sum("dotnet_jit_compilation_time");
                // Why the phase's time with its risk scoring: the scoring's code is compiled in that time too.
                Console.WriteLine($"app warm-up phase {phase}: {warmApp} deliveries of another shop ({warmed.PerSecond:F0}/s, {warmed.Failures} failed); " +
                                  $"its risk scoring {(settled ? "finished" : "still running after 120 s")}" +
                                  (token is null ? "" : $"; JIT compiling {jit * 1000:F0} ms"));
                if (token is null || jit < 0.01 * warmed.Seconds || phase == 10) break;
            }
        }
        // Warm-up: connections, and long enough for the JIT's optimized code (a short one measured the ceiling half-compiled).
        await LoadRunner.RunAsync(http, Math.Max(n, 10000), concurrency, i => Ceiling(i % n), Ok);
        // Why at least 20,000: at 20,000 a second or more, a pass of a few thousand lasted a fraction of a second, and its figure
        // swung with a moment's noise.
        Metrics? ceilingBefore = token is null ? null : await Metrics.ReadAsync(http, UrlOf(0), token);
        var ceiling = await LoadRunner.RunAsync(http, Math.Max(n, 20000), concurrency, i => Ceiling(i % n), Ok);
        Metrics? jitBefore = token is null ? null : await Metrics.ReadAsync(http, UrlOf(0), token);
        var cpu = ProcessCpu.Start();
        var passStarted = System.Diagnostics.Stopwatch.StartNew();
        var first = await LoadRunner.RunAsync(http, n, concurrency, Webhook, Ok);
        // Each first delivery's start and latency (ms after the phase began), for looking at when the slow ones happen.
        if (Environment.GetEnvironmentVariable("INGEST_LATENCY_DUMP") is { } dump)
            File.WriteAllLines(dump, Enumerable.Range(0, n).Select(i => FormattableString.Invariant($"{first.Starts[i]:F2} {first.Latencies[i]:F2}"))
                .Prepend(FormattableString.Invariant($"# began {first.Began.ToUnixTimeMilliseconds()}")));
        // The work the deliveries queued (risk scores) is part of their cost: counted until it is done.
        await SettleAsync(a.Get("conn"), TimeSpan.FromSeconds(120));
        var firstCpu = cpu.Seconds();
        var passSeconds = passStarted.Elapsed.TotalSeconds;
        // Why: whether the measured pass still paid for compiling (the warm-up stops after ten phases whatever the JIT does).
        if (token is not null)
        {
            var after = await Metrics.ReadAsync(http, UrlOf(0), token);
            var jitPass = after.Sum("dotnet_jit_compilation_time") - jitBefore!.Sum("dotnet_jit_compilation_time");
            Console.WriteLine(string.Create(System.Globalization.CultureInfo.InvariantCulture,
                $"JIT compiling during the measured pass and its risk scoring: {jitPass * 1000:F0} ms of its {passSeconds:F1} s"));
            // Why: the app's share of a delivery's cost, in the figure the serving benchmark prints too (first instance only).
            const string allocated = "dotnet_gc_heap_total_allocated";
            var perCeiling = (jitBefore.Sum(allocated) - ceilingBefore!.Sum(allocated)) / (Math.Max(n, 20000) / (double)urls.Length);
            var perFirst = (after.Sum(allocated) - jitBefore.Sum(allocated)) / (n / (double)urls.Length);
            Console.WriteLine(string.Create(System.Globalization.CultureInfo.InvariantCulture,
                $"allocated by the app per request: POST /healthz {perCeiling / 1024:F1} KB, first delivery with its risk scoring {perFirst / 1024:F1} KB"));
        }
        var repeat = await LoadRunner.RunAsync(http, n, concurrency, Webhook, Ok);

        long stored, commits;
        await using (var db = NpgsqlDataSource.Create(a.Get("conn")))
        {
            // What the scoring made of the orders: a store's flagged share is a few in a hundred.
            await using (var cmd = db.CreateCommand("""
                SELECT string_agg(level || ' ' || n, ', ' ORDER BY level DESC) FROM (
                    SELECT r.level, count(*) AS n FROM risk_scores r JOIN shops s ON s.id = r.shop_id WHERE s.domain = $1 GROUP BY r.level) x
                """))
            {
                cmd.Parameters.AddWithValue(shop);
                Console.WriteLine($"risk levels of the measured orders: {await cmd.ExecuteScalarAsync() as string ?? "none scored"}");
            }
            await using (var cmd = db.CreateCommand("SELECT count(*) FROM orders o JOIN shops s ON s.id = o.shop_id WHERE s.domain = $1"))
            {
                cmd.Parameters.AddWithValue(shop);
                stored = (long)(await cmd.ExecuteScalarAsync())!;
            }
            // Group commit: the deliveries one transaction wrote share its id (xmin).
            await using (var cmd = db.CreateCommand("SELECT count(DISTINCT xmin::text) FROM webhook_deliveries WHERE shop_domain = $1"))
            {
                cmd.Parameters.AddWithValue(shop);
                commits = (long)(await cmd.ExecuteScalarAsync())!;
            }
        }

        var combinedRate = 2.0 * n / (first.Seconds + repeat.Seconds);
        Console.WriteLine($"ceiling (POST /healthz, no database): {ceiling}");
        Console.WriteLine($"ingest, first delivery:               {first}");
        Console.WriteLine($"ingest, repeated delivery:            {repeat}");
        Console.WriteLine($"ingest overall: {combinedRate:F0} webhooks/s; ingest/ceiling = {combinedRate / ceiling.PerSecond:F2}; " +
                          $"first-delivery/ceiling = {first.PerSecond / ceiling.PerSecond:F2}");
        // Work done from the first delivery until the risk scoring they queued was done, per delivery.
        Console.WriteLine(string.Create(System.Globalization.CultureInfo.InvariantCulture,
            $"CPU per first delivery: {1000 * (firstCpu["app"] + firstCpu["postgres"]) / n:F2} ms (app {1000 * firstCpu["app"] / n:F2}, PostgreSQL {1000 * firstCpu["postgres"] / n:F2}; machine has {Environment.ProcessorCount} cores)"));
        Console.WriteLine($"first deliveries per commit: {(double)n / Math.Max(1, commits):F1} ({commits} transactions wrote the {n} deliveries)");
        Console.WriteLine($"orders stored: {stored} (expected {n}) {(stored == n ? "OK" : "MISMATCH")}");
        // One line per run for the script's summary table.
        Console.WriteLine(string.Create(System.Globalization.CultureInfo.InvariantCulture,
            $"RESULT|{a.Values.GetValueOrDefault("label", "")}|{ceiling.PerSecond:F0}|{first.PerSecond:F0}|{first.P50Ms:F1}|{first.P99Ms:F1}|{repeat.PerSecond:F0}|{(double)n / Math.Max(1, commits):F1}|{first.PerSecond / ceiling.PerSecond:F2}|{first.Failures + repeat.Failures}|{stored == n}|{1000 * (firstCpu["app"] + firstCpu["postgres"]) / n:F2}"));
        return stored == n && first.Failures == 0 && repeat.Failures == 0 ? 0 : 1;
    }

    /// <summary>Waits until no order waits for its risk score (the background work ingestion queues), or the time is up.</summary>
    private static async Task<bool> SettleAsync(string conn, TimeSpan limit)
    {
        await using var db = NpgsqlDataSource.Create(conn);
        var until = DateTime.UtcNow + limit;
        while (DateTime.UtcNow < until)
        {
            await using var cmd = db.CreateCommand("SELECT NOT EXISTS (SELECT 1 FROM risk_pending)");
            if ((bool)(await cmd.ExecuteScalarAsync())!) return true;
            await Task.Delay(500);
        }
        return false;
    }

    /// <summary>A fresh installed shop (no access token: nothing is sent to Shopify); with <paramref name="riskOff"/>, its
    /// order risk switched off as its merchant would, showing nothing.</summary>
    public static async Task<string> CreateShopAsync(NpgsqlDataSource db, bool riskOff = false)
    {
        var shop = $"bench-{DateTime.UtcNow:HHmmss}-{Random.Shared.Next(1000, 9999)}.myshopify.com";
        await using var cmd = db.CreateCommand("""
            WITH s AS (INSERT INTO shops (domain, installed_at, scopes) VALUES ($1, now(), 'read_orders') RETURNING id)
            INSERT INTO ai_feature_switches (shop_id, feature, enabled, when_off, updated_at, updated_by)
            SELECT id, 'order-risk', false, 'nothing', now(), 'benchmark' FROM s WHERE $2
            """);
        cmd.Parameters.AddWithValue(shop);
        cmd.Parameters.AddWithValue(riskOff);
        await cmd.ExecuteNonQueryAsync();
        return shop;
    }

    /// <summary>
    /// The measured shop as a store in season: <paramref name="visitors"/> visitors (a fifth of them the orders' customers)
    /// exposed to its two experiments, and five recommendation impressions a visitor spread over the catalog, all in the
    /// weeks of the orders; then ANALYZE, as autovacuum would have. An order's experiment and attribution steps should read
    /// only its own shopper's rows (before 4 Dec 2026 they read every exposure, and every impression of the line's product).
    /// </summary>
    private static async Task<string> SeedTrafficAsync(NpgsqlDataSource db, string shop, int visitors)
    {
        var started = System.Diagnostics.Stopwatch.StartNew();
        await using (var cmd = db.CreateCommand("""
            WITH s AS (SELECT id FROM shops WHERE domain = $1)
            INSERT INTO experiment_exposures (shop_id, experiment, unit, arm, customer_id, first_at)
            SELECT s.id, e.key, CASE WHEN i % 5 = 0 THEN 'c:' || (900000 + i % 50000) ELSE 'v:' || md5(i::text) END,
                   CASE WHEN i % 10 = 0 THEN e.control ELSE e.treatment END, CASE WHEN i % 5 = 0 THEN 900000 + i % 50000 END,
                   timestamptz '2026-06-15T00:00:00Z' + interval '1 second' * (i % 3888000)
            FROM s, generate_series(1, $2) i, (VALUES ('upsells', 'holdout', 'model'), ('cart-offers', 'control', 'policy')) e(key, control, treatment)
            ON CONFLICT DO NOTHING
            """))
        {
            cmd.Parameters.AddWithValue(shop);
            cmd.Parameters.AddWithValue(visitors);
            cmd.CommandTimeout = 600;
            await cmd.ExecuteNonQueryAsync();
        }
        await using (var cmd = db.CreateCommand("""
            WITH s AS (SELECT id FROM shops WHERE domain = $1)
            INSERT INTO recommendation_events (shop_id, event_type, request_id, visitor_hash, customer_id, product_id, occurred_at)
            SELECT s.id, 'impression', 'seed-' || i, md5((i % $2)::text), CASE WHEN i % 10 = 0 THEN 900000 + i % 50000 END, 7000 + i % 400,
                   timestamptz '2026-06-24T00:00:00Z' + interval '1 second' * (i % 3196800)
            FROM s, generate_series(1, $2 * 5) i
            """))
        {
            cmd.Parameters.AddWithValue(shop);
            cmd.Parameters.AddWithValue(visitors);
            cmd.CommandTimeout = 600;
            await cmd.ExecuteNonQueryAsync();
        }
        await using (var cmd = db.CreateCommand("ANALYZE experiment_exposures; ANALYZE recommendation_events")) await cmd.ExecuteNonQueryAsync();
        return string.Create(System.Globalization.CultureInfo.InvariantCulture,
            $"traffic: {visitors} visitors in two experiments and {5L * visitors} recommendation impressions for the measured shop ({started.Elapsed.TotalSeconds:F0} s)");
    }

    /// <summary>One signed delivery as Shopify sends it.</summary>
    public static HttpRequestMessage Webhook(string url, string shop, string topic, byte[] body, string hmac, string webhookId)
    {
        var req = new HttpRequestMessage(HttpMethod.Post, url + "/webhooks") { Content = new ByteArrayContent(body) };
        req.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        req.Headers.Add("X-Shopify-Topic", topic);
        req.Headers.Add("X-Shopify-Shop-Domain", shop);
        req.Headers.Add("X-Shopify-Webhook-Id", webhookId);
        req.Headers.Add("X-Shopify-API-Version", ShopifyApiVersion.Pinned);
        req.Headers.Add("X-Shopify-Hmac-Sha256", hmac);
        return req;
    }
}
