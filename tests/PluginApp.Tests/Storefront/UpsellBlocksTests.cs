using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Playwright;

namespace PluginApp.Tests.Storefront;

/// <summary>
/// The upsell blocks in a real browser: their markup rendered from blocks/*.liquid, the real JS and CSS
/// assets, on a stand-in storefront whose app proxy signs and forwards to the app in process.
/// </summary>
[Collection(StorefrontFixture.Collection)]
public sealed partial class UpsellBlocksTests(StorefrontFixture sf) : IClassFixture<StorefrontFixture>
{
    private const int Limit = 4;
    private static readonly (long Id, string Title) PageProduct = StorefrontFixture.Catalog[0];
    private static string PagePath => "/products/" + StorefrontFixture.Handle(PageProduct.Title);

    private Task OpenProductPageAsync(IPage page, params long[] cartVariants) => OpenProductPageAsync(page, null, cartVariants);

    /// <param name="root">The storefront's language or market path ("/fr"), as Shopify's routes carry it; null: the main one.</param>
    /// <param name="appMetafields">The app's metafields on its installation as the storefront's Liquid reads them.</param>
    /// <param name="theme">"dawn": the page's root and text sized as Dawn's (10 px and 15 px); null: the browser's.</param>
    private async Task OpenProductPageAsync(IPage page, string? root, long[] cartVariants, JsonObject? appMetafields = null, string? theme = null)
    {
        var context = new JsonObject
        {
            ["theme"] = theme,
            ["app_metafields"] = appMetafields,
            ["root_url"] = root,
            ["template"] = "product",
            ["cart"] = new JsonObject { ["items"] = new JsonArray([.. cartVariants.Select(v => (JsonNode)new JsonObject { ["variant_id"] = v })]) },
            ["product"] = new JsonObject { ["id"] = PageProduct.Id, ["title"] = PageProduct.Title, ["handle"] = StorefrontFixture.Handle(PageProduct.Title) },
            ["settings"] = new JsonObject { ["heading"] = "Goes well with", ["product_count"] = Limit, ["layout"] = "grid", ["show_add_button"] = true },
        };
        sf.Storefront.SetPage(PagePath, await ThemeBlockRenderer.RenderPageAsync("product-upsells", context));
        await page.GotoAsync(sf.Storefront.BaseUrl + PagePath, new PageGotoOptions { WaitUntil = WaitUntilState.Load });
    }

    /// <summary>
    /// A merchant who switches upsells off to show nothing: the app sets its metafield on its installation in Shopify (a
    /// job, then the outbox), the blocks' Liquid renders nothing, and a shopper's page has no block, no box kept empty for
    /// it and no call to the app. Off to show bestsellers, or on again, the block is back. Until 5 Dec 2026 the block kept
    /// its box, empty, on screen.
    /// </summary>
    [Fact]
    public async Task ProductBlock_SwitchedOffToShowNothing_IsNotRenderedAtAll_AndIsBackWithBestsellers()
    {
        await sf.TrainedShopAsync();
        var storefront = sf.Storefront;
        storefront.Behaviour = ProxyBehaviour.Forward;
        Task<JsonObject> HiddenAsync(string expected) => sf.App.AppMetafieldAsync(StorefrontFixture.Shop, "upsells_hidden", expected);
        try
        {
            Assert.Equal(System.Net.HttpStatusCode.OK, (await sf.App.SwitchFeatureAsync(StorefrontFixture.Shop, PluginApp.Recommendations.UpsellFeature.Name, false,
                PluginApp.Recommendations.UpsellFeature.ShowNothing, "a supplier recall")).StatusCode);
            var hidden = await HiddenAsync("true");
            var page = await sf.NewPageAsync();
            try
            {
                var asked = storefront.Calls.Count;
                await OpenProductPageAsync(page, null, [], hidden);
                Assert.Equal(0, await page.Locator("[data-pa-upsells]").CountAsync());
                // Nothing between the product and what follows it.
                var gap = await page.EvaluateAsync<double>(
                    "() => document.querySelector('#storefront-below').getBoundingClientRect().top - document.querySelector('#storefront-above').getBoundingClientRect().bottom");
                Assert.True(gap < 40, $"{gap} px between the product and the content below it");
                await Task.Delay(500);
                Assert.Equal(asked, storefront.Calls.Count);
                await page.ScreenshotAsync(new PageScreenshotOptions { Path = ScreenshotPath("storefront-product-upsells-switched-off.png"), FullPage = true });

                // Off to show bestsellers: the block is back.
                Assert.Equal(System.Net.HttpStatusCode.OK, (await sf.App.SwitchFeatureAsync(StorefrontFixture.Shop, PluginApp.Recommendations.UpsellFeature.Name, false,
                    PluginApp.Recommendations.UpsellFeature.ShowBestsellers)).StatusCode);
                var shown = await HiddenAsync("false");
                await OpenProductPageAsync(page, null, [], shown);
                await page.WaitForFunctionAsync("() => document.querySelector('[data-pa-upsells]').getAttribute('data-pa-state') === 'ready'",
                    null, new PageWaitForFunctionOptions { Timeout = 10_000 });
            }
            finally { await page.Context.CloseAsync(); }
        }
        finally
        {
            await sf.App.SwitchFeatureAsync(StorefrontFixture.Shop, PluginApp.Recommendations.UpsellFeature.Name, true);
            await HiddenAsync("false");
        }
    }

