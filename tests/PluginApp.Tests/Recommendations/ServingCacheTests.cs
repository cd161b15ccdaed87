using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;
using PluginApp.Governance;
using PluginApp.Recommendations;
using PluginApp.Tests.Infrastructure;

namespace PluginApp.Tests.Recommendations;

/// <summary>
/// The product-page answer cache and the bounded model cache: a repeated product page is answered from memory (and still
/// logged per answer), a change of rules, model, stock or switch reaches the answers of every instance, and a model cache over
/// its budget drops the least recently used store, whose next request loads it again; so does the catalog cache.
/// </summary>
public sealed class ServingCacheTests(AppFixture app) : IClassFixture<AppFixture>
{
    /// <summary>
    /// A full answer cache still follows each shop's changes: the shop's next answer after a change of catalog or models
    /// replaces its stale table and is kept. Until 6 Dec 2026 a full cache kept nothing again, so after the first changes
    /// every product page missed until the process restarted.
    /// </summary>
    [Fact]
    public void AFullAnswerCache_StillReplacesAShopsStaleAnswers_AndKeepsTheNewOnes()
    {
        using var services = new ServiceCollection().AddMetrics().BuildServiceProvider();
        var cache = new AnswerCache(Microsoft.Extensions.Options.Options.Create(new RecommendationOptions { AnswerCacheEntries = 2 }),
            services.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>());
        var answer = new CachedAnswer("model", 1, [], null, null);
        cache.Put(1, catalog: 10, models: 1, new AnswerCache.Key(100, 4, "model", false), answer);
        cache.Put(1, catalog: 10, models: 1, new AnswerCache.Key(101, 4, "model", false), answer);
        Assert.Equal(2, cache.Stats().Answers);

        cache.Put(1, catalog: 11, models: 1, new AnswerCache.Key(100, 4, "model", false), answer); // the catalog changed

        Assert.True(cache.TryGet(1, 11, 1, new AnswerCache.Key(100, 4, "model", false), out _));
        Assert.False(cache.TryGet(1, 10, 1, new AnswerCache.Key(101, 4, "model", false), out _));
        Assert.Equal(1, cache.Stats().Answers);
    }

    private async Task<StoreSeed> TrainedStoreAsync(string shop)
    {
        var seed = new StoreSeed(app, shop);
        await seed.SeedAsync(customersPerGroup: 8);
        var (_, activated) = await seed.TrainAsync();
        Assert.True(activated, "the first model of a shop becomes active");
        return seed;
    }

