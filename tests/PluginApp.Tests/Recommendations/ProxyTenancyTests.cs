using System.Net;
using PluginApp.Tests.Infrastructure;

namespace PluginApp.Tests.Recommendations;

public sealed class ProxyTenancyTests(AppFixture app) : IClassFixture<AppFixture>
{
    [Fact]
    public async Task ShopA_NeverReceivesShopBProducts_AndCannotActAsShopB()
    {
        var a = new StoreSeed(app, "tenant-proxy-a.myshopify.com");
        await a.SeedAsync(customersPerGroup: 5);
        var b = new StoreSeed(app, "tenant-proxy-b.myshopify.com");
        await b.SeedAsync(customersPerGroup: 5);
        await app.SendWebhookAsync("products/create", b.Shop, ShopifyPayloads.Product(b.P(777)).ToJsonString());
        await b.TrainAsync();

        var answer = await a.RecommendAsync($"placement=product&product_id={b.P(777) - a.Offset}&limit=12&visitor_id={a.VisitorIn("model", "v-t")}");
        Assert.DoesNotContain(b.P(777), answer.GetProperty("items").EnumerateArray().Select(i => i.GetProperty("product_id").GetInt64()));
        Assert.All(a.Products(answer), p => Assert.InRange(p, 101, 112));
        Assert.Equal("bestsellers", answer.GetProperty("path").GetString()); // A has no model of its own

        // A request signed for shop A cannot be replayed as shop B.
        var signedForA = StoreSeed.Signed("/proxy/recommendations", a.Shop, "placement=product&product_id=101", app.Clock.GetUtcNow());
        var asB = signedForA.Replace($"shop={a.Shop}", $"shop={b.Shop}");
        Assert.Equal(HttpStatusCode.Unauthorized, (await app.Client.GetAsync(asB)).StatusCode);
    }
}