    [Fact]
    public async Task ProductBlock_TrainedModel_ShowsRankedProductsInApiOrderRecordsClickAndNothingShifts()
    {
        var shopId = await sf.TrainedShopAsync();
        var storefront = sf.Storefront;
        storefront.Behaviour = ProxyBehaviour.Forward;

        await storefront.WarmAsync($"/recommendations?placement=product&product_id={PageProduct.Id}&limit={Limit}&visitor_id=warm-up");

        // Hold the app's answer until the skeleton has been painted and measured.
        storefront.Gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var page = await sf.NewPageAsync();
        try
        {
            await OpenProductPageAsync(page);
            Assert.Equal("loading", await StateAsync(page));
            await NextFramesAsync(page);
            var before = await BoxesAsync(page);
            storefront.Gate.TrySetResult();

            await page.WaitForFunctionAsync("() => document.querySelector('[data-pa-upsells]').getAttribute('data-pa-state') !== 'loading'",
                null, new PageWaitForFunctionOptions { Timeout = 10_000 });
            var state = await StateAsync(page);
            Assert.True(state == "ready", $"the block ended '{state}' instead of showing products; proxied calls: {Describe(storefront.Calls)}");
            await page.WaitForFunctionAsync("() => [...document.querySelectorAll('.pa-card img')].every((i) => i.complete)",
                null, new PageWaitForFunctionOptions { Timeout = 10_000 });
            await NextFramesAsync(page);
            await page.ScreenshotAsync(new PageScreenshotOptions { Path = ScreenshotPath("storefront-product-upsells.png"), FullPage = true });

            // The ranked products, in the order the API returned them.
            var call = storefront.Calls.Last(c => c.Path.EndsWith("/recommendations", StringComparison.Ordinal) && !c.Query.Contains("warm-up", StringComparison.Ordinal));
            Assert.Equal(200, call.Status);
            var answer = JsonNode.Parse(call.ResponseBody!)!.AsObject();
            var items = answer["items"]!.AsArray().Select(i => i!.AsObject()).Take(Limit).ToList();
            Assert.NotEmpty(items);
            var cards = await page.EvalOnSelectorAllAsync<JsonElement>(".pa-card[data-product-id]", """
                (els) => els.map((e) => ({
                  productId: Number(e.dataset.productId),
                  title: e.querySelector('.pa-card__title').textContent,
                  price: e.querySelector('.pa-card__price').textContent,
                  href: e.querySelector('a.pa-card__link').getAttribute('href'),
                  img: e.querySelector('img') && { src: e.querySelector('img').getAttribute('src'),
                    width: e.querySelector('img').getAttribute('width'), height: e.querySelector('img').getAttribute('height') },
                }))
                """);
            Assert.Equal(items.Select(i => i["product_id"]!.GetValue<long>()), cards.EnumerateArray().Select(c => c.GetProperty("productId").GetInt64()));
            foreach (var (item, card) in items.Zip(cards.EnumerateArray()))
            {
                Assert.Equal(item["title"]!.GetValue<string>(), card.GetProperty("title").GetString());
                var price = decimal.Parse(item["price"]!.GetValue<string>(), CultureInfo.InvariantCulture).ToString("0.00", CultureInfo.InvariantCulture);
                Assert.Contains(price, card.GetProperty("price").GetString());
                Assert.Equal(item["url"]!.GetValue<string>(), card.GetProperty("href").GetString());
                if (item["image"]?.GetValue<string>() is { } image)
                {
                    var img = card.GetProperty("img");
                    Assert.Equal(image, img.GetProperty("src").GetString());
                    Assert.False(string.IsNullOrEmpty(img.GetProperty("width").GetString()));
                    Assert.False(string.IsNullOrEmpty(img.GetProperty("height").GetString()));
                }
            }

            // Nothing moved when the answer arrived.
            await AssertNoLayoutShiftAsync(page);
            var after = await BoxesAsync(page);
            AssertSameBox(before.Block, after.Block, "the block");
            AssertSameBox(before.Below, after.Below, "the content below the block");

            // Seen: one impression per visible product, through the proxy, stored by the app.
            var requestId = answer["request_id"]!.GetValue<string>();
            await EventuallyAsync(async () => await sf.App.CountAsync(
                "SELECT count(*) FROM recommendation_events WHERE shop_id = $1 AND event_type = 'impression' AND request_id = $2", shopId, requestId) == items.Count,
                $"{items.Count} impression rows for request {requestId}");

            // Clicked: the second product, so the stored position says which one.
            var clicked = items.Count > 1 ? 1 : 0;
            var clickedId = items[clicked]["product_id"]!.GetValue<long>();
            await page.ClickAsync($".pa-card[data-position='{clicked}'] a.pa-card__link");
            // Why only until the navigation commits: what is asserted is where the click led and the click row; waiting for the
            // next page's load event (its block and images) timed out once under the full suite's load.
            await page.WaitForURLAsync(sf.Storefront.BaseUrl + items[clicked]["url"]!.GetValue<string>(),
                new PageWaitForURLOptions { WaitUntil = WaitUntilState.Commit });
            await EventuallyAsync(async () => await sf.App.CountAsync(
                """
                SELECT count(*) FROM recommendation_events
                WHERE shop_id = $1 AND event_type = 'click' AND request_id = $2 AND product_id = $3 AND position = $4
                  AND placement = 'product' AND visitor_hash IS NOT NULL
                """, shopId, requestId, clickedId, clicked) == 1, $"a click row for product {clickedId} at position {clicked}");
            Assert.All(storefront.Calls.Where(c => c.Path.EndsWith("/events", StringComparison.Ordinal) && c.RequestBody?.Contains(requestId) == true),
                c => Assert.Equal(202, c.Status));
        }
        finally
        {
            storefront.Gate = null;
            await page.Context.CloseAsync();
        }
    }