    [Theory]
    [InlineData("rule")]
    [InlineData("model")]
    [InlineData("stock")]
    [InlineData("switch")]
    [InlineData("delete")]
    [InlineData("notice")]
    public async Task CachedProductPageAnswer_ChangesOnEveryInstance_AfterTheChange(string change)
    {
        var seed = await TrainedStoreAsync($"cache-{change}.myshopify.com");
        // Why these settings: the second instance then never reloads a catalog or checks model versions by itself within the
        // test, so what it serves after the change it learned from the change's notification.
        await using var second = app.CreateFactory(app.Database.ConnectionString, b => b
            .UseSetting("Recommendations:CatalogMaxAge", "01:00:00").UseSetting("Recommendations:ModelVersionCheckInterval", "00:10:00"));
        using var secondClient = second.CreateClient(new WebApplicationFactoryClientOptions { BaseAddress = new Uri("https://localhost") });
        var clients = new[] { app.Client, secondClient };
        var query = $"placement=product&product_id=105&limit=3&visitor_id={seed.VisitorIn("model", "v-cache")}";

        var before = new List<JsonElement>();
        foreach (var client in clients)
        {
            var first = await seed.RecommendAsync(query, client);
            var again = await seed.RecommendAsync(query, client);
            Assert.Equal("model", again.GetProperty("path").GetString());
            Assert.Equal(seed.Products(first), seed.Products(again));
            Assert.NotEqual(first.GetProperty("request_id").GetString(), again.GetProperty("request_id").GetString());
            before.Add(again);
        }
        // Carts are computed every time.
        await seed.RecommendAsync($"placement=cart&variant_ids=1050&limit=3&visitor_id={seed.VisitorIn("model", "v-cache")}");
        await seed.RecommendAsync($"placement=cart&variant_ids=1050&limit=3&visitor_id={seed.VisitorIn("model", "v-cache")}");
        await app.Factory.Services.GetRequiredService<DecisionLog>().FlushAsync(CancellationToken.None);
        await second.Services.GetRequiredService<DecisionLog>().FlushAsync(CancellationToken.None);
        // One decision per answer, the repeats marked as served from the cache.
        Assert.Equal(6, await app.CountAsync("SELECT count(*) FROM decisions WHERE shop_id = $1 AND kind = 'upsell'", seed.ShopId));
        Assert.Equal(2, await app.CountAsync("SELECT count(*) FROM decisions WHERE shop_id = $1 AND kind = 'upsell' AND subject = 'product' AND inputs->>'answer' = 'cached'", seed.ShopId));
        Assert.Equal(0, await app.CountAsync("SELECT count(*) FROM decisions WHERE shop_id = $1 AND kind = 'upsell' AND subject = 'cart' AND inputs IS NOT NULL", seed.ShopId));

        var top = seed.Products(before[0])[0];
        Func<JsonElement, bool> changed;
        switch (change)
        {
            case "rule":
                var put = new HttpRequestMessage(HttpMethod.Put, "/api/admin/rules") { Content = JsonContent.Create(new { blockedProductIds = new[] { seed.P(top) } }) };
                put.Headers.Authorization = app.AdminGet("/", seed.Shop).Headers.Authorization;
                Assert.Equal(HttpStatusCode.OK, (await app.Client.SendAsync(put)).StatusCode);
                changed = a => !seed.Products(a).Contains(top);
                break;
            case "model":
                Assert.Equal((2, true), await seed.TrainAsync());
                changed = a => a.GetProperty("model_version").GetInt32() == 2;
                break;
            case "stock":
                await seed.UpdateStockAsync(top, 0);
                changed = a => !seed.Products(a).Contains(top);
                break;
            case "delete":
                // Deleted in Shopify: until 5 Dec 2026 products/delete announced nothing, and the product was served until the
                // catalog's age ran out (an hour on the second instance).
                Assert.Equal(HttpStatusCode.OK, (await app.SendWebhookAsync("products/delete", seed.Shop,
                    new System.Text.Json.Nodes.JsonObject { ["id"] = seed.P(top) }.ToJsonString())).StatusCode);
                changed = a => !seed.Products(a).Contains(top);
                break;
            case "notice":
                // The shopper notice behind "Why am I seeing this?": until 7 Dec 2026 its save announced nothing, and the other
                // instance showed the old text until its catalog's age ran out.
                var notice = new HttpRequestMessage(HttpMethod.Put, "/api/admin/shopper-notice") { Content = JsonContent.Create(new { text = "Picked from what this store sells together." }) };
                notice.Headers.Authorization = app.AdminGet("/", seed.Shop).Headers.Authorization;
                Assert.Equal(HttpStatusCode.OK, (await app.Client.SendAsync(notice)).StatusCode);
                changed = a => a.TryGetProperty("notice", out var n) && n.ValueKind == JsonValueKind.String && n.GetString() == "Picked from what this store sells together.";
                break;
            default:
                Assert.Equal(HttpStatusCode.OK, (await app.SwitchFeatureAsync(seed.Shop, UpsellFeature.Name, false, "nothing")).StatusCode);
                changed = a => a.GetProperty("path").GetString() == UpsellFeature.SwitchedOff;
                break;
        }

        foreach (var client in clients)
        {
            // Why a deadline: the other instance hears of the change when PostgreSQL delivers the notification, a moment later.
            var deadline = DateTime.UtcNow.AddSeconds(15);
            JsonElement answer;
            while (!changed(answer = await seed.RecommendAsync(query, client)) && DateTime.UtcNow < deadline) await Task.Delay(100);
            Assert.True(changed(answer), $"after the {change} change, {(client == app.Client ? "this" : "the second")} instance still answers {answer}");
        }
    }

    [Fact]
    public async Task ModelCacheOverItsBudget_DropsTheLeastRecentlyUsedStore_WhoseNextRequestLoadsItAgain()
    {
        var stores = new List<StoreSeed>();
        foreach (var name in new[] { "a", "b", "c" }) stores.Add(await TrainedStoreAsync($"lru-{name}.myshopify.com"));
        var sizes = new List<long>();
        foreach (var s in stores)
        {
            var artifact = (byte[])(await app.ScalarAsync("SELECT artifact FROM models WHERE shop_id = $1 AND status = 'active'", s.ShopId))!;
            sizes.Add(ModelCache.EstimatedBytes(RecommenderBundle.FromBytes(artifact), artifact.Length));
        }
        // Any two stores' models fit, all three do not.
        var budget = sizes.Sum() - 1;
        await using var bounded = app.CreateFactory(app.Database.ConnectionString, b => b
            .UseSetting("Recommendations:ModelCacheBudgetBytes", budget.ToString(CultureInfo.InvariantCulture)));
        using var client = bounded.CreateClient(new WebApplicationFactoryClientOptions { BaseAddress = new Uri("https://localhost") });
        var cache = bounded.Services.GetRequiredService<ModelCache>();
        var (a, b, c) = (stores[0], stores[1], stores[2]);
        async Task<JsonElement> Serve(StoreSeed s) => await s.RecommendAsync($"placement=cart&variant_ids=1050&limit=3&visitor_id={s.VisitorIn("model", "v-lru")}", client);

        var (_, answer, reloaded) = await ServeAbacThenBAsync(a, b, c, Serve, cache.Holds, cache.Held, budget);

        Assert.Equal("model", answer.GetProperty("path").GetString());
        Assert.Equal("model", reloaded.GetProperty("path").GetString());
        Assert.Equal(1, reloaded.GetProperty("model_version").GetInt32());
    }

