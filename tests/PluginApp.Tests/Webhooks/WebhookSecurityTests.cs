using System.Net;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using PluginApp.Compliance;
using PluginApp.Tests.Infrastructure;

namespace PluginApp.Tests.Webhooks;

/// <summary>What a signed body replayed for another shop, a poisoned body, or a delivery for a shop we do not hold can do: nothing.</summary>
public sealed class WebhookSecurityTests(AppFixture app) : IClassFixture<AppFixture>
{
    private Task<long> Deliveries(string id) => app.CountAsync("SELECT count(*) FROM webhook_deliveries WHERE delivery_id = $1", id);

    [Theory]
    [InlineData("shop/redact")]
    [InlineData("customers/redact")]
    [InlineData("customers/data_request")]
    [InlineData("app/uninstalled")]
    public async Task ShopActingBodySignedForShopA_ReplayedNamingShopB_IsRefusedAndChangesNothing(string topic)
    {
        var a = $"replay-a-{topic.Replace('/', '-')}.myshopify.com";
        var b = $"replay-b-{topic.Replace('/', '-')}.myshopify.com";
        await app.InstallShopAsync(a);
        var bId = await app.InstallShopAsync(b);
        // One order per topic (string hashes differ from run to run, and two topics drawing the same order collided).
        var order = 7_100_000 + topic switch { "shop/redact" => 1, "customers/redact" => 2, "customers/data_request" => 3, _ => 4 };
        await app.SendWebhookAsync("orders/create", b, ShopifyPayloads.Order(order, customerId: 77001).ToJsonString());
        var body = topic switch
        {
            "app/uninstalled" => new JsonObject { ["id"] = 1, ["myshopify_domain"] = a, ["domain"] = "shop-a.example.com" },
            "shop/redact" => new JsonObject { ["shop_id"] = 1, ["shop_domain"] = a },
            _ => new JsonObject { ["shop_id"] = 1, ["shop_domain"] = a, ["customer"] = new JsonObject { ["id"] = 77001, ["email"] = "ada@example.com" },
                                  ["orders_to_redact"] = new JsonArray(order), ["orders_requested"] = new JsonArray(order) },
        };
        var delivery = Guid.NewGuid().ToString();

        var response = await app.SendWebhookAsync(topic, b, body.ToJsonString(), delivery);

        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        Assert.Contains(a, await response.Content.ReadAsStringAsync());
        Assert.Equal(0, await Deliveries(delivery));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM shops WHERE id = $1 AND uninstalled_at IS NULL AND access_token_enc IS NOT NULL", bId));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM orders WHERE shop_id = $1 AND id = $2 AND email IS NOT NULL", bId, order));
        Assert.Equal(0, await app.CountAsync("SELECT count(*) FROM customer_data_requests WHERE shop_id = $1", bId));
    }

    [Fact]
    public async Task AnySignedBodyWithoutItsShop_SentAsAppUninstalled_IsRefused()
    {
        const string shop = "replay-topic.myshopify.com";
        var shopId = await app.InstallShopAsync(shop);

        // A product body carries no shop: Shopify's signature does not bind the topic header, so it could be sent as anything.
        var response = await app.SendWebhookAsync("app/uninstalled", shop, ShopifyPayloads.Product(7_200_001).ToJsonString());

        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM shops WHERE id = $1 AND uninstalled_at IS NULL", shopId));
    }

    /// <summary>
    /// One customer's signed data request, sent again under another topic of the same shop (the header is not signed), and
    /// a product update sent as its deletion, change nothing: until 5 Dec 2026 the request erased the installed shop as
    /// shop/redact, erased the customer as customers/redact and dropped the shop's tokens as app/uninstalled, and the update
    /// hid the product.
    /// </summary>
    [Fact]
    public async Task ASignedBodySentAgainUnderAnotherTopicOfItsShop_IsRefused()
    {
        const string shop = "replay-other-topic.myshopify.com";
        var shopId = await app.InstallShopAsync(shop);
        await app.ScalarAsync("UPDATE shops SET granted_at = granted_at - interval '5 days', shopify_shop_id = 4242 WHERE id = $1", shopId);
        var order = ShopifyPayloads.Order(7_210_001, customerId: 7_210_101);
        Assert.Equal(HttpStatusCode.OK, (await app.SendWebhookAsync("orders/create", shop, order.ToJsonString())).StatusCode);
        var product = ShopifyPayloads.Product(7_210_201);
        Assert.Equal(HttpStatusCode.OK, (await app.SendWebhookAsync("products/create", shop, product.ToJsonString())).StatusCode);
        var request = new JsonObject
        {
            ["shop_id"] = 4242, ["shop_domain"] = shop, ["orders_requested"] = new JsonArray(7_210_001),
            ["customer"] = new JsonObject { ["id"] = 7_210_101, ["email"] = "ada@example.com" }, ["data_request"] = new JsonObject { ["id"] = 9 },
        }.ToJsonString();

        foreach (var topic in new[] { "shop/redact", "customers/redact", "app/uninstalled" })
            Assert.Equal(HttpStatusCode.Forbidden, (await app.SendWebhookAsync(topic, shop, request)).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await app.SendWebhookAsync("products/delete", shop, product.ToJsonString())).StatusCode);
        // An order's body (with its note) sent as a cart or a checkout (until 6 Dec 2026 stored as a cart under the order's token).
        var noted = ShopifyPayloads.Order(7_210_002, customerId: 7_210_101);
        noted["note"] = "leave it with Ada next door";
        foreach (var topic in new[] { "carts/update", "checkouts/update" })
            Assert.Equal(HttpStatusCode.Forbidden, (await app.SendWebhookAsync(topic, shop, noted.ToJsonString())).StatusCode);
        Assert.Equal(0, await app.CountAsync("SELECT count(*) FROM carts WHERE shop_id = $1", shopId));
        Assert.Equal(0, await app.CountAsync("SELECT count(*) FROM checkouts WHERE shop_id = $1", shopId));

        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM shops WHERE id = $1 AND uninstalled_at IS NULL AND access_token_enc IS NOT NULL", shopId));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM orders WHERE shop_id = $1 AND id = 7210001 AND email IS NOT NULL", shopId));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM products WHERE shop_id = $1 AND id = 7210201 AND deleted_at IS NULL", shopId));
        // Sent as what it is, it is acted on.
        Assert.Equal(HttpStatusCode.OK, (await app.SendWebhookAsync("customers/data_request", shop, request)).StatusCode);
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM customer_data_requests WHERE shop_id = $1", shopId));
    }

    [Fact]
    public async Task ComplianceBodyNamingTheRightDomainButAnotherShopId_IsRefused()
    {
        const string shop = "replay-shopid.myshopify.com";
        var shopId = await app.InstallShopAsync(shop);
        await app.ScalarAsync("UPDATE shops SET shopify_shop_id = 222 WHERE id = $1", shopId);

        var wrong = await app.SendWebhookAsync("shop/redact", shop, new JsonObject { ["shop_id"] = 111, ["shop_domain"] = shop }.ToJsonString());

        Assert.Equal(HttpStatusCode.Forbidden, wrong.StatusCode);
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM shops WHERE id = $1", shopId));
    }

    [Fact]
    public async Task OrderCustomerOrCheckoutBodyOfShopA_ReplayedForShopB_IsRefused()
    {
        const string a = "replay-order-a.myshopify.com", b = "replay-order-b.myshopify.com";
        await app.InstallShopAsync(a);
        var bId = await app.InstallShopAsync(b);
        var order = ShopifyPayloads.Order(7_300_001, customerId: 7_300_101).ToJsonString();
        var customer = ShopifyPayloads.Customer(7_300_102).ToJsonString();
        // A guest's checkout: no customer of shop A in it, only its token (checkouts carry no id since API version 2026-04).
        var checkout = ShopifyPayloads.Checkout(7_300_201, customerId: null).ToJsonString();
        Assert.Equal(HttpStatusCode.OK, (await app.SendWebhookAsync("orders/create", a, order)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await app.SendWebhookAsync("customers/create", a, customer)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await app.SendWebhookAsync("checkouts/create", a, checkout)).StatusCode);

        var replayedOrder = await app.SendWebhookAsync("orders/updated", b, order);
        var replayedCustomer = await app.SendWebhookAsync("customers/update", b, customer);
        var replayedCheckout = await app.SendWebhookAsync("checkouts/update", b, checkout);

        Assert.Equal(HttpStatusCode.Forbidden, replayedOrder.StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, replayedCustomer.StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, replayedCheckout.StatusCode);
        Assert.Equal(0, await app.CountAsync("SELECT count(*) FROM orders WHERE shop_id = $1", bId));
        Assert.Equal(0, await app.CountAsync("SELECT count(*) FROM customers WHERE shop_id = $1", bId));
        Assert.Equal(0, await app.CountAsync("SELECT count(*) FROM checkouts WHERE shop_id = $1", bId));
        Assert.Equal(0, await app.CountAsync("SELECT count(*) FROM webhook_deliveries WHERE shop_id = $1", bId));
    }

    [Fact]
    public async Task ProductBody_SentAsACustomerTopic_IsRefusedByItsGidType()
    {
        const string shop = "replay-gid.myshopify.com";
        var shopId = await app.InstallShopAsync(shop);

        var response = await app.SendWebhookAsync("customers/update", shop, ShopifyPayloads.Product(7_400_001).ToJsonString());

        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        Assert.Equal(0, await app.CountAsync("SELECT count(*) FROM customers WHERE shop_id = $1", shopId));
    }

    [Fact]
    public async Task RefusedReplay_IsLoggedAsASecurityEvent()
    {
        var logs = new LogCapture();
        await using var instance = app.CreateFactory(app.Database.ConnectionString, b => b.ConfigureLogging(l => l.AddProvider(logs)));
        using var client = instance.CreateClient(new() { BaseAddress = new Uri("https://localhost") });
        const string shop = "replay-logged.myshopify.com";
        await app.InstallShopAsync(shop);

        await app.SendWebhookAsync("shop/redact", shop, new JsonObject { ["shop_id"] = 1, ["shop_domain"] = "elsewhere.myshopify.com" }.ToJsonString(), client: client);

        Assert.Contains(logs.Entries, e => e.EventId.Id == PluginApp.Webhooks.WebhookIngestor.SecurityEvent.Id && e.Level == LogLevel.Warning
            && e.Message.Contains("elsewhere.myshopify.com"));
    }

    [Fact]
    public async Task BodyWithNulInAString_IsStoredWithoutIt_AndAnswered200()
    {
        const string shop = "poison-nul.myshopify.com";
        var shopId = await app.InstallShopAsync(shop);
        var body = ShopifyPayloads.Order(7_500_001, customerId: 7_500_101).ToJsonString()
            .Replace("\"note\":null", "\"note\":\"leave at the door\\u0000 thanks\"")
            .Replace("\"first_name\":\"Ada\"", "\"first_name\":\"A\\u0000da\"");
        Assert.Contains("\\u0000", body);
        var delivery = Guid.NewGuid().ToString();

        var first = await app.SendWebhookAsync("orders/create", shop, body, delivery);
        var retry = await app.SendWebhookAsync("orders/create", shop, body, delivery);

        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        Assert.Equal(HttpStatusCode.OK, retry.StatusCode);
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM orders WHERE shop_id = $1 AND id = 7500001", shopId));
        Assert.Equal("Ada", await app.ScalarAsync("SELECT first_name FROM customers WHERE shop_id = $1 AND id = 7500101", shopId));
        // A topic the app does not act on is kept raw, without the NUL (which jsonb refuses).
        var raw = Guid.NewGuid().ToString();
        Assert.Equal(HttpStatusCode.OK, (await app.SendWebhookAsync("inventory_levels/update", shop,
            "{\"inventory_item_id\":7500201,\"available\":3,\"note\":\"leave at the door\\u0000 thanks\"}", raw)).StatusCode);
        Assert.Equal("leave at the door thanks", await app.ScalarAsync("SELECT body->>'note' FROM webhook_deliveries WHERE delivery_id = $1", raw));
        // A NUL beside a string .NET cannot read (a lone surrogate, here in a field the rows do not hold) is stored and answered
        // 200, as each alone is (until 8 Dec 2026 answered 500 until Shopify gave up on it); an escaped backslash before
        // "u0000" is no NUL.
        var both = Guid.NewGuid().ToString();
        var order = ShopifyPayloads.Order(7_500_002).ToJsonString()
            .Replace("\"note\":null", "\"note\":\"ring\\u0000 twice \\ud800 C:\\\\u0000dir\"");
        Assert.Equal(HttpStatusCode.OK, (await app.SendWebhookAsync("orders/create", shop, order, both)).StatusCode);
        Assert.Equal("normalized", await app.ScalarAsync("SELECT outcome FROM webhook_deliveries WHERE delivery_id = $1", both));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM orders WHERE shop_id = $1 AND id = 7500002", shopId));
        Assert.Equal("""{"note":"ring twice \ud800 C:\\u0000dir","a\ud800":1}""", System.Text.Encoding.UTF8.GetString(
            PluginApp.StoreData.JsonSanitizer.StripNul("""{"note":"ring\u0000 twice \ud800 C:\\u0000dir","a\u0000\ud800":1}"""u8.ToArray())));
    }

    [Fact]
    public async Task SignedBodyPostgresRefuses_IsKeptAsFailedWithItsError_AndAnswered200SoShopifyStopsRetrying()
    {
        const string shop = "poison-range.myshopify.com";
        var shopId = await app.InstallShopAsync(shop);
        var order = ShopifyPayloads.Order(7_600_001);
        order["total_price"] = "123456789012345678.00"; // beyond numeric(14,2)
        var delivery = Guid.NewGuid().ToString();
        var logs = new LogCapture();
        await using var instance = app.CreateFactory(app.Database.ConnectionString, b => b.ConfigureLogging(l => l.AddProvider(logs)));
        using var client = instance.CreateClient(new() { BaseAddress = new Uri("https://localhost") });

        var response = await app.SendWebhookAsync("orders/create", shop, order.ToJsonString(), delivery, client: client);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(0, await app.CountAsync("SELECT count(*) FROM orders WHERE shop_id = $1 AND id = 7600001", shopId));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM webhook_deliveries WHERE delivery_id = $1 AND outcome = 'failed' AND error LIKE '22003%' AND body->>'id' = '7600001'", delivery));
        Assert.DoesNotContain(logs.Entries, e => e.Message.Contains("123456789012345678") || e.Exception is not null && e.Exception.ToString().Contains("123456789012345678"));
    }

    [Fact]
    public async Task DeliveryForAShopWeDoNotHold_KeepsNoPersonalData_AndGoesAfterAWeek()
    {
        const string stranger = "never-installed.myshopify.com";
        var delivery = Guid.NewGuid().ToString();
        var redact = Guid.NewGuid().ToString();

        var response = await app.SendWebhookAsync("customers/create", stranger, ShopifyPayloads.Customer(7_700_001, "private@example.com").ToJsonString(), delivery);
        await app.SendWebhookAsync("customers/redact", stranger, new JsonObject { ["shop_id"] = 9, ["shop_domain"] = stranger,
            ["customer"] = new JsonObject { ["id"] = 7_700_001, ["email"] = "private@example.com" }, ["orders_to_redact"] = new JsonArray() }.ToJsonString(), redact);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(2, await app.CountAsync("SELECT count(*) FROM webhook_deliveries WHERE delivery_id IN ($1, $2) AND outcome = 'unknown_shop' AND body ? 'withheld'", delivery, redact));
        Assert.Equal(0, await app.CountAsync("SELECT count(*) FROM webhook_deliveries WHERE shop_domain = $1 AND body::text LIKE '%private@example.com%'", stranger));

        app.Clock.Advance(TimeSpan.FromDays(8));
        try { await ActivatorUtilities.CreateInstance<RetentionJob>(app.Factory.Services).RunAsync(CancellationToken.None); }
        finally { app.Clock.Advance(TimeSpan.FromDays(-8)); }

        Assert.Equal(0, await app.CountAsync("SELECT count(*) FROM webhook_deliveries WHERE shop_domain = $1", stranger));
    }

    [Fact]
    public async Task DeliveryRecord_StaysWhileShopifyMayRetry_AndGoesAfter30Days_ItsRowsStay()
    {
        const string shop = "records-age.myshopify.com";
        var shopId = await app.InstallShopAsync(shop);
        var delivery = Guid.NewGuid().ToString();
        Assert.Equal(HttpStatusCode.OK, (await app.SendWebhookAsync("orders/create", shop, ShopifyPayloads.Order(7_950_001).ToJsonString(), delivery)).StatusCode);
        async Task RetentionIn(TimeSpan later)
        {
            app.Clock.Advance(later);
            try { await ActivatorUtilities.CreateInstance<RetentionJob>(app.Factory.Services).RunAsync(CancellationToken.None); }
            finally { app.Clock.Advance(-later); }
        }

        await RetentionIn(TimeSpan.FromDays(29));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM webhook_deliveries WHERE delivery_id = $1", delivery));

        await RetentionIn(TimeSpan.FromDays(31));
        Assert.Equal(0, await app.CountAsync("SELECT count(*) FROM webhook_deliveries WHERE delivery_id = $1", delivery));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM orders WHERE shop_id = $1 AND id = 7950001", shopId));
    }

    [Fact]
    public async Task LateRetryAfterShopRedact_KeepsNoPersonalData()
    {
        const string shop = "late-retry.myshopify.com";
        await app.InstallShopAsync(shop);
        await app.SendWebhookAsync("app/uninstalled", shop, new JsonObject { ["id"] = 3, ["myshopify_domain"] = shop }.ToJsonString());
        await app.SendWebhookAsync("shop/redact", shop, new JsonObject { ["shop_id"] = 3, ["shop_domain"] = shop }.ToJsonString());
        var delivery = Guid.NewGuid().ToString();

        await app.SendWebhookAsync("orders/updated", shop, ShopifyPayloads.Order(7_800_001).ToJsonString(), delivery);

        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM webhook_deliveries WHERE delivery_id = $1 AND body ? 'withheld' AND NOT body ? 'email'", delivery));
        Assert.Equal(0, await app.CountAsync("SELECT count(*) FROM orders WHERE id = 7800001"));
    }
}
