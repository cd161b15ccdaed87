using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using PluginApp.Tests.Infrastructure;

namespace PluginApp.Tests.Stripe;

/// <summary>Connecting a store's Stripe account through the admin API: validated, encrypted, never echoed, and only ever the session's own shop's.</summary>
public sealed class StripeAdminTests(StripeFixture app) : IClassFixture<StripeFixture>
{
    private const string Key = "rk_live_51AbCdEfGhIjKlMnOp";
    private const string Secret = "whsec_0123456789abcdefABCDEF0123456789";

    private async Task<JsonElement> StatusAsync(string shop) =>
        (await (await app.Client.SendAsync(app.StripeAdmin(HttpMethod.Get, shop))).Content.ReadFromJsonAsync<JsonElement>()).GetProperty("status");

    [Theory]
    [InlineData("pk_live_51AbCdEfGhIjKlMnOp", Secret, "restrictedKey", "publishable key")]
    [InlineData("51AbCdEfGhIjKlMnOp", Secret, "restrictedKey", "rk_live_")]
    [InlineData(Key, "0123456789abcdef", "webhookSecret", "whsec_")]
    [InlineData(Key, "", "webhookSecret", "whsec_")]
    public async Task Connect_WithABadPrefix_Is400BesideTheField_AndStoresNothing(string key, string secret, string field, string says)
    {
        const string shop = "stripe-admin-bad.myshopify.com";
        var shopId = await app.InstallShopAsync(shop);

        var response = await app.Client.SendAsync(app.StripeAdmin(HttpMethod.Put, shop, new { restrictedKey = key, webhookSecret = secret }));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var errors = (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("errors");
        Assert.Contains(says, errors.GetProperty(field)[0].GetString());
        Assert.Equal(0, await app.CountAsync("SELECT count(*) FROM stripe_connections WHERE shop_id = $1", shopId));
    }

    [Fact]
    public async Task Connect_AnswersTheEndpointToPaste_NeverEchoesTheSecrets_AndStoresThemEncrypted()
    {
        const string shop = "stripe-admin-ok.myshopify.com";
        var shopId = await app.InstallShopAsync(shop);

        var response = await app.Client.SendAsync(app.StripeAdmin(HttpMethod.Put, shop, new { restrictedKey = Key, webhookSecret = Secret }));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var text = await response.Content.ReadAsStringAsync();
        Assert.DoesNotContain("51AbCdEf", text);
        Assert.DoesNotContain("0123456789abcdefABCDEF", text);
        var status = JsonDocument.Parse(text).RootElement.GetProperty("status");
        Assert.True(status.GetProperty("connected").GetBoolean());
        Assert.True(status.GetProperty("livemode").GetBoolean());
        Assert.Matches("^https://app\\.test\\.example/stripe/webhooks/[A-Za-z0-9_-]{43}$", status.GetProperty("endpointUrl").GetString());
        Assert.Equal(0, await app.CountAsync(
            "SELECT count(*) FROM stripe_connections WHERE restricted_key_enc LIKE '%51AbCdEf%' OR webhook_secret_enc LIKE '%0123456789abcdef%'"));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM stripe_connections WHERE shop_id = $1", shopId));

        // Replacing the key keeps the endpoint the merchant pasted into Stripe.
        var endpoint = status.GetProperty("endpointUrl").GetString();
        await app.Client.SendAsync(app.StripeAdmin(HttpMethod.Put, shop, new { restrictedKey = "rk_live_51ZzZzZzZzZzZz", webhookSecret = Secret }));
        Assert.Equal(endpoint, (await StatusAsync(shop)).GetProperty("endpointUrl").GetString());
    }

    [Fact]
    public async Task ShopA_CannotSeeChangeOrRemoveShopBsConnection()
    {
        const string shopA = "stripe-tenant-a.myshopify.com", shopB = "stripe-tenant-b.myshopify.com";
        var idA = await app.InstallShopAsync(shopA);
        var idB = await app.InstallShopAsync(shopB);
        var pathB = await app.ConnectAsync(shopB, Key, Secret);
        var encB = await app.ScalarAsync("SELECT restricted_key_enc FROM stripe_connections WHERE shop_id = $1", idB);

        var seenByA = await (await app.Client.SendAsync(app.StripeAdmin(HttpMethod.Get, shopA))).Content.ReadAsStringAsync();
        var deleteByA = await app.Client.SendAsync(app.StripeAdmin(HttpMethod.Delete, shopA));
        await app.Client.SendAsync(app.StripeAdmin(HttpMethod.Put, shopA, new { restrictedKey = "rk_test_shopaown000", webhookSecret = "whsec_shopaown00000000" }));
        var pageOfA = await (await app.Client.GetAsync($"/admin/privacy?shop={shopA}&embedded=1&id_token={app.SessionToken(shopA)}")).Content.ReadAsStringAsync();

        Assert.Contains("\"connected\":false", seenByA);
        Assert.DoesNotContain(pathB, seenByA);
        Assert.Equal(HttpStatusCode.NotFound, deleteByA.StatusCode);
        Assert.DoesNotContain(pathB, pageOfA);
        Assert.Equal(encB, await app.ScalarAsync("SELECT restricted_key_enc FROM stripe_connections WHERE shop_id = $1", idB));
        Assert.Equal(new Uri((await StatusAsync(shopB)).GetProperty("endpointUrl").GetString()!).AbsolutePath, pathB);
        Assert.NotEqual(pathB, new Uri((await StatusAsync(shopA)).GetProperty("endpointUrl").GetString()!).AbsolutePath);
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM stripe_connections WHERE shop_id = $1", idA));
    }

    [Fact]
    public async Task Disconnect_DeletesTheConnection_AndItsEndpointAnswers404()
    {
        const string shop = "stripe-disconnect.myshopify.com";
        var shopId = await app.InstallShopAsync(shop);
        var path = await app.ConnectAsync(shop, Key, Secret);

        Assert.Equal(HttpStatusCode.NoContent, (await app.Client.SendAsync(app.StripeAdmin(HttpMethod.Delete, shop))).StatusCode);

        Assert.Equal(0, await app.CountAsync("SELECT count(*) FROM stripe_connections WHERE shop_id = $1", shopId));
        Assert.False((await StatusAsync(shop)).GetProperty("connected").GetBoolean());
        var payload = "{}";
        Assert.Equal(HttpStatusCode.NotFound, (await app.PostEventAsync(path, payload, StripeFixture.Sign(payload, app.Clock.GetUtcNow(), Secret))).StatusCode);
    }

    [Fact]
    public async Task ShopRedact_DeletesTheShopsConnectionAndEvents()
    {
        const string shop = "stripe-redact.myshopify.com";
        var shopId = await app.InstallShopAsync(shop);
        await app.ConnectAsync(shop, Key, Secret);
        await app.ScalarAsync("""
            INSERT INTO stripe_events (connection_id, shop_id, id, type, api_version, livemode, created_at, received_at, payload)
            SELECT id, shop_id, 'evt_redact', 'charge.dispute.created', 'v', false, now(), now(), '{}' FROM stripe_connections WHERE shop_id = $1
            """, shopId);
        Assert.Equal(HttpStatusCode.OK, (await app.SendWebhookAsync("app/uninstalled", shop, $"{{\"id\": 5, \"myshopify_domain\": \"{shop}\"}}")).StatusCode);

        var response = await app.SendWebhookAsync("shop/redact", shop, $"{{\"shop_id\": 5, \"shop_domain\": \"{shop}\"}}");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(0, await app.CountAsync("SELECT count(*) FROM stripe_connections WHERE shop_id = $1", shopId));
        Assert.Equal(0, await app.CountAsync("SELECT count(*) FROM stripe_events WHERE shop_id = $1", shopId));
    }
}
