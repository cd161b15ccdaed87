using System.Net;
using System.Text;
using PluginApp.Tests.Infrastructure;

namespace PluginApp.Tests.Webhooks;

public sealed class WebhookIngestionTests(AppFixture app) : IClassFixture<AppFixture>, IAsyncLifetime
{
    private const string Shop = "ingest-shop.myshopify.com";

    public async Task InitializeAsync() => await app.InstallShopAsync(Shop);
    public Task DisposeAsync() => Task.CompletedTask;

    private Task<long> Orders(long id) => app.CountAsync("SELECT count(*) FROM orders WHERE id = $1", id);
    private Task<long> Deliveries(string id) => app.CountAsync("SELECT count(*) FROM webhook_deliveries WHERE delivery_id = $1", id);

    [Fact]
    public async Task OrderCreate_ValidHmac_StoresRawDeliveryOrderAndLines()
    {
        var delivery = Guid.NewGuid().ToString();
        var response = await app.SendWebhookAsync("orders/create", Shop, ShopifyPayloads.Order(1001, lines: 3).ToJsonString(), delivery);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(1, await Deliveries(delivery));
        Assert.Equal(1, await Orders(1001));
        Assert.Equal(3, await app.CountAsync("SELECT count(*) FROM order_lines WHERE order_id = 1001"));
        Assert.Equal("normalized", await app.ScalarAsync("SELECT outcome FROM webhook_deliveries WHERE delivery_id = $1", delivery));
    }

    [Theory]
    [InlineData("forged")]
    [InlineData("missing")]
    [InlineData("tampered")]
    public async Task OrderCreate_BadSignature_Returns401AndStoresNothing(string how)
    {
        var json = ShopifyPayloads.Order(1002).ToJsonString();
        var signed = ShopifySigning.WebhookHmac(AppFixture.ClientSecret, Encoding.UTF8.GetBytes(json));
        var (body, hmac) = how switch
        {
            "forged" => (json, ShopifySigning.WebhookHmac("not-the-secret-not-the-secret-00000", Encoding.UTF8.GetBytes(json))),
            "missing" => (json, ""),
            _ => (json.Replace("\"financial_status\":\"paid\"", "\"financial_status\":\"refunded\""), signed),
        };
        if (how == "tampered") Assert.NotEqual(json, body);
        var delivery = Guid.NewGuid().ToString();

        var response = await app.SendWebhookAsync("orders/create", Shop, body, delivery, hmac);

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Equal(0, await Deliveries(delivery));
        Assert.Equal(0, await Orders(1002));
    }

    [Fact]
    public async Task OrderCreate_TwentyConcurrentCopies_StoresOneOrderAndOneDelivery()
    {
        var delivery = Guid.NewGuid().ToString();
        var json = ShopifyPayloads.Order(1003, lines: 4).ToJsonString();

        var responses = await Task.WhenAll(Enumerable.Range(0, 20).Select(_ => app.SendWebhookAsync("orders/create", Shop, json, delivery)));

        Assert.All(responses, r => Assert.Equal(HttpStatusCode.OK, r.StatusCode));
        Assert.Equal(1, await Deliveries(delivery));
        Assert.Equal(1, await Orders(1003));
        Assert.Equal(4, await app.CountAsync("SELECT count(*) FROM order_lines WHERE order_id = 1003"));
    }

    [Fact]
    public async Task Webhook_MalformedJson_Returns400WithReasonAndWritesNothing()
    {
        var delivery = Guid.NewGuid().ToString();
        var response = await app.SendWebhookAsync("orders/create", Shop, "{\"id\": 1004, \"line_items\": [", delivery);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("not valid JSON", await response.Content.ReadAsStringAsync());
        Assert.Equal(0, await Deliveries(delivery));
    }

    [Fact]
    public async Task OrderCreate_LineWithoutQuantity_Returns400AndWritesNoHalfRows()
    {
        var order = ShopifyPayloads.Order(1005, customerId: 7005, lines: 3);
        order["line_items"]![2]!.AsObject().Remove("quantity");
        var delivery = Guid.NewGuid().ToString();

        var response = await app.SendWebhookAsync("orders/create", Shop, order.ToJsonString(), delivery);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("quantity", await response.Content.ReadAsStringAsync());
        Assert.Equal(0, await Deliveries(delivery));
        Assert.Equal(0, await Orders(1005));
        Assert.Equal(0, await app.CountAsync("SELECT count(*) FROM order_lines WHERE order_id = 1005"));
        Assert.Equal(0, await app.CountAsync("SELECT count(*) FROM customers WHERE id = 7005"));
    }

    [Fact]
    public async Task Webhook_BodyOverOneMebibyte_Returns413AndWritesNothing()
    {
        var order = ShopifyPayloads.Order(1006);
        order["note"] = new string('x', 1024 * 1024);
        var delivery = Guid.NewGuid().ToString();

        var response = await app.SendWebhookAsync("orders/create", Shop, order.ToJsonString(), delivery);

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        Assert.Equal(0, await Deliveries(delivery));
    }