    /// <summary>
    /// On a product page the block names the cart's variants (Shopify's global cart), and what is in it is not offered again,
    /// with the list still full. Until 4 Dec a shopper was offered the product already in her cart.
    /// </summary>
    /// <summary>
    /// On the storefront in another language (Shopify's routes under "/fr"), the products open in it: until 5 Dec 2026 their
    /// links led to the store's main language and market.
    /// </summary>
    /// <summary>
    /// A shopper who accepts analytics after the cards came (the store's banner still open when they did): the cards on
    /// screen then count as seen, their impressions stored by the app. Until 7 Dec 2026 they were marked seen while nothing
    /// could be sent, and never reported: her clicks afterwards had no impression, nor her arm an exposure, behind them.
    /// </summary>
    [Fact]
    public async Task ProductBlock_ConsentGivenAfterTheCardsCame_ReportsTheirImpressions()
    {
        var shopId = await sf.TrainedShopAsync();
        var storefront = sf.Storefront;
        storefront.Behaviour = ProxyBehaviour.Forward;
        var page = await sf.NewPageAsync();
        try
        {
            await page.Context.AddInitScriptAsync("window.__ok = false; window.Shopify = { customerPrivacy: { analyticsProcessingAllowed: () => window.__ok } };");
            var asked = storefront.Calls.Count;
            await OpenProductPageAsync(page);
            await page.WaitForFunctionAsync("() => document.querySelector('[data-pa-upsells]').getAttribute('data-pa-state') === 'ready'",
                null, new PageWaitForFunctionOptions { Timeout = 10_000 });
            await Task.Delay(500); // time for impressions, had any gone out
            Assert.DoesNotContain(storefront.Calls.Skip(asked), c => c.Path.EndsWith("/events", StringComparison.Ordinal));
            var call = storefront.Calls.Skip(asked).Last(c => c.Path.EndsWith("/recommendations", StringComparison.Ordinal));
            var requestId = JsonNode.Parse(call.ResponseBody!)!["request_id"]!.GetValue<string>();

            await page.EvaluateAsync("() => { window.__ok = true; document.dispatchEvent(new CustomEvent('visitorConsentCollected', { detail: { analyticsAllowed: true } })); }");

            await EventuallyAsync(async () => await sf.App.CountAsync(
                "SELECT count(*) FROM recommendation_events WHERE shop_id = $1 AND event_type = 'impression' AND request_id = $2", shopId, requestId) > 0,
                $"impressions of request {requestId} after her consent");
        }
        finally { await page.Context.CloseAsync(); }
    }

    /// <summary>
    /// On a theme whose root is 10 px with 15 px text (Dawn and the themes built on it), the cards read at the theme's
    /// own text size. Until 8 Dec 2026 every size was in rem: titles and prices 9.5 px there, the Add buttons 9 px.
    /// </summary>
    [Fact]
    public async Task ProductBlock_OnADawnTheme_ReadsAtTheThemesTextSize()
    {
        await sf.TrainedShopAsync();
        sf.Storefront.Behaviour = ProxyBehaviour.Forward;
        await sf.Storefront.WarmAsync($"/recommendations?placement=product&product_id={PageProduct.Id}&limit={Limit}&visitor_id=warm-up");
        var page = await sf.NewPageAsync();
        try
        {
            await OpenProductPageAsync(page, null, [], theme: "dawn");
            await page.WaitForFunctionAsync("() => document.querySelector('[data-pa-upsells]').getAttribute('data-pa-state') === 'ready'",
                null, new PageWaitForFunctionOptions { Timeout = 10_000 });
            var sizes = await page.EvaluateAsync<Dictionary<string, double>>("""
                () => Object.fromEntries(['.pa-upsells__heading', '.pa-card[data-product-id] .pa-card__title', '.pa-card[data-product-id] .pa-card__price',
                  '.pa-card[data-product-id] .pa-card__add', '.pa-upsells__why summary']
                  .map(s => [s, parseFloat(getComputedStyle(document.querySelector(s)).fontSize)]))
                """);
            Assert.True(sizes[".pa-upsells__heading"] >= 18, $"heading {sizes[".pa-upsells__heading"]} px");
            foreach (var part in new[] { ".pa-card[data-product-id] .pa-card__title", ".pa-card[data-product-id] .pa-card__price", ".pa-card[data-product-id] .pa-card__add" })
                Assert.True(sizes[part] >= 13.5, $"{part} {sizes[part]} px");
            Assert.True(sizes[".pa-upsells__why summary"] >= 12, $"why {sizes[".pa-upsells__why summary"]} px");
        }
        finally { await page.Context.CloseAsync(); }
    }

    [Fact]
    public async Task ProductBlock_InAnotherLanguage_ItsLinksKeepTheLanguagesPath()
    {
        await sf.TrainedShopAsync();
        sf.Storefront.Behaviour = ProxyBehaviour.Forward;
        await sf.Storefront.WarmAsync($"/recommendations?placement=product&product_id={PageProduct.Id}&limit={Limit}&visitor_id=warm-up");
        var page = await sf.NewPageAsync();
        try
        {
            await OpenProductPageAsync(page, "/fr", []);
            await page.WaitForFunctionAsync("() => document.querySelector('[data-pa-upsells]').getAttribute('data-pa-state') === 'ready'",
                null, new PageWaitForFunctionOptions { Timeout = 10_000 });
            var links = await page.EvalOnSelectorAllAsync<string[]>(".pa-card[data-product-id] .pa-card__link", "(els) => els.map((a) => a.getAttribute('href'))");
            Assert.NotEmpty(links);
            Assert.All(links, l => Assert.StartsWith("/fr/products/", l));
        }
        finally { await page.Context.CloseAsync(); }
    }