    [Fact]
    public async Task CatalogCacheOverItsBudget_DropsTheLeastRecentlyUsedStoresCatalog_WhoseNextRequestLoadsItAgain()
    {
        var stores = new List<StoreSeed>();
        foreach (var name in new[] { "a", "b", "c" })
        {
            var seed = new StoreSeed(app, $"catalog-lru-{name}.myshopify.com");
            await seed.SeedAsync(customersPerGroup: 2);
            stores.Add(seed);
        }
        var sizes = new List<long>();
        foreach (var s in stores) sizes.Add((await app.Factory.Services.GetRequiredService<CatalogCache>().GetAsync(s.ShopId, CancellationToken.None)).Bytes);
        Assert.All(sizes, size => Assert.True(size > 1024, $"a catalog of products reckoned at {size} bytes"));
        // Any two stores' catalogs fit, all three do not.
        var budget = sizes.Sum() - 1;
        await using var bounded = app.CreateFactory(app.Database.ConnectionString, b => b
            .UseSetting("Recommendations:CatalogCacheBudgetBytes", budget.ToString(CultureInfo.InvariantCulture)));
        using var client = bounded.CreateClient(new WebApplicationFactoryClientOptions { BaseAddress = new Uri("https://localhost") });
        var cache = bounded.Services.GetRequiredService<CatalogCache>();
        var (a, b, c) = (stores[0], stores[1], stores[2]);
        async Task<JsonElement> Serve(StoreSeed s) => await s.RecommendAsync("placement=cart&variant_ids=1050&limit=3&visitor_id=v-catalog", client);

        var (first, _, reloaded) = await ServeAbacThenBAsync(a, b, c, Serve, cache.Holds, cache.Held, budget);

        Assert.NotEmpty(b.Products(reloaded));
        Assert.Equal(b.Products(first), b.Products(reloaded));
    }

    [Fact]
    public async Task ModelVersionCheck_ReloadsOnlyTheStoresWhoseVersionsMovedUnannounced_AndKeepsTheOthersLoaded()
    {
        var steady = await TrainedStoreAsync("check-steady.myshopify.com");
        var moved = await TrainedStoreAsync("check-moved.myshopify.com");
        Assert.Equal((2, true), await moved.TrainAsync());
        var untrained = new StoreSeed(app, "check-untrained.myshopify.com");
        await untrained.SeedAsync(customersPerGroup: 2);
        await using var instance = app.CreateFactory(app.Database.ConnectionString, b => b.UseSetting("Recommendations:ModelVersionCheckInterval", "00:00:00.200"));
        _ = instance.Server; // its background services run, the version check among them
        var cache = instance.Services.GetRequiredService<ModelCache>();
        async Task<ShopModels> Held(StoreSeed s)
        {
            var deadline = DateTime.UtcNow.AddSeconds(10);
            while (DateTime.UtcNow < deadline)
            {
                if (await cache.GetAsync(s.ShopId, CancellationToken.None) is { } m) return m;
                await Task.Delay(50); // still loading past the serving budget
            }
            throw new TimeoutException($"{s.Shop}'s models did not load");
        }
        // Why until two reads agree: the instance's change listener drops every model once when it connects, which may come
        // after the first loads; the baseline is taken once that has happened.
        var before = new Dictionary<long, ShopModels>();
        for (var settled = false; !settled;)
        {
            var read = new Dictionary<long, ShopModels>();
            foreach (var s in new[] { steady, moved, untrained }) read[s.ShopId] = await Held(s);
            settled = before.Count > 0 && read.All(r => r.Value.Generation == before[r.Key].Generation);
            before = read;
            if (!settled) await Task.Delay(1000);
        }
        Assert.Null(before[untrained.ShopId].Active);
        Assert.Equal(2, before[moved.ShopId].Active!.Version);

        // A rollback written straight to the table: no NOTIFY, so only the periodic check can see it.
        await app.ScalarAsync("UPDATE models SET status = 'retired' WHERE shop_id = $1 AND version = 2", moved.ShopId);
        await app.ScalarAsync("UPDATE models SET status = 'active' WHERE shop_id = $1 AND version = 1", moved.ShopId);
        var deadline = DateTime.UtcNow.AddSeconds(5);
        while (DateTime.UtcNow < deadline && (await Held(moved)).Active?.Version != 1) await Task.Delay(100);
        Assert.Equal(1, (await Held(moved)).Active?.Version);
        await Task.Delay(600); // a few more checks

        // The stores whose versions did not move still hold the models of their first load (a reload gives a new generation).
        Assert.Equal(before[steady.ShopId].Generation, (await Held(steady)).Generation);
        Assert.Equal(before[untrained.ShopId].Generation, (await Held(untrained)).Generation);
    }

