using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;
using PluginApp.Training;
using PluginApp.Recommendations;
using Hangfire.Storage;
using PluginApp.Tests.Infrastructure;

namespace PluginApp.Tests.Recommendations;

public sealed class RegistryTests(AppFixture app) : IClassFixture<AppFixture>
{
    /// <summary>
    /// A cart that became a known customer's order is read as hers, so that a held-out evaluation leaving out her order
    /// leaves out its cart too; a cart no customer's order came from stays a basket of its own.
    /// </summary>
    [Fact]
    public async Task Signals_ACartThatBecameACustomersOrder_AreHers()
    {
        const string shop = "signals-carts.myshopify.com";
        var shopId = await app.InstallShopAsync(shop);
        Assert.Equal(HttpStatusCode.OK, (await app.SendWebhookAsync("orders/create", shop, ShopifyPayloads.Order(7_400_001, customerId: 7_400_101).ToJsonString())).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await app.SendWebhookAsync("carts/create", shop, ShopifyPayloads.Cart("cart7400001", lines: [(1110, 2)]).ToJsonString())).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await app.SendWebhookAsync("carts/create", shop, ShopifyPayloads.Cart("cart-guest-7400", lines: [(1120, 1)]).ToJsonString())).StatusCode);

        var carts = (await app.Factory.Services.GetRequiredService<SignalStore>().LoadAsync(shopId, TimeSpan.FromDays(365), CancellationToken.None))
            .Where(s => s.ProductId is 111 or 112).Select(s => (s.UserKey, s.ProductId)).OrderBy(s => s.ProductId).ToList();

        Assert.Equal([("c:7400101", 111L), ("k:cart-guest-7400", 112L)], carts);
    }

    /// <summary>
    /// A store that moved to Shopify imported its history: each order created on the import's day, its real date as
    /// processed_at. The recommender reads each order's signal at its real date, so its held-out time split has a history to
    /// split (until 7 Dec 2026 every imported order fell on the import's day).
    /// </summary>
    [Fact]
    public async Task Signals_OfOrdersImportedFromAnotherPlatform_AreDatedByWhenTheyWereProcessed()
    {
        var shopId = await app.InstallShopAsync("signals-migrated.myshopify.com");
        var now = app.Clock.GetUtcNow();
        var placed = new[] { now.AddDays(-300), now.AddDays(-200), now.AddDays(-100) };
        for (var i = 0; i < placed.Length; i++)
        {
            await app.CountAsync("""
                INSERT INTO orders (shop_id, id, name, customer_id, currency, total_price, created_at, updated_at, processed_at)
                VALUES ($1, $2, 'n', 7410101, 'USD', 10, $3, $3, $4)
                """, shopId, 7_410_001L + i, now.AddDays(-1).AddMinutes(i), placed[i]);
            await app.CountAsync("INSERT INTO order_lines (shop_id, id, order_id, product_id, quantity) VALUES ($1, $2, $3, 741, 1)", shopId, 7_410_101L + i, 7_410_001L + i);
        }

        var signals = await app.Factory.Services.GetRequiredService<SignalStore>().LoadAsync(shopId, TimeSpan.FromDays(150), CancellationToken.None);

        // Within 150 days of the newest order's date (100 days ago): the orders of 200 and 100 days ago.
        Assert.Equal(placed[1..].Select(p => p.UtcTicks / TimeSpan.TicksPerSecond), signals.Select(s => s.At.UtcTicks / TimeSpan.TicksPerSecond).Order());
    }

    /// <summary>
    /// A held-out evaluation trains on each order line as it stood at its cutoff: 20 customers bought product 751 two months
    /// ago and returned it within the weeks held out; each bought 752 and returned it the next day; each bought 753 in the
    /// weeks held out. The training part has 751 as bought, not 752, and what is held out is 753. Until 7 Dec 2026 every
    /// refund was taken off at load, and the evaluation trained with the returns of the weeks it measured already known.
    /// </summary>
    [Fact]
    public async Task Signals_TrainTheEvaluationWithTheRefundsKnownAtItsCutoff_NotThoseAfter()
    {
        var shopId = await app.InstallShopAsync("signals-refunds.myshopify.com");
        var newest = app.Clock.GetUtcNow().AddDays(-1);
        await app.CountAsync("""
            INSERT INTO orders (shop_id, id, name, customer_id, currency, total_price, created_at, updated_at, processed_at)
            SELECT $1, 7420000 + i * 2 + k, 'n', 7421000 + i, 'USD', 10, t, t, t
            FROM generate_series(0, 19) i, generate_series(0, 1) k,
                 LATERAL (SELECT CASE WHEN k = 0 THEN $2 - interval '60 days' + interval '1 hour' * i ELSE $2 - interval '1 hour' * i END AS t) x
            """, shopId, newest);
        await app.CountAsync("""
            INSERT INTO order_lines (shop_id, id, order_id, product_id, quantity)
            SELECT $1, 7430000 + i * 3 + p, 7420000 + i * 2 + CASE WHEN p = 2 THEN 1 ELSE 0 END, 751 + p, 1 FROM generate_series(0, 19) i, generate_series(0, 2) p
            """, shopId);
        // 751 refunded in the held-out weeks (5 days ago), 752 the day after it was bought.
        await app.CountAsync("""
            INSERT INTO refunds (shop_id, id, order_id, amount, created_at, processed_at)
            SELECT $1, 7440000 + i * 2 + p, 7420000 + i * 2, 10, t, t
            FROM generate_series(0, 19) i, generate_series(0, 1) p,
                 LATERAL (SELECT CASE WHEN p = 0 THEN $2 - interval '5 days' ELSE $2 - interval '59 days' END AS t) x
            """, shopId, newest);
        await app.CountAsync("""
            INSERT INTO refund_lines (shop_id, refund_id, order_id, line_item_id, quantity)
            SELECT $1, 7440000 + i * 2 + p, 7420000 + i * 2, 7430000 + i * 3 + p, 1 FROM generate_series(0, 19) i, generate_series(0, 1) p
            """, shopId);

        var signals = await app.Factory.Services.GetRequiredService<SignalStore>().LoadAsync(shopId, TimeSpan.FromDays(365), CancellationToken.None);
        var (train, test, _, _) = RecommenderTraining.Split(signals);

        Assert.Equal(20, train.Count(s => s.ProductId == 751 && s.Quantity == 1));
        Assert.DoesNotContain(train, s => s.ProductId == 752);
        Assert.Equal(20, test.Count);
        Assert.All(test.Values, bought => Assert.Equal([753L], bought));
    }

    /// <summary>
    /// The Upsells page lists the recommender's runs however many runs of other kinds came after them (retrainings on new
    /// orders, skips). Until 6 Dec 2026 it filtered the shop's 50 latest runs of every kind, and said "No training has run
    /// yet" once other kinds had filled them.
    /// </summary>
    [Fact]
    public async Task UpsellsPage_ListsTheRecommendersRuns_AfterManyRunsOfOtherKinds()
    {
        const string shop = "runs-of-a-kind.myshopify.com";
        var shopId = await app.InstallShopAsync(shop);
        await app.CountAsync("""
            INSERT INTO training_runs (shop_id, kind, trigger, state, started_at, finished_at, error)
            VALUES ($1, 'recommender', 'nightly', 'failed', now() - interval '2 hours', now() - interval '2 hours', 'the recommender run''s own error')
            """, shopId);
        await app.CountAsync("""
            INSERT INTO training_runs (shop_id, kind, trigger, state, started_at, finished_at, error)
            SELECT $1, 'risk', 'new_orders', 'skipped', now() - interval '1 hour', now() - interval '1 hour', 'not enough data yet' FROM generate_series(1, 60)
            """, shopId);

        var page = await (await app.Client.GetAsync($"/admin/upsells?shop={shop}&embedded=1&id_token={app.SessionToken(shop)}")).Content.ReadAsStringAsync();

        Assert.DoesNotContain("No training has run yet", page);
        Assert.Contains("the recommender run&#x27;s own error", page);
    }

    [Fact]
    public async Task PromotionGate_KeepsAWorseCandidateOut_AndRollbackRestoresThePreviousVersion()
    {
        var seed = new StoreSeed(app, "registry-gate.myshopify.com");
        await seed.SeedAsync();
        Assert.Equal((1, true), await seed.TrainAsync());
        Assert.Equal((2, true), await seed.TrainAsync()); // same data, same seed: not worse, so it replaces v1

        // Make the active model look better than anything new can be.
        await app.ScalarAsync("UPDATE models SET metrics = jsonb_set(metrics, '{ServedNdcgAt10}', '1.5') WHERE shop_id = $1 AND version = 2", seed.ShopId);
        var (version, activated) = await seed.TrainAsync();

        Assert.Equal(3, version);
        Assert.False(activated);
        Assert.Equal("candidate", await app.ScalarAsync("SELECT status FROM models WHERE shop_id = $1 AND version = 3", seed.ShopId));
        Assert.Contains("worse", (string)(await app.ScalarAsync("SELECT status_reason FROM models WHERE shop_id = $1 AND version = 3", seed.ShopId))!);
        Assert.Equal(2, (await seed.RecommendAsync($"placement=product&product_id=101&visitor_id={seed.VisitorIn("model", "v-gate")}")).GetProperty("model_version").GetInt32());

        HttpRequestMessage Rollback(string query)
        {
            var request = new HttpRequestMessage(HttpMethod.Post, "/api/admin/models/rollback" + query);
            request.Headers.Authorization = app.AdminGet("/", seed.Shop).Headers.Authorization;
            return request;
        }
        // Which model is rolled back is never guessed: without a kind nothing changes.
        var unnamed = await app.Client.SendAsync(Rollback(""));
        Assert.Equal(HttpStatusCode.BadRequest, unnamed.StatusCode);
        Assert.Contains("recommender", (await unnamed.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("detail").GetString());
        Assert.Equal("active", await app.ScalarAsync("SELECT status FROM models WHERE shop_id = $1 AND version = 2", seed.ShopId));

        var response = await app.Client.SendAsync(Rollback("?kind=recommender"));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(1, (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("activeVersion").GetInt32());
        Assert.Equal("active", await app.ScalarAsync("SELECT status FROM models WHERE shop_id = $1 AND version = 1", seed.ShopId));
        // The Governance page's history says it, and who (until 5 Dec 2026 only the model's status did).
        var by = (string)(await app.ScalarAsync("SELECT by_whom FROM governance_events WHERE shop_id = $1 AND event = 'rolled_back'", seed.ShopId))!;
        Assert.StartsWith("staff user ", by);
        Assert.Equal($"version 1 serves again, rolled back from version 2 by {by}",
            await app.ScalarAsync("SELECT detail FROM governance_events WHERE shop_id = $1 AND event = 'rolled_back'", seed.ShopId));
        Assert.Equal(1, (await seed.RecommendAsync($"placement=product&product_id=101&visitor_id={seed.VisitorIn("model", "v-gate")}")).GetProperty("model_version").GetInt32());
        var models = await app.Client.SendAsync(app.AdminGet("/api/admin/models", seed.Shop));
        Assert.Contains("\"RecallAt10\"", await models.Content.ReadAsStringAsync());

        // Promoted again by the merchant: the history says that too.
        var promote = new HttpRequestMessage(HttpMethod.Post, "/api/admin/models/promote?kind=recommender&version=2");
        promote.Headers.Authorization = app.AdminGet("/", seed.Shop).Headers.Authorization;
        Assert.Equal(HttpStatusCode.OK, (await app.Client.SendAsync(promote)).StatusCode);
        Assert.StartsWith($"version 2 serves everyone; promoted by {by}: held-out NDCG@10 1.5000",
            (string)(await app.ScalarAsync("SELECT detail FROM governance_events WHERE shop_id = $1 AND event = 'promoted'", seed.ShopId))!);
    }

    /// <summary>
    /// Rolled back twice, versions 1, 2 and 3 go back to 2 and then to 1, and a third rollback has nothing earlier to go to.
    /// Until 6 Dec 2026 the second rollback took the most recently activated retired version, 3, the one just rolled back
    /// from (the operator's runbook rolls back for a doubled fallback share).
    /// </summary>
    [Fact]
    public async Task Rollback_Twice_GoesBackTwoVersions_NotToTheVersionJustRolledBackFrom()
    {
        var seed = new StoreSeed(app, "registry-rollback-twice.myshopify.com");
        await seed.SeedAsync();
        for (var v = 1; v <= 3; v++) Assert.Equal((v, true), await seed.TrainAsync());
        var registry = app.Factory.Services.GetRequiredService<ModelRegistry>();

        async Task<bool> OfferedAsync() => (await (await app.Client.GetAsync($"/admin/upsells?shop={seed.Shop}&embedded=1&id_token={app.SessionToken(seed.Shop)}"))
            .Content.ReadAsStringAsync()).Contains("models/rollback?kind=recommender", StringComparison.Ordinal);

        Assert.Equal(2, await registry.RollbackAsync(seed.ShopId, "recommender", CancellationToken.None));
        Assert.True(await OfferedAsync());
        Assert.Equal(1, await registry.RollbackAsync(seed.ShopId, "recommender", CancellationToken.None));
        Assert.False(await OfferedAsync()); // the page offers no rollback that would be refused
        Assert.Null(await registry.RollbackAsync(seed.ShopId, "recommender", CancellationToken.None));

        Assert.Equal(1, await app.ScalarAsync("SELECT version FROM models WHERE shop_id = $1 AND kind = 'recommender' AND status = 'active'", seed.ShopId));
    }

    [Fact]
    public async Task PromotionGate_AVersionFromBeforeCandidates_IsReplacedByTheFirstVersionThatComparesThem()
    {
        var seed = new StoreSeed(app, "registry-candidates.myshopify.com");
        await seed.SeedAsync();
        Assert.Equal((1, true), await seed.TrainAsync());
        // What versions stored before candidates were compared: ALS's figures, and no served candidate's NDCG@10 to compare with.
        await app.ScalarAsync("""
            UPDATE models SET metrics = (metrics - 'ServedNdcgAt10') || '{"NdcgAt10": 1.5, "RecallAt10": 1.5}'::jsonb WHERE shop_id = $1 AND version = 1
            """, seed.ShopId);

        var (version, activated) = await seed.TrainAsync();

        Assert.Equal((2, true), (version, activated));
        Assert.Equal("active", await app.ScalarAsync("SELECT status FROM models WHERE shop_id = $1 AND version = 2", seed.ShopId));
        Assert.Equal("blend", await app.ScalarAsync("SELECT metrics->>'Winner' FROM models WHERE shop_id = $1 AND version = 2", seed.ShopId));
    }

    [Fact]
    public async Task SecondInstance_ServesTheNewVersionSecondsAfterPromotion()
    {
        var seed = new StoreSeed(app, "registry-two.myshopify.com");
        await seed.SeedAsync();
        await seed.TrainAsync();
        await using var second = app.CreateFactory(app.Database.ConnectionString);
        using var client = second.CreateClient(new WebApplicationFactoryClientOptions { BaseAddress = new Uri("https://localhost") });
        Assert.Equal(1, (await seed.RecommendAsync($"placement=product&product_id=101&visitor_id={seed.VisitorIn("model", "v-two")}", client)).GetProperty("model_version").GetInt32());

        await seed.TrainAsync(); // promoted on the first instance

        var deadline = DateTime.UtcNow.AddSeconds(15);
        int served;
        do
        {
            served = (await seed.RecommendAsync($"placement=product&product_id=101&visitor_id={seed.VisitorIn("model", "v-two")}", client)).GetProperty("model_version").GetInt32();
            if (served == 2) break;
            await Task.Delay(100);
        } while (DateTime.UtcNow < deadline);
        Assert.Equal(2, served);
    }

    [Fact]
    public async Task TrainOnDemand_RunsOnTheClusterAndRecordsTheRun()
    {
        var seed = new StoreSeed(app, "registry-demand.myshopify.com");
        await seed.SeedAsync(customersPerGroup: 8);
        var train = new HttpRequestMessage(HttpMethod.Post, "/api/admin/models/train");
        train.Headers.Authorization = app.AdminGet("/", seed.Shop).Headers.Authorization;

        Assert.Equal(HttpStatusCode.Accepted, (await app.Client.SendAsync(train)).StatusCode);

        var deadline = DateTime.UtcNow.AddSeconds(30);
        // Why wait for the completed run and not the model: the run is marked completed just after the model is registered.
        while (DateTime.UtcNow < deadline && await app.CountAsync("SELECT count(*) FROM training_runs WHERE shop_id = $1 AND trigger = 'on demand' AND state = 'completed'", seed.ShopId) == 0)
            await Task.Delay(200);
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM training_runs WHERE shop_id = $1 AND trigger = 'on demand' AND state = 'completed' AND rows > 0 AND metrics ? 'RecallAt10'", seed.ShopId));
    }

    [Fact]
    public async Task TrainingForAnUninstalledShop_RemovesItsScheduleInsteadOfRetrying()
    {
        var seed = new StoreSeed(app, "registry-gone.myshopify.com");
        await seed.SeedAsync(customersPerGroup: 3);
        var scheduler = app.Factory.Services.GetRequiredService<TrainingScheduler>();
        scheduler.OnInstalled(seed.Shop, "Europe/London");
        var storage = app.Factory.Services.GetRequiredService<Hangfire.JobStorage>();
        bool Scheduled() { using var c = storage.GetConnection(); return c.GetRecurringJobs([TrainingScheduler.NightlyId(seed.Shop, RecommenderTrainer.Kind)]).Any(j => !j.Removed); }
        Assert.True(Scheduled());
        Assert.Equal("Europe/London", StorageTimeZone(storage, TrainingScheduler.NightlyId(seed.Shop, RecommenderTrainer.Kind)));
        await app.SendWebhookAsync("app/uninstalled", seed.Shop, $"{{\"id\": 1, \"myshopify_domain\": \"{seed.Shop}\"}}");

        scheduler.TrainNow(seed.Shop, "on demand");

        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (DateTime.UtcNow < deadline && Scheduled()) await Task.Delay(100);
        Assert.False(Scheduled());
        Assert.Equal(0, await app.CountAsync("SELECT count(*) FROM models WHERE shop_id = $1", seed.ShopId));
    }

    [Fact]
    public async Task TrainingsAskedForAtOnceOnTwoInstances_NeverOverlapForOneShopAndKind()
    {
        var seed = new StoreSeed(app, "registry-overlap.myshopify.com");
        await seed.SeedAsync(customersPerGroup: 8);
        await using var second = app.CreateFactory(app.Database.ConnectionString);
        _ = second.Services;

        foreach (var sp in new[] { app.Factory.Services, second.Services, app.Factory.Services, second.Services })
            sp.GetRequiredService<TrainingScheduler>().TrainNow(seed.Shop, "on demand");

        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (DateTime.UtcNow < deadline && await app.CountAsync("SELECT count(*) FROM training_runs WHERE shop_id = $1 AND state = 'completed'", seed.ShopId) == 0)
            await Task.Delay(200);
        await Task.Delay(2000); // let any other queued training finish
        Assert.True(await app.CountAsync("SELECT count(*) FROM training_runs WHERE shop_id = $1 AND state = 'completed'", seed.ShopId) >= 1);
        Assert.Equal(0, await app.CountAsync("""
            SELECT count(*) FROM training_runs a JOIN training_runs b ON a.shop_id = b.shop_id AND a.kind = b.kind AND a.id < b.id
            WHERE a.shop_id = $1 AND b.started_at < coalesce(a.finished_at, 'infinity') AND a.started_at < coalesce(b.finished_at, 'infinity')
            """, seed.ShopId));
    }

    [Fact]
    public async Task FailingTraining_IsRetriedAMinuteLater()
    {
        const string shop = "registry-failing.myshopify.com";
        var shopId = await app.InstallShopAsync(shop);
        await app.ScalarAsync("INSERT INTO orders (shop_id, id, total_price, created_at, updated_at) VALUES ($1, 880001, 10, now(), now())", shopId);
        var storage = app.Factory.Services.GetRequiredService<Hangfire.JobStorage>();
        // The database fails the recommender's reads (a table it reads is gone for the while).
        await app.ScalarAsync("ALTER TABLE recommendation_events RENAME TO recommendation_events_away");
        try
        {
            app.Factory.Services.GetRequiredService<TrainingScheduler>().TrainNow(shop, "on demand", RecommenderTrainer.Kind);

            var deadline = DateTime.UtcNow.AddSeconds(20);
            Hangfire.Storage.Monitoring.ScheduledJobDto? retry = null;
            while (DateTime.UtcNow < deadline && retry is null)
            {
                retry = storage.GetMonitoringApi().ScheduledJobs(0, 100)
                    .Select(j => j.Value).FirstOrDefault(j => j.Job?.Args.FirstOrDefault() as string == shop);
                await Task.Delay(200);
            }
            Assert.NotNull(retry);
            var delay = retry.EnqueueAt - DateTime.UtcNow;
            Assert.InRange(delay.TotalSeconds, 30, 65);
            Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM training_runs t WHERE t.shop_id = $1 AND t.state = 'failed'", shopId));
        }
        finally { await app.ScalarAsync("ALTER TABLE recommendation_events_away RENAME TO recommendation_events"); }
    }

    /// <summary>
    /// A new store with nothing to learn from yet: its recommender run is skipped with the reason, not failed and retried.
    /// Until 6 Dec 2026 each night added a red "failed" run and three retries.
    /// </summary>
    [Fact]
    public async Task AStoreWithNothingToLearnFrom_SkipsItsRecommenderRun_WithTheReason()
    {
        const string shop = "registry-empty.myshopify.com";
        var shopId = await app.InstallShopAsync(shop);

        var (version, activated) = await app.Factory.Services.GetRequiredService<TrainingService>().TrainAsync(shop, RecommenderTrainer.Kind, "nightly", CancellationToken.None);

        Assert.Equal((0, false), (version, activated));
        Assert.Equal("not enough data yet: the shop has no orders, carts or events to learn from",
            await app.ScalarAsync("SELECT error FROM training_runs WHERE shop_id = $1 AND state = 'skipped'", shopId));
        Assert.Equal(0, await app.CountAsync("SELECT count(*) FROM training_runs WHERE shop_id = $1 AND state <> 'skipped'", shopId));
    }

    private static string? StorageTimeZone(Hangfire.JobStorage storage, string id)
    {
        using var c = storage.GetConnection();
        return c.GetAllEntriesFromHash($"recurring-job:{id}")?.GetValueOrDefault("TimeZoneId");
    }
}
