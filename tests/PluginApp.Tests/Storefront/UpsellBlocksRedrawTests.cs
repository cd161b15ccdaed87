using System.Text.Json.Nodes;
using Microsoft.Playwright;

namespace PluginApp.Tests.Storefront;

/// <summary>
/// The cart upsells block on a theme that draws its cart section again after each cart change (Shopify's Section Rendering
/// API, as Dawn does): the block's element is replaced by the server's new markup, which the script must start.
/// </summary>
public sealed partial class UpsellBlocksTests
{
    private const string UpsellsBlock = "[data-pa-upsells]";

    /// <summary>The cart page with the cart upsells block, opened once its products show.</summary>
    private async Task<IPage> OpenCartWithUpsellsAsync(long cartProduct, params string[] initScripts)
    {
        var storefront = sf.Storefront;
        storefront.SetPage("/cart", await ThemeBlockRenderer.RenderPageAsync("cart-upsells", new JsonObject
        {
            ["template"] = "cart",
            ["settings"] = new JsonObject { ["product_count"] = Limit, ["layout"] = "carousel", ["show_add_button"] = true },
        }));
        await storefront.WarmAsync($"/recommendations?placement=cart&variant_ids={cartProduct * 10}&limit={Limit}&visitor_id=warm-up");
        var page = await sf.NewPageAsync();
        foreach (var script in initScripts) await page.Context.AddInitScriptAsync(script);
        await page.GotoAsync(storefront.BaseUrl + "/cart", new PageGotoOptions { WaitUntil = WaitUntilState.Load });
        await WaitForStateAsync(page, "ready");
        return page;
    }

    /// <summary>Waits until the block in the page is not the one the theme replaced and is <paramref name="state"/>.</summary>
    private async Task WaitForNewBlockAsync(IPage page, string state)
    {
        try
        {
            await page.WaitForFunctionAsync($$"""
                () => { const b = document.querySelector('{{UpsellsBlock}}'); return !!window.__paOld && b !== window.__paOld && b.getAttribute('data-pa-state') === '{{state}}'; }
                """, null, new PageWaitForFunctionOptions { Timeout = 10_000 });
        }
        catch (TimeoutException)
        {
            Assert.Fail($"the block drawn again stayed '{await StateAsync(page) ?? "(never started)"}' instead of '{state}'; last proxied calls: {Describe(sf.Storefront.Calls.TakeLast(4))}");
        }
    }

    /// <summary>
    /// The theme draws its cart section again, by innerHTML as Dawn does and by replacing the block's element: each time the
    /// new block asks once (not twice, though the script sees it and its cards come in) and shows its products in the space
    /// the old one had, nothing on the page moving. Until 6 Dec 2026 it stayed a skeleton until the page was loaded again.
    /// </summary>
    [Fact]
    public async Task CartBlock_TheThemeDrawsItsSectionAgain_TheNewBlockShowsItsProductsInTheSameSpace()
    {
        await sf.TrainedShopAsync();
        var storefront = sf.Storefront;
        storefront.Behaviour = ProxyBehaviour.Forward;
        var (cartProduct, _) = StorefrontFixture.Catalog[3];
        storefront.SetCart((cartProduct, cartProduct * 10, 1));
        IPage? page = null;
        try
        {
            page = await OpenCartWithUpsellsAsync(cartProduct, StorefrontFixture.ThemeRedraw);
            await page.WaitForFunctionAsync("() => [...document.querySelectorAll('.pa-card img')].every((i) => i.complete)",
                null, new PageWaitForFunctionOptions { Timeout = 10_000 });
            var before = await BoxesAsync(page);

            foreach (var how in new[] { "inner", "replace" })
            {
                var asked = storefront.Calls.Count;
                await page.EvaluateAsync("(how) => window.__paRedraw('[data-pa-upsells]', how)", how);
                await WaitForNewBlockAsync(page, "ready");
                Assert.True(await page.Locator($"{UpsellsBlock} .pa-card[data-product-id]").CountAsync() > 0, $"{how}: no products shown");
                Assert.Equal("Recommendations loaded", await page.Locator($"{UpsellsBlock} [role=status]").InnerTextAsync());
                await page.WaitForFunctionAsync("() => [...document.querySelectorAll('.pa-card img')].every((i) => i.complete)",
                    null, new PageWaitForFunctionOptions { Timeout = 10_000 });
                await NextFramesAsync(page);
                await AssertNoLayoutShiftAsync(page);
                var after = await BoxesAsync(page);
                AssertSameBox(before.Block, after.Block, $"{how}: the block");
                AssertSameBox(before.Below, after.Below, $"{how}: the content below the block");
                await Task.Delay(500);
                Assert.Single(storefront.Calls.Skip(asked), c => c.Path.EndsWith("/recommendations", StringComparison.Ordinal));
            }
            await page.ScreenshotAsync(new PageScreenshotOptions { Path = ScreenshotPath("storefront-cart-upsells-drawn-again.png"), FullPage = true });
        }
        finally
        {
            storefront.SetCart();
            if (page is not null) await page.Context.CloseAsync();
        }
    }

