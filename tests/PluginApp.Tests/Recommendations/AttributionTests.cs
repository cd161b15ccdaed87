using PluginApp.Governance;
using System.Net;
using System.Net.Http.Json;
using Microsoft.Extensions.DependencyInjection;
using PluginApp.Recommendations;
using PluginApp.Tests.Infrastructure;
using PluginApp.Webhooks;

namespace PluginApp.Tests.Recommendations;

public sealed class AttributionTests(AppFixture app) : IClassFixture<AppFixture>
{
    [Fact]
    public async Task OrderAfterAClickOnARecommendation_IsAttributedWithModelVersionAndArm()
    {
        var seed = new StoreSeed(app, "attr-click.myshopify.com");
        await seed.SeedAsync();
        await seed.TrainAsync();
        var visitor = seed.VisitorIn("model", "visitor");
        var answer = await seed.RecommendAsync($"placement=product&product_id=101&limit=3&visitor_id={visitor}");
        var recommended = seed.Products(answer)[0];
        var token = answer.GetProperty("items")[0].GetProperty("token").GetString();
        var requestId = answer.GetProperty("request_id").GetString();
        // The version that served the answer (the new-orders check may train another while the test runs).
        var version = answer.GetProperty("model_version").GetInt32();
        await app.Factory.Services.GetRequiredService<DecisionLog>().FlushAsync(CancellationToken.None);
        var click = await app.Client.PostAsJsonAsync(StoreSeed.Signed("/proxy/events", seed.Shop, "", app.Clock.GetUtcNow()),
            new { type = "click", request_id = requestId, visitor_id = visitor, product_id = seed.P(recommended), placement = "product", position = 0, token });
        Assert.Equal(HttpStatusCode.Accepted, click.StatusCode);

        // A guest checks out two days later with the visitor id in the cart attributes: one line was recommended, one was not.
        var order = seed.Order(990001, null, [recommended, 109], app.Clock.GetUtcNow().AddDays(2), visitor: visitor);
        await app.SendWebhookAsync("orders/create", seed.Shop, order.ToJsonString());
        // A different visitor buying the same product is not attributed.
        await app.SendWebhookAsync("orders/create", seed.Shop, seed.Order(990002, null, [recommended], app.Clock.GetUtcNow().AddDays(2), visitor: "someone-else").ToJsonString());

        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM recommendation_attributions WHERE shop_id = $1", seed.ShopId));
        Assert.Equal(1, await app.CountAsync("""
            SELECT count(*) FROM recommendation_attributions
            WHERE shop_id = $1 AND order_id = $4 AND product_id = $2 AND event_type = 'click' AND request_id = $3 AND model_version = $5 AND experiment_arm IS NOT NULL
            """, seed.ShopId, seed.P(recommended), requestId!, seed.Offset + 990001, version));
    }

    [Fact]
    public async Task Attribution_NeverTakesAnotherShopsDecision_EvenWithTheSameRequestId()
    {
        const string shop = "attr-shop-a.myshopify.com";
        var shopId = await app.InstallShopAsync(shop);
        var otherId = await app.InstallShopAsync("attr-shop-b.myshopify.com");
        var now = new DateTimeOffset(2026, 7, 1, 12, 0, 0, TimeSpan.Zero); // a day before the order below
        await app.LogUpsellAsync("shared-request", otherId, now, [], [9000], modelVersion: 99);
        await app.ScalarAsync("""
            INSERT INTO recommendation_events (shop_id, event_type, request_id, visitor_hash, customer_id, product_id, occurred_at)
            VALUES ($1, 'click', 'shared-request', NULL, 7900101, 9000, $2)
            """, shopId, now);

        await app.SendWebhookAsync("orders/create", shop, ShopifyPayloads.Order(7_900_001, customerId: 7_900_101).ToJsonString());

        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM recommendation_attributions WHERE shop_id = $1 AND order_id = 7900001", shopId));
        Assert.Equal(0, await app.CountAsync("SELECT count(*) FROM recommendation_attributions WHERE shop_id = $1 AND model_version = 99", shopId));
        // The same shopper's test order (the merchant trying the checkout) is not recommended revenue (until 5 Dec 2026 it was).
        var test = ShopifyPayloads.Order(7_900_002, customerId: 7_900_101);
        test["test"] = true;
        await app.SendWebhookAsync("orders/create", shop, test.ToJsonString());
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM orders WHERE shop_id = $1 AND id = 7900002 AND test", shopId));
        Assert.Equal(0, await app.CountAsync("SELECT count(*) FROM recommendation_attributions WHERE shop_id = $1 AND order_id = 7900002", shopId));
    }
    /// <summary>
    /// An order imported from the store's old platform arrives as orders/create on the day of the import, its real date as
    /// processed_at: the shopper's click of this week on its product earned nothing of it (until 7 Dec 2026 the import's
    /// orders were credited to the week's recommendations).
    /// </summary>
    [Fact]
    public async Task AnOrderImportedFromAnotherPlatform_IsNotCreditedToThisWeeksRecommendations()
    {
        const string shop = "attr-imported.myshopify.com";
        var shopId = await app.InstallShopAsync(shop);
        var now = new DateTimeOffset(2026, 7, 1, 12, 0, 0, TimeSpan.Zero); // a day before the order's creation below
        await app.LogUpsellAsync("imported-request", shopId, now, [], [9000], modelVersion: 3);
        await app.ScalarAsync("""
            INSERT INTO recommendation_events (shop_id, event_type, request_id, visitor_hash, customer_id, product_id, occurred_at)
            VALUES ($1, 'click', 'imported-request', NULL, 7900201, 9000, $2)
            """, shopId, now);
        var imported = ShopifyPayloads.Order(7_900_201, customerId: 7_900_201);
        imported["processed_at"] = "2024-03-14T10:00:00-04:00";
        var placed = ShopifyPayloads.Order(7_900_202, customerId: 7_900_201);

        await app.SendWebhookAsync("orders/create", shop, imported.ToJsonString());
        await app.SendWebhookAsync("orders/create", shop, placed.ToJsonString());

        Assert.Equal(0, await app.CountAsync("SELECT count(*) FROM recommendation_attributions WHERE shop_id = $1 AND order_id = 7900201", shopId));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM recommendation_attributions WHERE shop_id = $1 AND order_id = 7900202", shopId));
    }

