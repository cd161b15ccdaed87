using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using PluginApp.Install;
using PluginApp.Shopify;
using PluginApp.Tests.Infrastructure;

namespace PluginApp.Tests.Install;

/// <summary>The shop's granted scopes against those the app asks for (the admin's notice is tested in AdminPagesTests).</summary>
public sealed class ShopScopesTests(AppFixture app) : IClassFixture<AppFixture>
{
    [Theory]
    [InlineData("read_orders,write_orders", "write_orders", "")]        // Shopify lists write_x alone: it grants read_x
    [InlineData("read_orders,write_orders", "read_orders", "write_orders")]
    [InlineData("read_orders,read_customers", "read_orders", "read_customers")]
    [InlineData("read_orders, write_customers", "read_orders,read_customers,write_customers", "")]
    public void Missing_CountsAWriteScopeAsGrantingItsRead(string requested, string granted, string missing) =>
        Assert.Equal(missing, string.Join(',', ShopScopes.Missing(requested, granted)));

    [Fact]
    public void EveryScopeTheAppAsksFor_SaysWhatItIsFor()
    {
        var asked = app.Factory.Services.GetRequiredService<IOptions<ShopifyOptions>>().Value.Scopes.Split(',');
        var described = app.Factory.Services.GetServices<ScopeUse>().Select(u => u.Scope).ToHashSet();
        Assert.Equal([], asked.Except(described).ToArray());
    }

    /// <summary>
    /// app/scopes_update names its shop by a global id (Shopify's sample payload, API 2025-07 on): a delivery for this shop
    /// is applied, one naming another Shopify shop is refused. Until 6 Dec 2026 every such delivery was refused as malformed.
    /// </summary>
    [Fact]
    public async Task AScopesUpdate_NamingItsShopByGlobalId_IsApplied_AndOneNamingAnotherShopIsRefused()
    {
        const string shop = "scopes-gid.myshopify.com";
        var shopId = await app.InstallShopAsync(shop);
        await app.ScalarAsync("UPDATE shops SET shopify_shop_id = 548380009 WHERE id = $1", shopId);
        string Body(long shopifyShopId, string current, string at) =>
            $$"""{"id":1,"shop_id":"gid://shopify/Shop/{{shopifyShopId}}","previous":["read_orders"],"current":["{{current}}"],"updated_at":"{{at}}"}""";

        var applied = await app.SendWebhookAsync("app/scopes_update", shop, Body(548380009, "read_products", "2030-01-01T00:00:00.000Z"));
        var replayed = await app.SendWebhookAsync("app/scopes_update", shop, Body(548380010, "read_customers", "2030-01-02T00:00:00.000Z"));

        Assert.Equal(HttpStatusCode.OK, applied.StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, replayed.StatusCode);
        Assert.Equal("read_products", await app.ScalarAsync("SELECT scopes FROM shops WHERE id = $1", shopId));
    }

    [Theory]
    [InlineData("""{"id":1,"current":"read_orders","updated_at":"2030-01-01T00:00:00Z"}""")]
    [InlineData("""{"id":1,"current":["read_orders,write_orders"],"updated_at":"2030-01-01T00:00:00Z"}""")]
    [InlineData("""{"id":1,"current":["read_orders"]}""")]
    public async Task AMalformedScopesUpdate_IsRefused_AndTheGrantStays(string body)
    {
        const string shop = "scopes-malformed.myshopify.com";
        var shopId = await app.InstallShopAsync(shop);
        var before = await app.ScalarAsync("SELECT scopes FROM shops WHERE id = $1", shopId);

        var response = await app.SendWebhookAsync("app/scopes_update", shop, body);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal(before, await app.ScalarAsync("SELECT scopes FROM shops WHERE id = $1", shopId));
    }
}