    /// <summary>
    /// A keyboard shopper adds a product from the cart block on a theme that refreshes its own cart: the theme takes the
    /// block's event and draws its cart section again, so the button she pressed is gone. Focus stays in the block, on its
    /// heading (the product is in her cart now, so it is not offered again), and Tab goes on to the new block's products.
    /// Until 6 Dec 2026 focus fell to the page, and she started again from its top.
    /// </summary>
    [Fact]
    public async Task CartBlock_AnAddByKeyboard_OnAThemeThatDrawsItsCartAgain_KeepsFocusInTheBlock()
    {
        await sf.TrainedShopAsync();
        var storefront = sf.Storefront;
        storefront.Behaviour = ProxyBehaviour.Forward;
        var (cartProduct, _) = StorefrontFixture.Catalog[3];
        storefront.SetCart((cartProduct, cartProduct * 10, 1));
        IPage? page = null;
        try
        {
            page = await OpenCartWithUpsellsAsync(cartProduct, StorefrontFixture.ThemeRedraw, """
                document.addEventListener('pluginapp:cart-add', (e) => {
                  e.preventDefault();
                  window.__paRedraw('[data-pa-upsells]', 'inner').then(() => { window.__paRedrawn = true; });
                });
                """);
            var loads = 0;
            page.Load += (_, _) => Interlocked.Increment(ref loads);
            await StorefrontFixture.TabToAsync(page, $"{UpsellsBlock} .pa-card[data-position='0'] .pa-card__add");
            await page.Keyboard.PressAsync("Enter");
            await page.WaitForFunctionAsync("() => window.__paRedrawn === true", null, new PageWaitForFunctionOptions { Timeout = 10_000 });
            await WaitForNewBlockAsync(page, "ready");

            Assert.Equal($"h2.pa-upsells__heading in {UpsellsBlock}", await StorefrontFixture.FocusAsync(page, UpsellsBlock));
            await page.Keyboard.PressAsync("Tab");
            Assert.Equal($"a.pa-card__link in {UpsellsBlock}", await StorefrontFixture.FocusAsync(page, UpsellsBlock));
            Assert.True(await page.EvaluateAsync<bool>($"() => document.activeElement === document.querySelector(\"{UpsellsBlock} .pa-card[data-position='0'] .pa-card__link\")"),
                "Tab from the heading did not reach the block's first product");
            Assert.Equal(0, loads);
            using var http = new HttpClient();
            Assert.Equal(2, JsonNode.Parse(await http.GetStringAsync(storefront.BaseUrl + "/cart.js"))!["items"]!.AsArray().Count);
        }
        finally
        {
            storefront.SetCart();
            if (page is not null) await page.Context.CloseAsync();
        }
    }
}