    [Fact]
    public async Task Webhook_ActedOn_KeepsItsRowsAndOnlyASummaryOfItsBody_NoSecondCopyOfTheShoppersData()
    {
        var body = ShopifyPayloads.Order(1090).ToJsonString();
        var delivery = Guid.NewGuid().ToString();

        var response = await app.SendWebhookAsync("orders/create", Shop, body, delivery);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("ada@example.com", await app.ScalarAsync("SELECT o.email FROM orders o JOIN shops s ON s.id = o.shop_id WHERE s.domain = $1 AND o.id = 1090", Shop));
        var record = System.Text.Json.Nodes.JsonNode.Parse((string)(await app.ScalarAsync("SELECT body::text FROM webhook_deliveries WHERE delivery_id = $1", delivery))!)!;
        Assert.Equal("normalized", await app.ScalarAsync("SELECT outcome FROM webhook_deliveries WHERE delivery_id = $1", delivery));
        Assert.Equal(1090, record["id"]!.GetValue<long>());
        Assert.Equal(System.Text.Encoding.UTF8.GetByteCount(body), record["bytes"]!.GetValue<int>());
        Assert.Equal(Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(body))), record["sha256"]!.GetValue<string>());
        Assert.StartsWith("acted on", record["withheld"]!.GetValue<string>());
        Assert.DoesNotContain("ada@example.com", record.ToJsonString());
    }

    [Fact]
    public async Task Webhook_UnknownTopic_IsStoredRawAndAnswered200()
    {
        var delivery = Guid.NewGuid().ToString();
        var response = await app.SendWebhookAsync("inventory_levels/update", Shop, "{\"inventory_item_id\": 5, \"available\": 3}", delivery);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("stored_raw", await app.ScalarAsync("SELECT outcome FROM webhook_deliveries WHERE delivery_id = $1", delivery));
        Assert.Equal(3L, Convert.ToInt64(await app.ScalarAsync("SELECT (body->>'available')::int FROM webhook_deliveries WHERE delivery_id = $1", delivery)));
    }

    [Fact]
    public async Task Webhook_UnknownShop_IsRecordedWithoutNormalizedRows()
    {
        var delivery = Guid.NewGuid().ToString();
        var response = await app.SendWebhookAsync("orders/create", "stranger.myshopify.com", ShopifyPayloads.Order(1007).ToJsonString(), delivery);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("unknown_shop", await app.ScalarAsync("SELECT outcome FROM webhook_deliveries WHERE delivery_id = $1", delivery));
        Assert.Equal(0, await Orders(1007));
    }

    [Fact]
    public async Task Webhook_AfterUninstall_IsRecordedWithoutNormalizedRows()
    {
        const string gone = "gone-shop.myshopify.com";
        await app.InstallShopAsync(gone);
        await app.SendWebhookAsync("app/uninstalled", gone, "{\"id\": 1, \"myshopify_domain\": \"gone-shop.myshopify.com\"}");
        var delivery = Guid.NewGuid().ToString();

        var response = await app.SendWebhookAsync("orders/create", gone, ShopifyPayloads.Order(1008).ToJsonString(), delivery);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("shop_not_installed", await app.ScalarAsync("SELECT outcome FROM webhook_deliveries WHERE delivery_id = $1", delivery));
        Assert.Equal("the shop is not installed", await app.ScalarAsync("SELECT body->>'withheld' FROM webhook_deliveries WHERE delivery_id = $1", delivery));
        Assert.Equal(0, await Orders(1008));
        Assert.Null(await app.ScalarAsync("SELECT access_token_enc FROM shops WHERE domain = $1", gone));
    }

    [Fact]
    public async Task OrdersUpdated_ArrivingBeforeOlderCreate_KeepsTheNewerVersion()
    {
        var newer = ShopifyPayloads.Order(1009, updatedAt: "2026-07-03T12:00:00-04:00", financialStatus: "refunded");
        var older = ShopifyPayloads.Order(1009, updatedAt: "2026-07-02T12:00:00-04:00", financialStatus: "paid");

        await app.SendWebhookAsync("orders/updated", Shop, newer.ToJsonString());
        await app.SendWebhookAsync("orders/create", Shop, older.ToJsonString());

        Assert.Equal("refunded", await app.ScalarAsync("SELECT financial_status FROM orders WHERE id = 1009"));
    }

    [Fact]
    public async Task Webhook_MissingTopicHeader_Returns400()
    {
        var json = "{\"id\": 1}";
        var req = new HttpRequestMessage(HttpMethod.Post, "/webhooks") { Content = new StringContent(json, Encoding.UTF8, "application/json") };
        req.Headers.Add("X-Shopify-Hmac-Sha256", ShopifySigning.WebhookHmac(AppFixture.ClientSecret, Encoding.UTF8.GetBytes(json)));
        req.Headers.Add("X-Shopify-Shop-Domain", Shop);

        var response = await app.Client.SendAsync(req);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
    }
}
