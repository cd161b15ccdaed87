using System.Net;
using PluginApp.Tests.Infrastructure;

namespace PluginApp.Tests.Recommendations;

/// <summary>The app on a loopback port, for what only a real HTTP server shows (the in-memory test server frames nothing).</summary>
public sealed class OverHttpAppFixture : AppFixture
{
    protected override bool ServeOverHttp => true;
}

/// <summary>Storefront answers as they leave the server for Shopify's app proxy.</summary>
public sealed class ProxyWireTests(OverHttpAppFixture app) : IClassFixture<OverHttpAppFixture>
{
    [Fact]
    public async Task Answers_GoOutWhole_WithTheirLength_NotChunked()
    {
        var seed = new StoreSeed(app, "proxy-wire.myshopify.com");
        await seed.SeedAsync(customersPerGroup: 3); // no model: bestsellers answer, under the same rules

        foreach (var query in new[] { "placement=product&product_id=105&limit=4", "placement=cart&variant_ids=1050,1070&limit=3" })
        {
            var response = await app.Client.GetAsync(StoreSeed.Signed("/proxy/recommendations", seed.Shop, seed.ToShopify(query), app.Clock.GetUtcNow()));
            var body = await response.Content.ReadAsByteArrayAsync();
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            // One write with its length: a streamed answer went out chunked, its closing chunk in a second send.
            Assert.NotEqual(true, response.Headers.TransferEncodingChunked);
            Assert.Equal(body.Length, response.Content.Headers.ContentLength);
            Assert.Equal("application/json; charset=utf-8", response.Content.Headers.ContentType?.ToString());
            Assert.NotEmpty(System.Text.Json.JsonDocument.Parse(body).RootElement.GetProperty("items").EnumerateArray());
        }
    }
}
