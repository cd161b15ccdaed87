using System.Net;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using PluginApp.Demo;
using PluginApp.Tests.Infrastructure;

namespace PluginApp.Tests.Storefront;

/// <summary>
/// The demo storefront's product pages (where the block's links lead): the template scripts/demo.sh renders from the
/// block's Liquid with scripts/theme/demo-product-page.json, filled by the app in the Demo environment from its products.
/// </summary>
public sealed partial class DemoProductPageTests(AppFixture app) : IClassFixture<AppFixture>
{
    [Fact]
    public async Task DemoEnvironment_ProductLinks_LeadToTheProductPageWithItsBlock()
    {
        var template = Path.Combine(Path.GetTempPath(), $"pluginapp-demo-product-page-{Guid.NewGuid():N}.html");
        var context = JsonNode.Parse(await File.ReadAllTextAsync(Path.Combine(ThemeBlockRenderer.RepoRoot, "scripts", "theme", "demo-product-page.json")))!;
        await File.WriteAllTextAsync(template, await ThemeBlockRenderer.RenderPageAsync("product-upsells", context.AsObject()));
        try
        {
            await using var demo = app.CreateFactory(app.Database.ConnectionString, b =>
            {
                b.UseEnvironment("Demo");
                b.UseSetting("Demo:ProductPageTemplate", template);
            });
            using var client = demo.CreateClient(new WebApplicationFactoryClientOptions
            {
                BaseAddress = new Uri("https://localhost"), AllowAutoRedirect = false, HandleCookies = false,
            });
            await DemoStoreInstalledAsync(client);

            const string title = "Enamel \"Camp\" Mug <Blue> & White";
            var mug = ShopifyPayloads.Product(880_001, variants: 1);
            mug["title"] = title;
            mug["handle"] = "enamel-camp-mug";
            await OkAsync(app.SendWebhookAsync("products/create", DemoExtensions.Shop, mug.ToJsonString()), "products/create");
            var tin = ShopifyPayloads.Product(880_002, variants: 1);
            tin["title"] = "Tea Tin";
            tin["handle"] = null; // the block links a product without a handle by its id
            tin["image"] = null;
            tin["images"] = new JsonArray();
            await OkAsync(app.SendWebhookAsync("products/create", DemoExtensions.Shop, tin.ToJsonString()), "products/create");

            var page = await client.GetAsync("/products/enamel-camp-mug");
            var html = await page.Content.ReadAsStringAsync();
            Assert.Equal(HttpStatusCode.OK, page.StatusCode);
            Assert.Equal("text/html", page.Content.Headers.ContentType?.MediaType);
            Assert.Equal(title, WebUtility.HtmlDecode(Heading().Match(html).Groups[1].Value));
            Assert.Equal(title, WebUtility.HtmlDecode(Title().Match(html).Groups[1].Value));
            Assert.DoesNotContain("<Blue>", html, StringComparison.Ordinal);
            Assert.Contains("12.00", html, StringComparison.Ordinal);
            Assert.Equal("https://cdn.example.com/880001.jpg", Picture(html));
            // The product block, for this product, with its script and stylesheet; no placeholder left unfilled.
            Assert.Contains("data-pa-upsells", html, StringComparison.Ordinal);
            Assert.Contains("data-product-id=\"880001\"", html, StringComparison.Ordinal);
            Assert.Contains("/assets/pluginapp-upsells.js", html, StringComparison.Ordinal);
            Assert.DoesNotContain("__PA_", html, StringComparison.Ordinal);

            var byId = await client.GetAsync("/products/880002");
            var byIdHtml = await byId.Content.ReadAsStringAsync();
            Assert.Equal(HttpStatusCode.OK, byId.StatusCode);
            Assert.Equal("Tea Tin", Heading().Match(byIdHtml).Groups[1].Value);
            Assert.StartsWith("data:image/svg+xml,", Picture(byIdHtml), StringComparison.Ordinal); // the placeholder, not a broken image

            Assert.Equal(HttpStatusCode.NotFound, (await client.GetAsync("/products/no-such-product")).StatusCode);

            // The preview opens the most ordered product's page.
            var order = ShopifyPayloads.Order(9_880_001, customerId: 88_001, lines: 1);
            order["line_items"]![0]!["product_id"] = 880_001;
            order["line_items"]![0]!["variant_id"] = 8_800_010;
            await OkAsync(app.SendWebhookAsync("orders/create", DemoExtensions.Shop, order.ToJsonString()), "orders/create");
            var preview = await client.GetAsync("/demo/storefront");
            Assert.Equal(HttpStatusCode.Redirect, preview.StatusCode);
            Assert.Equal("/products/enamel-camp-mug", preview.Headers.Location?.OriginalString);

            // Outside Demo there are no product pages.
            Assert.Equal(HttpStatusCode.NotFound, (await app.Client.GetAsync("/products/enamel-camp-mug")).StatusCode);
        }
        finally
        {
            File.Delete(template);
        }
    }

    private static async Task DemoStoreInstalledAsync(HttpClient client)
    {
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while ((await client.GetAsync("/api/admin/shop")).StatusCode != HttpStatusCode.OK)
        {
            if (DateTime.UtcNow > deadline) Assert.Fail("the demo store was not installed within 20 s");
            await Task.Delay(200);
        }
    }

    private static async Task OkAsync(Task<HttpResponseMessage> send, string what)
    {
        var response = await send;
        Assert.True(response.IsSuccessStatusCode, $"{what} answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
    }

    /// <summary>The product picture's address, as the browser reads the attribute.</summary>
    private static string Picture(string html) => WebUtility.HtmlDecode(ProductImage().Match(html).Groups[1].Value);

    [GeneratedRegex("<img class=\"storefront-product__image\" src=\"([^\"]*)\"")]
    private static partial Regex ProductImage();

    [GeneratedRegex("<h1>(.*?)</h1>")]
    private static partial Regex Heading();

    [GeneratedRegex("<title>(.*?)</title>")]
    private static partial Regex Title();
}