    /// <summary>
    /// A shopper browsing a Shopify Markets store in French and euros sees each card's title and price in hers, from the
    /// storefront's own product JSON under her path; a card whose price in euros cannot be had shows none, not dollars
    /// beside euros, and keeps the app's title when its JSON cannot be had. Until 5 Dec 2026 every card showed the shop's
    /// language and dollars.
    /// </summary>
    [Fact]
    public async Task ProductBlock_InAnotherLanguageAndCurrency_ShowsTheStorefrontsTitleAndPriceForTheShopper()
    {
        JsonNode Item(int i, string title) => new JsonObject
        {
            ["product_id"] = 7400 + i, ["variant_id"] = 7500 + i, ["title"] = title, ["price"] = "12.00", ["currency"] = "USD",
            ["image"] = null, ["url"] = $"/products/mug-{i}?variant={7500 + i}", ["reason"] = "popular", ["rank"] = i + 1, ["token"] = "t",
        };
        sf.Storefront.Behaviour = ProxyBehaviour.Forward;
        sf.Storefront.RecommendationsOverride = new JsonObject
        {
            ["request_id"] = "markets", ["items"] = new JsonArray(Item(0, "Blue Mug"), Item(1, "Green Mug"), Item(2, "Red Mug")),
        }.ToJsonString();
        // Its variant not in the product's JSON: the title is taken, not the product's cheapest price.
        sf.Storefront.SetJson("/fr/products/mug-2.js", new JsonObject
        {
            ["id"] = 7402, ["title"] = "Tasse rouge", ["price"] = 500, ["variants"] = new JsonArray(new JsonObject { ["id"] = 7599, ["price"] = 500 }),
        });
        sf.Storefront.SetJson("/fr/products/mug-0.js", new JsonObject
        {
            ["id"] = 7400, ["title"] = "Tasse bleue", ["price"] = 1090,
            ["variants"] = new JsonArray(new JsonObject { ["id"] = 7499, ["price"] = 990 }, new JsonObject { ["id"] = 7500, ["price"] = 1150 }),
        });
        var page = await sf.NewPageAsync();
        try
        {
            await page.Context.AddInitScriptAsync("window.Shopify = { currency: { active: 'EUR', rate: '0.92' } }");
            await OpenProductPageAsync(page, "/fr", []);
            await page.WaitForFunctionAsync("() => document.querySelector('[data-pa-upsells]').getAttribute('data-pa-state') === 'ready'",
                null, new PageWaitForFunctionOptions { Timeout = 10_000 });
            var blue = page.Locator(".pa-card[data-position='0']");
            await Assertions.Expect(blue.Locator(".pa-card__title")).ToHaveTextAsync("Tasse bleue");
            await Assertions.Expect(blue.Locator(".pa-card__price")).ToHaveTextAsync("€11.50");
            await Assertions.Expect(page.GetByRole(AriaRole.Button, new() { Name = "Add to cart: Tasse bleue", Exact = true })).ToBeVisibleAsync();
            // No JSON for the second product: the app's title stays, and no price in dollars.
            var green = page.Locator(".pa-card[data-position='1']");
            Assert.Equal("Green Mug", await green.Locator(".pa-card__title").InnerTextAsync());
            Assert.Equal("", await green.Locator(".pa-card__price").InnerTextAsync());
            var red = page.Locator(".pa-card[data-position='2']");
            await Assertions.Expect(red.Locator(".pa-card__title")).ToHaveTextAsync("Tasse rouge");
            Assert.Equal("", await red.Locator(".pa-card__price").InnerTextAsync());
            await AssertNoLayoutShiftAsync(page);
            await page.ScreenshotAsync(new PageScreenshotOptions { Path = ScreenshotPath("storefront-product-upsells-markets.png"), FullPage = true });
        }
        finally
        {
            sf.Storefront.RecommendationsOverride = null;
            sf.Storefront.SetJson("/fr/products/mug-0.js", null);
            sf.Storefront.SetJson("/fr/products/mug-2.js", null);
            await page.Context.CloseAsync();
        }
    }

    [Fact]
    public async Task ProductBlock_WithItemsInTheCart_OffersNoneOfThem_AndStillFillsItsSlots()
    {
        await sf.TrainedShopAsync();
        var storefront = sf.Storefront;
        storefront.Behaviour = ProxyBehaviour.Forward;
        var page = await sf.NewPageAsync();
        try
        {
            await OpenProductPageAsync(page);
            var first = await ShownAsync(page);
            Assert.True(first.Length >= 2, $"the block showed {first.Length} products");
            var inCart = first[0];

            await OpenProductPageAsync(page, inCart * 10, inCart * 10); // on two lines (say, with different properties): named once
            var shown = await ShownAsync(page);

            var call = storefront.Calls.Last(c => c.Path.EndsWith("/recommendations", StringComparison.Ordinal));
            Assert.Contains($"variant_ids={inCart * 10}", call.Query, StringComparison.Ordinal);
            Assert.DoesNotContain("%2C", call.Query, StringComparison.Ordinal);
            Assert.DoesNotContain(inCart, shown);
            Assert.Equal(first.Length, shown.Length); // another product takes its slot
            Assert.Subset(shown.ToHashSet(), first[1..].ToHashSet()); // the rest are still offered
        }
        finally
        {
            await page.Context.CloseAsync();
        }

        async Task<long[]> ShownAsync(IPage page)
        {
            await page.WaitForFunctionAsync("() => document.querySelector('[data-pa-upsells]').getAttribute('data-pa-state') !== 'loading'",
                null, new PageWaitForFunctionOptions { Timeout = 10_000 });
            Assert.Equal("ready", await StateAsync(page));
            return await page.EvalOnSelectorAllAsync<long[]>(".pa-card[data-product-id]", "(els) => els.map((e) => Number(e.dataset.productId))");
        }
    }