    /// <summary>
    /// A product recommended to thousands of other visitors this week: an order line of it is credited to its own shopper's
    /// click, and finding that click reads the shopper's events, not everyone's events of the product.
    /// </summary>
    [Fact]
    public async Task ALineOfAProductThousandsWereShown_IsCreditedToItsShoppersClick_ReadingOnlyTheShoppersEvents()
    {
        const string shop = "attr-popular.myshopify.com";
        var shopId = await app.InstallShopAsync(shop);
        var clicked = new DateTimeOffset(2026, 7, 1, 12, 0, 0, TimeSpan.Zero); // a day before the order below
        await app.CountAsync("""
            INSERT INTO recommendation_events (shop_id, event_type, request_id, visitor_hash, customer_id, product_id, occurred_at)
            SELECT $1, 'impression', 'popular-' || i, md5(i::text), NULL, 9000, $2 - interval '1 second' * (i * 25)
            FROM generate_series(1, 20000) i
            """, shopId, clicked);
        var visitor = PluginApp.Experiments.Assignment.VisitorHash(shop, "popular-shopper")!;
        await app.CountAsync("""
            INSERT INTO recommendation_events (shop_id, event_type, request_id, visitor_hash, customer_id, product_id, occurred_at)
            VALUES ($1, 'impression', 'shopper-request', $2, NULL, 9000, $3), ($1, 'click', 'shopper-request', $2, NULL, 9000, $3)
            """, shopId, visitor, clicked);
        await app.CountAsync("ANALYZE recommendation_events");

        var body = ShopifyPayloads.Order(7_950_001, customerId: null);
        body["note_attributes"] = new System.Text.Json.Nodes.JsonArray(
            new System.Text.Json.Nodes.JsonObject { ["name"] = "_pluginapp_visitor", ["value"] = "popular-shopper" });
        Assert.Equal(HttpStatusCode.OK, (await app.SendWebhookAsync("orders/create", shop, body.ToJsonString())).StatusCode);

        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM recommendation_attributions WHERE shop_id = $1 AND order_id = 7950001", shopId));
        Assert.Equal("click", await app.ScalarAsync(
            "SELECT event_type FROM recommendation_attributions WHERE shop_id = $1 AND order_id = 7950001 AND request_id = 'shopper-request'", shopId));

        // A segment of nine lines of the product, of other shoppers, planned as a webhook batch plans it.
        var rows = Enumerable.Range(1, 9).Select(i => new object?[]
        {
            shopId, 7_950_100L + i, 7_950_001L + i, 9000L, 30m, new DateTimeOffset(2026, 7, 2, 16, 0, 0, TimeSpan.Zero),
            i % 2 == 0 ? 7_950_200L + i : null, PluginApp.Experiments.Assignment.VisitorHash(shop, $"other-{i}"), clicked,
        }).ToList();
        var statement = Attribution.Lines.Command(rows);
        await using var conn = await app.Db.OpenConnectionAsync();
        await using var tx = await conn.BeginTransactionAsync();
        foreach (var setting in IngestBatcher.PlanSettings)
            await using (var set = new Npgsql.NpgsqlCommand(setting, conn, tx)) await set.ExecuteNonQueryAsync();
        await QueryPlans.AssertReadsAtMostAsync(conn, "the attributions of nine lines", 100, statement.CommandText, statement.Parameters.Select(p => p.Value!).ToArray(), tx);
    }
}