    /// <summary>
    /// A store that imported its old platform's orders: they are created on the import's day, their real dates years back as
    /// processed_at. The bestsellers are the last 90 days' by when orders were placed: not the import's best sellers of 2023.
    /// Until 7 Dec 2026 every imported order counted as one of the last 90 days'.
    /// </summary>
    [Fact]
    public async Task Bestsellers_OfAStoreThatImportedItsHistory_AreTheLast90DaysByWhenOrdersWerePlaced()
    {
        var seed = new StoreSeed(app, "bestsellers-imported.myshopify.com");
        await seed.SeedAsync(customersPerGroup: 2);
        var now = app.Clock.GetUtcNow();
        async Task OrderAsync(long id, long product, int quantity, DateTimeOffset created, DateTimeOffset processed)
        {
            await app.CountAsync("""
                INSERT INTO orders (shop_id, id, name, currency, total_price, created_at, updated_at, processed_at) VALUES ($1, $2, 'n', 'USD', 10, $3, $3, $4)
                """, seed.ShopId, id, created, processed);
            await app.CountAsync("INSERT INTO order_lines (shop_id, id, order_id, product_id, quantity) VALUES ($1, $2, $2, $3, $4)", seed.ShopId, id, product, quantity);
        }
        await OrderAsync(seed.Offset + 950_001, seed.P(101), 100, now.AddHours(-1), now.AddYears(-3)); // imported today
        await OrderAsync(seed.Offset + 950_002, seed.P(105), 5, now.AddDays(-10), now.AddDays(-10));   // placed in the store

        var catalog = await app.Factory.Services.GetRequiredService<CatalogCache>().GetAsync(seed.ShopId, CancellationToken.None);

        Assert.Equal(seed.P(105), catalog.Bestsellers[0]);
        Assert.DoesNotContain(seed.P(101), catalog.Bestsellers);
    }

    [Fact]
    public async Task Bestsellers_AreKeptThroughCatalogReloadsAndProductChanges_UntilTheirOwnAgeLimit()
    {
        var seed = new StoreSeed(app, "bestsellers-age.myshopify.com");
        await seed.SeedAsync(customersPerGroup: 2);
        // Why 5 s: the orders, the stock change and the reload below must all land within it, also under the whole suite's load.
        var limit = TimeSpan.FromSeconds(5);
        await using var instance = app.CreateFactory(app.Database.ConnectionString, b => b
            .UseSetting("Recommendations:BestsellersMaxAge", limit.ToString("c", CultureInfo.InvariantCulture)));
        var cache = instance.Services.GetRequiredService<CatalogCache>();
        // Why until it stays held: the instance's change listener drops every snapshot once when it connects, which may come
        // after the first load; the bestsellers compared below are those of a load after it.
        DateTime loaded;
        CatalogSnapshot before;
        do
        {
            loaded = DateTime.UtcNow;
            before = await cache.GetAsync(seed.ShopId, CancellationToken.None);
            await Task.Delay(500);
        } while (!cache.Holds(seed.ShopId));
        Assert.NotEqual(seed.P(112), before.Bestsellers[0]);

        // Product 112 becomes the store's bestseller by far, then its stock changes: the catalog is loaded again at once...
        for (var i = 0; i < 10; i++)
            await app.SendWebhookAsync("orders/create", seed.Shop, seed.Order(900_000 + i, null, [112, 112, 112, 112, 112], new DateTimeOffset(2026, 6, 25, 0, 0, 0, TimeSpan.Zero)).ToJsonString());
        await seed.UpdateStockAsync(112, 3);
        cache.Invalidate(seed.ShopId); // what this instance's notification does; done here so the test does not wait on its delivery
        var changed = await cache.GetAsync(seed.ShopId, CancellationToken.None);
        Assert.Equal(3, changed.Products[seed.P(112)].Variants[0].Inventory);
        // ...but its bestsellers are those counted at the first load, until they are the limit old.
        Assert.Equal(before.Bestsellers, changed.Bestsellers);

        await Task.Delay(loaded + limit - DateTime.UtcNow + TimeSpan.FromMilliseconds(100));
        cache.Invalidate(seed.ShopId);
        var later = await cache.GetAsync(seed.ShopId, CancellationToken.None);
        Assert.Equal(seed.P(112), later.Bestsellers[0]);
    }