    [Fact]
    public async Task CartBlock_TrainedModel_RecommendsForCartVariantsAndAddButtonAddsAndRecordsEvent()
    {
        var shopId = await sf.TrainedShopAsync();
        var storefront = sf.Storefront;
        storefront.Behaviour = ProxyBehaviour.Forward;
        var (cartProduct, _) = StorefrontFixture.Catalog[3];
        storefront.SetCart((cartProduct, cartProduct * 10, 1));
        var page = await sf.NewPageAsync();
        try
        {
            var context = new JsonObject
            {
                ["template"] = "cart",
                ["settings"] = new JsonObject { ["product_count"] = Limit, ["layout"] = "carousel", ["show_add_button"] = true },
            };
            storefront.SetPage("/cart", await ThemeBlockRenderer.RenderPageAsync("cart-upsells", context));
            // The cart route's first answer also sets up the cart's fold-in.
            await storefront.WarmAsync($"/recommendations?placement=cart&variant_ids={cartProduct * 10}&limit={Limit}&visitor_id=warm-up");
            var callsBefore = storefront.Calls.Count;
            await page.GotoAsync(storefront.BaseUrl + "/cart", new PageGotoOptions { WaitUntil = WaitUntilState.Load });
            var before = await page.EvaluateAsync<JsonElement>("() => window.__paBefore");
            await page.WaitForFunctionAsync("() => document.querySelector('[data-pa-upsells]').getAttribute('data-pa-state') !== 'loading'",
                null, new PageWaitForFunctionOptions { Timeout = 10_000 });
            var state = await StateAsync(page);
            Assert.True(state == "ready", $"the cart block ended '{state}'; proxied calls: {Describe(storefront.Calls.Skip(callsBefore))}");

            // Asked for the cart's variants (read from /cart.js), answered in ranked order.
            var call = storefront.Calls.Skip(callsBefore).Single(c => c.Path.EndsWith("/recommendations", StringComparison.Ordinal));
            Assert.Contains("placement=cart", call.Query, StringComparison.Ordinal);
            Assert.Contains($"variant_ids={cartProduct * 10}", call.Query, StringComparison.Ordinal);
            var answer = JsonNode.Parse(call.ResponseBody!)!.AsObject();
            var items = answer["items"]!.AsArray().Select(i => i!.AsObject()).Take(Limit).ToList();
            var shown = await page.EvalOnSelectorAllAsync<long[]>(".pa-card[data-product-id]", "(els) => els.map((e) => Number(e.dataset.productId))");
            Assert.Equal(items.Select(i => i["product_id"]!.GetValue<long>()), shown);

            // The first impression tags the cart with the visitor id, before any click, in either arm: the order joins the
            // experiment by it (until 4 Dec 2026 only a click or an add did, so a guest who never clicked had no outcome, and
            // the arm whose shoppers clicked more read as the better one).
            using var http = new HttpClient();
            string? tagged = null;
            await EventuallyAsync(async () =>
            {
                tagged = JsonNode.Parse(await http.GetStringAsync(storefront.BaseUrl + "/cart.js"))!["attributes"]?["_pluginapp_visitor"]?.GetValue<string>();
                return tagged is not null;
            }, "the _pluginapp_visitor cart attribute after the impressions, before any click");

            // Each add button is named by its product for a screen reader (until 5 Dec 2026 all read "Add to cart"), and the
            // live status says the products came (it went on saying "Loading recommendations").
            var firstTitle = items[0]["title"]!.GetValue<string>();
            await Assertions.Expect(page.GetByRole(AriaRole.Button, new() { Name = "Add to cart: " + firstTitle, Exact = true })).ToBeVisibleAsync();
            Assert.Equal("Recommendations loaded", await page.Locator("[data-pa-upsells] [role=status]").InnerTextAsync());

            // The add button posts /cart/add.js with the variant, then the app stores an add_to_cart event; the cart page is
            // loaded again, so the theme's lines and totals hold it (until 5 Dec 2026 it only said "Added").
            var variantId = items[0]["variant_id"]!.GetValue<long>();
            var reloaded = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            page.Load += (_, _) => reloaded.TrySetResult();
            await page.ClickAsync(".pa-card[data-position='0'] .pa-card__add");
            await reloaded.Task.WaitAsync(TimeSpan.FromSeconds(10));
            await page.WaitForFunctionAsync("() => document.querySelector('[data-pa-upsells]').getAttribute('data-pa-state') !== 'loading'",
                null, new PageWaitForFunctionOptions { Timeout = 10_000 });
            var cart = JsonNode.Parse(await http.GetStringAsync(storefront.BaseUrl + "/cart.js"))!;
            Assert.Contains(cart["items"]!.AsArray(), l => l!["variant_id"]!.GetValue<long>() == variantId);
            await EventuallyAsync(async () => await sf.App.CountAsync(
                """
                SELECT count(*) FROM recommendation_events
                WHERE shop_id = $1 AND event_type = 'add_to_cart' AND request_id = $2 AND variant_id = $3 AND placement = 'cart' AND position = 0
                """, shopId, answer["request_id"]!.GetValue<string>(), variantId) == 1, "an add_to_cart row");
            // The visitor id went into the cart attributes (and so to the order), the same one the event was stored under.
            string? visitor = null;
            await EventuallyAsync(async () =>
            {
                visitor = JsonNode.Parse(await http.GetStringAsync(storefront.BaseUrl + "/cart.js"))!["attributes"]?["_pluginapp_visitor"]?.GetValue<string>();
                return visitor is not null;
            }, "the _pluginapp_visitor cart attribute");
            Assert.Equal(tagged, visitor);
            Assert.Equal(1, await sf.App.CountAsync("SELECT count(*) FROM recommendation_events WHERE shop_id = $1 AND event_type = 'add_to_cart' AND visitor_hash = $2",
                shopId, PluginApp.Experiments.Assignment.VisitorHash(storefront.Shop, visitor)!));

            await AssertNoLayoutShiftAsync(page);
            AssertSameBox(Box.From(before.GetProperty("below")), (await BoxesAsync(page)).Below, "the content below the block");
            await page.ScreenshotAsync(new PageScreenshotOptions { Path = ScreenshotPath("storefront-cart-upsells.png"), FullPage = true });

            // She orders; back in the same tab, Shopify has started her next cart: the block tags that one too (until 5 Dec
            // 2026 a cart was tagged once a session, and a guest's second order had no visitor to join the experiment by).
            storefront.StartNewCart("storefront-cart-2");
            storefront.SetCart((cartProduct, cartProduct * 10, 1));
            await page.GotoAsync(storefront.BaseUrl + "/cart", new PageGotoOptions { WaitUntil = WaitUntilState.Load });
            await EventuallyAsync(async () =>
            {
                var next = JsonNode.Parse(await http.GetStringAsync(storefront.BaseUrl + "/cart.js"))!;
                return next["token"]!.GetValue<string>().StartsWith("storefront-cart-2", StringComparison.Ordinal)
                    && next["attributes"]?["_pluginapp_visitor"]?.GetValue<string>() == tagged;
            }, "the next cart's _pluginapp_visitor attribute");
        }
        finally
        {
            storefront.StartNewCart("storefront-cart");
            storefront.SetCart();
            await page.Context.CloseAsync();
        }
    }

