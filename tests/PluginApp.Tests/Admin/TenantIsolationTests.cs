using System.Net;
using System.Text.Json;
using PluginApp.Tests.Infrastructure;

namespace PluginApp.Tests.Admin;

public sealed class TenantIsolationTests(AppFixture app) : IClassFixture<AppFixture>, IAsyncLifetime
{
    private const string ShopA = "tenant-a.myshopify.com";
    private const string ShopB = "tenant-b.myshopify.com";

    public async Task InitializeAsync()
    {
        await app.InstallShopAsync(ShopA);
        await app.InstallShopAsync(ShopB);
        await app.SendWebhookAsync("orders/create", ShopA, ShopifyPayloads.Order(7001001, customerId: 71).ToJsonString());
        await app.SendWebhookAsync("orders/create", ShopB, ShopifyPayloads.Order(7002001, customerId: 72).ToJsonString());
        await app.SendWebhookAsync("products/create", ShopB, ShopifyPayloads.Product(7002002).ToJsonString());
        await app.SendWebhookAsync("customers/data_request", ShopB,
            "{\"shop_domain\":\"tenant-b.myshopify.com\",\"customer\":{\"id\":72},\"orders_requested\":[7002001],\"data_request\":{\"id\":1}}");
    }

    public Task DisposeAsync() => Task.CompletedTask;

    private async Task<string> Get(string path, string shop)
    {
        var response = await app.Client.SendAsync(app.AdminGet(path, shop));
        return response.StatusCode == HttpStatusCode.OK ? await response.Content.ReadAsStringAsync() : $"HTTP {(int)response.StatusCode}";
    }

    [Fact]
    public async Task ShopA_CannotReachShopBRowsThroughAnyAdminRoute()
    {
        Assert.Equal("HTTP 404", await Get("/api/admin/orders/7002001", ShopA));
        Assert.Equal("HTTP 404", await Get("/api/admin/customers/72", ShopA));
        foreach (var path in new[] { "/api/admin/orders", "/api/admin/products", "/api/admin/data-requests", "/api/admin/webhooks", "/api/admin/shop" })
        {
            var body = await Get(path, ShopA);
            Assert.DoesNotContain("7002001", body);
            Assert.DoesNotContain("7002002", body);
            Assert.DoesNotContain(ShopB, body);
        }
    }

    [Fact]
    public async Task ShopA_CannotDownloadShopBsExportNorRetryItsCalls_NorSeeThemOnItsPages()
    {
        await app.SendWebhookAsync("customers/data_request", ShopB,
            "{\"shop_domain\":\"tenant-b.myshopify.com\",\"customer\":{\"id\":7009999},\"orders_requested\":[],\"data_request\":{\"id\":2}}");
        var requestOfB = (long)(await app.ScalarAsync("SELECT id FROM customer_data_requests WHERE customer_id = 7009999"))!;
        var shopB = (long)(await app.ScalarAsync("SELECT id FROM shops WHERE domain = $1", ShopB))!;
        var callOfB = (long)(await app.ScalarAsync("""
            INSERT INTO outbox_messages (shop_id, resource_key, operation, variables, idempotency_key, created_at, next_attempt_at, attempts, failed_at)
            VALUES ($1, 'gid://shopify/Order/7002001', 'tagsAdd', '{}'::jsonb, 'tenant-b-call', now(), now(), 10, now()) RETURNING id
            """, shopB))!;

        Assert.Equal("HTTP 404", await Get($"/api/admin/data-requests/{requestOfB}/export", ShopA));
        var retry = app.AdminGet($"/api/admin/outbox/{callOfB}/retry", ShopA);
        retry.Method = HttpMethod.Post;
        Assert.Equal(HttpStatusCode.NotFound, (await app.Client.SendAsync(retry)).StatusCode);
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM outbox_messages WHERE id = $1 AND failed_at IS NOT NULL", callOfB));
        foreach (var page in new[] { "/admin/privacy", "/admin/operations" })
        {
            var html = await (await app.Client.GetAsync($"{page}?shop={ShopA}&embedded=1&id_token={app.SessionToken(ShopA)}")).Content.ReadAsStringAsync();
            Assert.Contains("<h1>", html);
            Assert.DoesNotContain("7009999", html);
            Assert.DoesNotContain("7002001", html);
        }
    }

    [Fact]
    public async Task ShopB_SeesItsOwnRows()
    {
        var order = JsonDocument.Parse(await Get("/api/admin/orders/7002001", ShopB)).RootElement;
        Assert.Equal(2, order.GetProperty("lines").GetArrayLength());
        Assert.Contains("7002002", await Get("/api/admin/products", ShopB));
        Assert.Contains("\"customerId\":72", await Get("/api/admin/data-requests", ShopB));
        var shop = JsonDocument.Parse(await Get("/api/admin/shop", ShopA)).RootElement;
        Assert.Equal(1, shop.GetProperty("orders").GetInt32());
    }
}