    /// <summary>
    /// A product change drops the store's catalog on every instance, and the storefront requests in flight then all ask for it
    /// at once. One load must serve them all: each used to load its own (the benchmark's large store ran its 0.9 s bestsellers
    /// query five times at once).
    /// </summary>
    [Fact]
    public async Task CatalogDroppedByAChange_IsLoadedOnceForTheRequestsThatAskForItTogether()
    {
        var seed = new StoreSeed(app, "catalog-herd.myshopify.com");
        await seed.SeedAsync(customersPerGroup: 2);
        await using var instance = app.CreateFactory(app.Database.ConnectionString);
        var cache = instance.Services.GetRequiredService<CatalogCache>();
        // Why until it stays held: the instance's change listener drops every snapshot once when it connects.
        do
        {
            await cache.GetAsync(seed.ShopId, CancellationToken.None);
            await Task.Delay(500);
        } while (!cache.Holds(seed.ShopId));

        var loads = 0L;
        var meters = instance.Services.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>();
        using var listener = new System.Diagnostics.Metrics.MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Scope == meters && instrument.Name == "pluginapp.serving.catalog_loads") l.EnableMeasurementEvents(instrument);
        };
        listener.SetMeasurementEventCallback<long>((_, value, _, _) => Interlocked.Add(ref loads, value));
        listener.Start();

        for (var round = 0; round < 5; round++)
        {
            cache.Invalidate(seed.ShopId); // what the change's notification does on each instance
            var go = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var requests = Enumerable.Range(0, 32).Select(_ => Task.Run(async () =>
            {
                await go.Task;
                return await cache.GetAsync(seed.ShopId, CancellationToken.None);
            })).ToArray();
            go.SetResult();
            var snapshots = await Task.WhenAll(requests);
            Assert.All(snapshots, s => Assert.Same(snapshots[0], s));
        }
        Assert.Equal(5, Interlocked.Read(ref loads));
    }

    /// <summary>
    /// Under a budget that two of the three stores fit: serves a, b, a, c and checks that b, the least recently used, was
    /// dropped (once, within the budget); then serves b again and checks it is held and a, now the least recent, went.
    /// Returns b's first answer, c's answer and b's answer after its reload.
    /// </summary>
    private static async Task<(JsonElement First, JsonElement C, JsonElement Reloaded)> ServeAbacThenBAsync(StoreSeed a, StoreSeed b, StoreSeed c,
        Func<StoreSeed, Task<JsonElement>> serve, Func<long, bool> holds, Func<(int Shops, long Bytes, long Evictions)> held, long budget)
    {
        await serve(a);
        var first = await serve(b);
        await serve(a); // a is now more recent than b
        var answer = await serve(c);

        Assert.True(holds(a.ShopId), "the store used most recently before c stays");
        Assert.False(holds(b.ShopId), "the least recently used store is dropped");
        Assert.True(holds(c.ShopId));
        Assert.True(held().Bytes <= budget, $"{held().Bytes} bytes held over a budget of {budget}");
        Assert.Equal(1, held().Evictions);

        var reloaded = await serve(b);

        Assert.True(holds(b.ShopId));
        Assert.False(holds(a.ShopId), "a was used before c, so it goes next");
        Assert.Equal(2, held().Shops);
        return (first, answer, reloaded);
    }

    [Fact]
    public void Options_WithoutAModelBudgetOrWithANegativeAnswerCache_AreRefusedNamingEach()
    {
        var sut = new RecommendationOptionsValidator();

        var result = sut.Validate(null, new RecommendationOptions { ModelCacheBudgetBytes = 0, AnswerCacheEntries = -1 });

        Assert.True(result.Failed);
        Assert.Contains(result.Failures!, f => f.Contains("ModelCacheBudgetBytes 0", StringComparison.Ordinal));
        Assert.Contains(result.Failures!, f => f.Contains("AnswerCacheEntries -1", StringComparison.Ordinal));
    }
}