    /// <summary>
    /// A cart of 120 lines, one variant on many of them (line properties), and 101 variants: the block asks for each variant
    /// once, at most 100, and shows its answer. Until 7 Dec 2026 it sent every line's variant, was answered 400, and hid.
    /// </summary>
    [Fact]
    public async Task CartBlock_OfAHundredAndTwentyLines_AsksForEachVariantOnce_AtMostAHundred()
    {
        await sf.TrainedShopAsync();
        var storefront = sf.Storefront;
        storefront.Behaviour = ProxyBehaviour.Forward;
        var (cartProduct, _) = StorefrontFixture.Catalog[3];
        storefront.SetCart([.. Enumerable.Repeat((cartProduct, cartProduct * 10, 1), 20),
            .. Enumerable.Range(1, 100).Select(i => (cartProduct, 9_000_000L + i, 1))]);
        var page = await sf.NewPageAsync();
        try
        {
            var context = new JsonObject { ["template"] = "cart", ["settings"] = new JsonObject { ["product_count"] = Limit, ["layout"] = "grid" } };
            storefront.SetPage("/cart", await ThemeBlockRenderer.RenderPageAsync("cart-upsells", context));
            var callsBefore = storefront.Calls.Count;
            await page.GotoAsync(storefront.BaseUrl + "/cart", new PageGotoOptions { WaitUntil = WaitUntilState.Load });
            await page.WaitForFunctionAsync("() => document.querySelector('[data-pa-upsells]').getAttribute('data-pa-state') !== 'loading'",
                null, new PageWaitForFunctionOptions { Timeout = 10_000 });

            var state = await StateAsync(page);
            Assert.True(state == "ready", $"the cart block ended '{state}'; proxied calls: {Describe(storefront.Calls.Skip(callsBefore))}");
            var call = storefront.Calls.Skip(callsBefore).Single(c => c.Path.EndsWith("/recommendations", StringComparison.Ordinal));
            var asked = System.Web.HttpUtility.ParseQueryString(call.Query)["variant_ids"]!.Split(',');
            Assert.Equal(100, asked.Length);
            Assert.Equal(asked.Distinct().Count(), asked.Length);
            Assert.Equal((cartProduct * 10).ToString(System.Globalization.CultureInfo.InvariantCulture), asked[0]);
        }
        finally
        {
            storefront.SetCart();
            await page.Context.CloseAsync();
        }
    }

    [Fact]
    public async Task ProductBlock_HostileAnswer_TitlesStayTextAndNoLinkLeavesTheShop()
    {
        const string title = "<img src=x onerror=\"window.__pwned=1\"><script>window.__pwned=2</script>\"Mug\" & 'Cup'";
        string[] urls = ["/\t/evil.example/a", "//evil.example/b", "/\\evil.example/c", "/products/fine?x=1", "javascript:window.__pwned=3", "https://evil.example/d"];
        var items = new JsonArray(urls.Select((u, i) => (JsonNode)new JsonObject
        {
            ["product_id"] = 1000 + i, ["variant_id"] = 2000 + i, ["title"] = title, ["price"] = "9.00", ["currency"] = "USD",
            ["image"] = null, ["url"] = u, ["reason"] = "popular", ["rank"] = i + 1, ["token"] = "t",
        }).ToArray());
        sf.Storefront.Behaviour = ProxyBehaviour.Forward;
        sf.Storefront.RecommendationsOverride = new JsonObject { ["request_id"] = "hostile", ["items"] = items }.ToJsonString();
        var page = await sf.NewPageAsync();
        try
        {
            await OpenProductPageAsync(page);
            await page.WaitForFunctionAsync("() => document.querySelector('[data-pa-upsells]').getAttribute('data-pa-state') === 'ready'",
                null, new PageWaitForFunctionOptions { Timeout = 10_000 });
            await page.ScreenshotAsync(new PageScreenshotOptions { Path = ScreenshotPath("storefront-product-upsells-hostile.png"), FullPage = true });

            var shown = await page.EvaluateAsync<JsonElement>("""
                () => ({
                  pwned: window.__pwned ?? null,
                  titles: [...document.querySelectorAll('.pa-card__title')].map(t => t.textContent),
                  injected: document.querySelectorAll('.pa-upsells img[src="x"], .pa-upsells script').length,
                  links: [...document.querySelectorAll('.pa-card__link')].map(a => ({ attr: a.getAttribute('href'), origin: new URL(a.href).origin })),
                  origin: location.origin,
                })
                """);
            Assert.Equal(JsonValueKind.Null, shown.GetProperty("pwned").ValueKind);
            Assert.Equal(0, shown.GetProperty("injected").GetInt32());
            Assert.All(shown.GetProperty("titles").EnumerateArray(), t => Assert.Equal(title, t.GetString()));
            var links = shown.GetProperty("links").EnumerateArray().ToList();
            Assert.Equal(Limit, links.Count);
            Assert.All(links, l => Assert.Equal(shown.GetProperty("origin").GetString(), l.GetProperty("origin").GetString()));
            Assert.All(links.Take(3), l => Assert.Equal("#", l.GetProperty("attr").GetString()));
            Assert.Equal("/products/fine?x=1", links[3].GetProperty("attr").GetString());
        }
        finally
        {
            sf.Storefront.RecommendationsOverride = null;
            await page.Context.CloseAsync();
        }
    }

