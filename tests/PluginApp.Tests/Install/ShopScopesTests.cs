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