    /// <summary>
    /// An Add the cart refuses says why under its button (Shopify's words, else the block's), and the button is ready again;
    /// a product the app holds no variant price for shows no price. Until 5 Dec 2026 the button came back and said nothing,
    /// and the card read "$0.00".
    /// </summary>
    [Fact]
    public async Task ProductBlock_AnAddTheCartRefuses_SaysWhyUnderItsButton_AndAProductWithoutAPriceShowsNone()
    {
        JsonNode Item(int i, string title, string? price) => new JsonObject
        {
            ["product_id"] = 7100 + i, ["variant_id"] = 7200 + i, ["title"] = title, ["price"] = price, ["currency"] = "USD",
            ["image"] = null, ["url"] = "/products/p" + i, ["reason"] = "popular", ["rank"] = i + 1, ["token"] = "t",
        };
        sf.Storefront.Behaviour = ProxyBehaviour.Forward;
        sf.Storefront.RecommendationsOverride = new JsonObject
        {
            ["request_id"] = "refused", ["items"] = new JsonArray(Item(0, "Blue Mug", "12.00"), Item(1, "Green Mug", null), Item(2, "Red Mug", "9.50")),
        }.ToJsonString();
        sf.Storefront.SoldOut[7200] = "Blue Mug";
        var page = await sf.NewPageAsync();
        try
        {
            await OpenProductPageAsync(page, null, [], theme: "dawn");
            await page.WaitForFunctionAsync("() => document.querySelector('[data-pa-upsells]').getAttribute('data-pa-state') === 'ready'",
                null, new PageWaitForFunctionOptions { Timeout = 10_000 });
            Assert.Equal("0", await page.InnerTextAsync("#cart-icon-bubble"));
            var prices = await page.EvalOnSelectorAllAsync<string[]>(".pa-card[data-product-id] .pa-card__price", "(els) => els.map((e) => e.textContent)");
            Assert.Equal(["$12.00", "", "$9.50"], prices);

            var blue = page.Locator(".pa-card[data-position='0']");
            await blue.Locator(".pa-card__add").ClickAsync();
            await Assertions.Expect(blue.GetByRole(AriaRole.Alert)).ToHaveTextAsync("The product 'Blue Mug' is already sold out.");
            await Assertions.Expect(blue.Locator(".pa-card__add")).ToBeEnabledAsync();
            await Assertions.Expect(blue.Locator(".pa-card__add")).ToBeFocusedAsync();
            await Assertions.Expect(blue.Locator(".pa-card__add")).ToHaveTextAsync("Add to cart");

            // The request itself failing (offline): the block's own words.
            await page.RouteAsync("**/cart/add.js", route => route.AbortAsync());
            var red = page.Locator(".pa-card[data-position='2']");
            await red.Locator(".pa-card__add").ClickAsync();
            await Assertions.Expect(red.GetByRole(AriaRole.Alert)).ToHaveTextAsync("This could not be added to your cart");
            await Assertions.Expect(red.Locator(".pa-card__add")).ToBeEnabledAsync();
            await page.ScreenshotAsync(new PageScreenshotOptions { Path = ScreenshotPath("storefront-product-upsells-add-refused.png"), FullPage = true });
            using var http = new HttpClient();
            Assert.Empty(JsonNode.Parse(await http.GetStringAsync(sf.Storefront.BaseUrl + "/cart.js"))!["items"]!.AsArray());

            // Back in stock: the next try adds it, and the card no longer says it could not.
            sf.Storefront.SoldOut.Clear();
            await page.UnrouteAsync("**/cart/add.js");
            await blue.Locator(".pa-card__add").ClickAsync();
            await Assertions.Expect(blue.Locator(".pa-card__add")).ToHaveTextAsync("Added");
            await Assertions.Expect(blue.Locator(".pa-add-error")).ToHaveCountAsync(0);
            // Said where the shopper is: the button keeps focus, named for what happened, and a second click adds nothing.
            await Assertions.Expect(blue.Locator(".pa-card__add")).ToBeFocusedAsync();
            await Assertions.Expect(blue.Locator(".pa-card__add")).ToHaveAttributeAsync("aria-label", "Added: Blue Mug");
            // The theme's cart icon counts it, drawn again from its own section (until 8 Dec 2026 it stayed at 0).
            await Assertions.Expect(page.Locator("#cart-icon-bubble")).ToHaveTextAsync("1");
            await blue.Locator(".pa-card__add").ClickAsync(new LocatorClickOptions { Force = true }); // a real click: Playwright waits for enabled ones
            await Task.Delay(300);
            Assert.Single(JsonNode.Parse(await http.GetStringAsync(sf.Storefront.BaseUrl + "/cart.js"))!["items"]!.AsArray());
        }
        finally
        {
            sf.Storefront.RecommendationsOverride = null;
            sf.Storefront.SoldOut.Clear();
            sf.Storefront.SetCart();
            await page.Context.CloseAsync();
        }
    }

    [Theory]
    [InlineData(ProxyBehaviour.Fail)]
    [InlineData(ProxyBehaviour.Slow)]
    public async Task ProductBlock_AppDownOrSlow_ShowsNothingAndNothingShifts(ProxyBehaviour behaviour)
    {
        var storefront = sf.Storefront;
        storefront.Behaviour = behaviour;
        storefront.BlockTimeLimit = null; // the scripts as shipped: their own time limit ends the wait
        var callsBefore = storefront.Calls.Count;
        var page = await sf.NewPageAsync();
        try
        {
            await OpenProductPageAsync(page);
            var before = await page.EvaluateAsync<JsonElement>("() => window.__paBefore");
            Assert.Equal("loading", before.GetProperty("state").GetString());

            // The block gives up after 1.5 s at most (Slow holds the request 5 s).
            await page.WaitForFunctionAsync("() => document.querySelector('[data-pa-upsells]').getAttribute('data-pa-state') !== 'loading'",
                null, new PageWaitForFunctionOptions { Timeout = 5_000 });
            await NextFramesAsync(page);
            await page.WaitForTimeoutAsync(300);
            await page.ScreenshotAsync(new PageScreenshotOptions { Path = ScreenshotPath($"storefront-product-upsells-{behaviour.ToString().ToLowerInvariant()}.png"), FullPage = true });

            var shown = await page.EvaluateAsync<JsonElement>("""
                () => {
                  const root = document.querySelector('[data-pa-upsells]');
                  return { state: root.getAttribute('data-pa-state'), visibility: getComputedStyle(root).visibility,
                           children: root.children.length, cards: document.querySelectorAll('.pa-card').length, text: root.textContent.trim() };
                }
                """);
            Assert.Equal("empty", shown.GetProperty("state").GetString());
            Assert.Equal("hidden", shown.GetProperty("visibility").GetString());
            Assert.Equal(0, shown.GetProperty("children").GetInt32());
            Assert.Equal(0, shown.GetProperty("cards").GetInt32());
            Assert.Equal("", shown.GetProperty("text").GetString());

            var after = await BoxesAsync(page);
            AssertSameBox(Box.From(before.GetProperty("block")), after.Block, "the block");
            AssertSameBox(Box.From(before.GetProperty("below")), after.Below, "the content below the block");
            await AssertNoLayoutShiftAsync(page);

            var calls = storefront.Calls.Skip(callsBefore).ToList();
            Assert.DoesNotContain(calls, c => c.Path.EndsWith("/events", StringComparison.Ordinal));
            if (behaviour == ProxyBehaviour.Fail)
                Assert.Contains(calls, c => c.Path.EndsWith("/recommendations", StringComparison.Ordinal) && c.Status == 500);
            else // the browser abandoned the request: the block's own time limit, not the stub's, ended the wait
                await EventuallyAsync(() => Task.FromResult(storefront.Calls.Skip(callsBefore).Any(c => c.Aborted)), "the slow request aborted by the block");
        }
        finally
        {
            storefront.Behaviour = ProxyBehaviour.Forward;
            storefront.BlockTimeLimit = StorefrontFixture.AnswerWait;
            await page.Context.CloseAsync();
        }
    }

    /// <summary>
    /// A block below the screen that ends with nothing to show gives its space back: the content after it moves up while
    /// out of sight, so the shopper sees no shift and scrolls into no blank hole. Until 5 Dec 2026 it kept its size for the
    /// whole visit (on screen it still does, as above).
    /// </summary>
    [Fact]
    public async Task ProductBlock_AppDown_BelowTheScreen_CollapsesWithoutAShiftTheShopperSees()
    {
        var storefront = sf.Storefront;
        storefront.Behaviour = ProxyBehaviour.Fail;
        var page = await sf.NewPageAsync();
        try
        {
            await page.SetViewportSizeAsync(1280, 150);
            await OpenProductPageAsync(page);
            var before = await page.EvaluateAsync<JsonElement>("() => window.__paBefore");
            Assert.True(before.GetProperty("block").GetProperty("y").GetDouble() >= 150, $"the block is not below the screen: {before}");
            await page.WaitForFunctionAsync("() => document.querySelector('[data-pa-upsells]').getAttribute('data-pa-state') === 'empty'",
                null, new PageWaitForFunctionOptions { Timeout = 5_000 });
            await NextFramesAsync(page);

            Assert.Equal("none", await page.EvaluateAsync<string>("() => getComputedStyle(document.querySelector('[data-pa-upsells]')).display"));
            var below = Box.From(await page.EvaluateAsync<JsonElement>("() => window.__paBox('#storefront-below')"));
            Assert.True(below.Y < before.GetProperty("below").GetProperty("y").GetDouble() - 100, $"the content below kept its place: {below}");
            await AssertNoLayoutShiftAsync(page);
        }
        finally
        {
            storefront.Behaviour = ProxyBehaviour.Forward;
            await page.Context.CloseAsync();
        }
    }

    private sealed record Box(double X, double Y, double Width, double Height)
    {
        public static Box From(JsonElement e) => new(e.GetProperty("x").GetDouble(), e.GetProperty("y").GetDouble(),
            e.GetProperty("width").GetDouble(), e.GetProperty("height").GetDouble());
    }

    private static async Task<(Box Block, Box Below)> BoxesAsync(IPage page)
    {
        var boxes = await page.EvaluateAsync<JsonElement>("() => ({ block: window.__paBox('[data-pa-upsells]'), below: window.__paBox('#storefront-below') })");
        return (Box.From(boxes.GetProperty("block")), Box.From(boxes.GetProperty("below")));
    }

    private static void AssertSameBox(Box expected, Box actual, string what)
    {
        const double tolerance = 0.5;
        Assert.True(Math.Abs(expected.X - actual.X) <= tolerance && Math.Abs(expected.Y - actual.Y) <= tolerance
            && Math.Abs(expected.Width - actual.Width) <= tolerance && Math.Abs(expected.Height - actual.Height) <= tolerance,
            $"{what} moved or changed size: {expected} -> {actual}");
        Assert.True(expected.Height > 0, $"{what} has no height: {expected}");
    }

    /// <summary>No layout shift the shopper did not cause: as in CLS, shifts right after input (opening a control) are not counted.</summary>
    private static async Task AssertNoLayoutShiftAsync(IPage page)
    {
        Assert.True(await page.EvaluateAsync<bool>("() => window.__paShiftSupported"), "this chromium does not report layout-shift entries");
        var shifts = await page.EvaluateAsync<JsonElement>("() => window.__paShifts");
        var total = shifts.EnumerateArray().Where(s => !s.GetProperty("input").GetBoolean()).Sum(s => s.GetProperty("value").GetDouble());
        Assert.True(total == 0, $"cumulative layout shift {total}: {shifts}");
    }

    private static Task<string?> StateAsync(IPage page) =>
        page.EvaluateAsync<string?>("() => document.querySelector('[data-pa-upsells]').getAttribute('data-pa-state')");

    private static Task NextFramesAsync(IPage page) =>
        page.EvaluateAsync("() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(() => r())))");

    private static async Task EventuallyAsync(Func<Task<bool>> condition, string what)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline) Assert.Fail($"timed out waiting for {what}");
            await Task.Delay(100);
        }
    }

    private static string ScreenshotPath(string name)
    {
        var dir = Path.Combine(ThemeBlockRenderer.RepoRoot, "TestResults");
        Directory.CreateDirectory(dir);
        return Path.Combine(dir, name);
    }

    private static string Describe(IEnumerable<ProxiedCall> calls) =>
        string.Join("; ", calls.Select(c => $"{c.Method} {c.Path}{c.Query} -> {(c.Aborted ? "aborted" : c.Status?.ToString(CultureInfo.InvariantCulture))} {c.ResponseBody?[..Math.Min(300, c.ResponseBody.Length)]}"));
}
