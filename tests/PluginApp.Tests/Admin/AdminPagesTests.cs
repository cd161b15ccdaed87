using System.Globalization;
using System.Net;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Playwright;
using PluginApp.Admin.Shell;
using PluginApp.Recommendations;
using PluginApp.Tests.Infrastructure;
using PluginApp.Tests.Recommendations;
using Xunit.Abstractions;

namespace PluginApp.Tests.Admin;

/// <summary>The embedded admin in Debian's chromium, on a store with a trained model and a week of storefront traffic.</summary>
public sealed class AdminPagesTests(AdminFixture app, ITestOutputHelper output) : IClassFixture<AdminFixture>
{
    public static TheoryData<string, string> Pages => new()
    {
        { "/admin", "Overview" }, { "/admin/upsells", "Upsells and models" }, { "/admin/rules", "Rules" },
        { "/admin/review", "Review queue" }, { "/admin/risk", "Risk settings" }, { "/admin/churn", "Churn segments" },
        { "/admin/cart-offers", "Cart offers" }, { "/admin/experiments", "Experiments" }, { "/admin/ai", "AI use" }, { "/admin/privacy", "Data and privacy" }, { "/admin/operations", "Operations" }, { "/admin/decisions", "Decisions" }, { "/admin/governance", "Model governance" },
    };

    private async Task<(IPage Page, List<string> Errors)> OpenAsync(string path, string? query = null)
    {
        var page = await app.NewPageAsync();
        var errors = new List<string>();
        page.PageError += (_, e) => errors.Add(e);
        // Not errors: the refused CDN (offline) and the 400 a form's validation answer is, which Chromium logs as a failed load.
        page.Console += (_, m) =>
        {
            if (m.Type == "error" && !m.Text.Contains("net::ERR_FAILED", StringComparison.Ordinal)
                && !m.Text.Contains("status of 400 (Bad Request)", StringComparison.Ordinal)) errors.Add(m.Text);
        };
        var response = await page.GotoAsync(app.PageUrl(path, query));
        Assert.Equal(200, response!.Status);
        return (page, errors);
    }

    [Fact]
    public async Task AShopThatHasNotGrantedAScopeTheAppAsksFor_SeesWhichAndWhatStopsWorking_UntilShopifyReportsTheGrant()
    {
        var all = app.Factory.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<PluginApp.Shopify.ShopifyOptions>>().Value.Scopes.Split(',');
        var old = all.Where(s => s is not ("write_merchant_managed_fulfillment_orders" or "read_shopify_payments_disputes")).ToArray();
        var t0 = app.Clock.GetUtcNow().AddDays(1);
        async Task ScopesUpdateAsync(string[] current, DateTimeOffset at)
        {
            var body = new System.Text.Json.Nodes.JsonObject
            {
                ["id"] = 1, ["previous"] = new System.Text.Json.Nodes.JsonArray(), ["updated_at"] = at.ToString("O", CultureInfo.InvariantCulture),
                ["current"] = new System.Text.Json.Nodes.JsonArray(current.Select(c => (System.Text.Json.Nodes.JsonNode?)c).ToArray()),
            };
            Assert.Equal(HttpStatusCode.OK, (await app.SendWebhookAsync("app/scopes_update", AdminFixture.Shop, body.ToJsonString())).StatusCode);
        }
        try
        {
            await ScopesUpdateAsync(old, t0);
            var (page, errors) = await OpenAsync("/admin/review");
            var banner = page.GetByTestId("missing-scopes");
            Assert.True(await banner.IsVisibleAsync());
            var items = (await banner.Locator("li").AllTextContentsAsync()).Select(t => t.Trim()).ToList();
            Assert.Equal(2, items.Count);
            Assert.StartsWith("write_merchant_managed_fulfillment_orders: holding fulfillment of high-risk orders", items[0]);
            Assert.StartsWith("read_shopify_payments_disputes: learning from Shopify Payments chargebacks", items[1]);
            var link = banner.GetByRole(AriaRole.Link);
            Assert.Equal($"/auth?shop={AdminFixture.Shop}", await link.GetAttributeAsync("href"));
            Assert.Equal("_top", await link.GetAttributeAsync("target"));

            // A delivery older than the grant we know arrives late: it changes nothing.
            await ScopesUpdateAsync(all, t0.AddMinutes(-1));
            await page.ReloadAsync();
            Assert.True(await banner.IsVisibleAsync());

            await ScopesUpdateAsync(all, t0.AddMinutes(1));
            await page.ReloadAsync();
            Assert.Equal(0, await banner.CountAsync());
            Assert.Empty(errors);
        }
        finally
        {
            await ScopesUpdateAsync(all, t0.AddHours(1));
        }
    }

    [Theory]
    [MemberData(nameof(Pages))]
    public async Task EveryPage_RendersTheStore_InTheShell_WithinWebVitalsBudgets(string path, string title)
    {
        var (page, errors) = await OpenAsync(path);

        Assert.Equal(title, (await page.Locator("h1").TextContentAsync())?.Trim());
        var nav = page.Locator("nav.app-nav a");
        Assert.Equal(Pages.Count(), await nav.CountAsync());
        Assert.Equal(title, (await page.Locator("nav.app-nav a[aria-current=page]").TextContentAsync())?.Trim());
        Assert.Contains("embedded=1", await nav.First.GetAttributeAsync("href"));
        Assert.DoesNotContain("id_token", await nav.First.GetAttributeAsync("href"));
        var (lcp, cls) = await VitalsAsync(page);
        // Why up to three loads, judged by the median: Built for Shopify judges a page by the 75th percentile of many loads;
        // one load on a test machine busy with other tests is one sample, not the page's figure.
        if (lcp > 2500)
        {
            var samples = new List<(double Lcp, double Cls)> { (lcp, cls) };
            for (var i = 0; i < 2; i++)
            {
                await page.ReloadAsync();
                samples.Add(await VitalsAsync(page));
            }
            (lcp, cls) = (samples.Select(x => x.Lcp).Order().ElementAt(1), samples.Max(x => x.Cls));
        }
        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{path}: LCP {lcp:F0} ms, CLS {cls:F3}"));
        Assert.InRange(lcp, 1, 2500);
        Assert.InRange(cls, 0, 0.1);
        Assert.False(await page.EvaluateAsync<bool>("() => !!window.__pwned"));
        Assert.True(errors.Count == 0, "browser errors: " + string.Join(" | ", errors));
        await AdminFixture.ScreenshotAsync(page, path == "/admin" ? "overview" : path["/admin/".Length..]);
    }

    private static async Task<(double Lcp, double Cls)> VitalsAsync(IPage page)
    {
        await page.WaitForTimeoutAsync(600);
        var vitals = await page.EvaluateAsync<JsonElement>("() => ({ lcp: window.__vitals.lcp, cls: window.__vitals.cls })");
        return (vitals.GetProperty("lcp").GetDouble(), vitals.GetProperty("cls").GetDouble());
    }

    [Theory]
    [MemberData(nameof(Pages))]
    public async Task EveryPage_IsFramedOnlyByTheShopsAdmin(string path, string title)
    {
        var response = await app.Client.GetAsync(app.PageUrl(path)[app.BaseUrl!.Length..]);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal($"frame-ancestors https://{AdminFixture.Shop} https://admin.shopify.com;", response.Headers.GetValues("Content-Security-Policy").Single());
        Assert.Contains($"<h1>{title}</h1>", await response.Content.ReadAsStringAsync());
    }

    [Theory]
    [MemberData(nameof(Pages))]
    public async Task EveryPage_WithoutAValidSessionToken_IsBouncedToAppBridge_AndShowsNothing(string path, string title)
    {
        var forged = ShopifySigning.SessionToken("shpss_not_the_secret_0000000000000000", AdminFixture.Shop, AppFixture.ClientId, app.Clock.GetUtcNow());
        foreach (var query in new[] { $"?shop={AdminFixture.Shop}&embedded=1", $"?shop={AdminFixture.Shop}&embedded=1&id_token={forged}" })
        {
            var response = await app.Client.GetAsync(path + query);
            var body = await response.Content.ReadAsStringAsync();

            Assert.Equal(HttpStatusCode.Redirect, response.StatusCode);
            var bounce = response.Headers.Location!.ToString();
            Assert.StartsWith("/auth/session-token?shop=admin-pages.myshopify.com", bounce);
            Assert.Contains("shopify-reload=" + Uri.EscapeDataString(path + $"?shop={AdminFixture.Shop}&embedded=1"), bounce);
            Assert.DoesNotContain(title, body);
            var page = await app.Client.GetAsync(bounce);
            var html = await page.Content.ReadAsStringAsync();
            Assert.Contains("app-bridge.js", html);
            Assert.DoesNotContain("<main", html);
        }
        Assert.Equal(HttpStatusCode.Unauthorized, (await app.Client.GetAsync(path)).StatusCode); // no shop: nowhere to bounce to
    }

    /// <summary>
    /// A link to another admin page loads that page once, with a fresh session token, as Shopify's first load of the app
    /// does. Until 6 Dec 2026 it went without one: the server sent it to the session-token bounce, which waits on App
    /// Bridge to load the page a second time (offline here, the bounce never comes back).
    /// </summary>
    [Fact]
    public async Task ALinkToAnotherAdminPage_LoadsItOnce_WithASessionToken()
    {
        var (page, errors) = await OpenAsync("/admin/ai");
        var documents = new List<string>();
        page.Request += (_, r) => { if (r.ResourceType == "document") documents.Add(r.Url); };

        await page.Locator("main a[href^='/admin/governance']").First.ClickAsync();
        await page.WaitForURLAsync(new Regex("/admin/governance"));

        Assert.Equal("Model governance", (await page.Locator("h1").TextContentAsync())!.Trim());
        var loaded = Assert.Single(documents);
        Assert.Contains("id_token=", loaded);
        Assert.Contains($"shop={AdminFixture.Shop}", loaded);
        Assert.True(errors.Count == 0, "browser errors: " + string.Join(" | ", errors));
    }

    /// <summary>
    /// The decision log's reasons read as sentences beside a long list of products shown: until 6 Dec 2026 the column was
    /// squeezed to a word a line ("The billing country differs from the shipping country" over six lines).
    /// </summary>
    [Fact]
    public async Task DecisionsPage_ReasonsReadAsSentences()
    {
        var (page, errors) = await OpenAsync("/admin/decisions");
        var cells = page.Locator("#decisions td.reasons", new() { HasTextString = "billing country" });
        Assert.True(await cells.CountAsync() > 0, "no decision with the country reason in the seeded store");
        var box = await cells.First.BoundingBoxAsync();
        var line = await cells.First.EvaluateAsync<double>("c => parseFloat(getComputedStyle(c).lineHeight) || 20");
        Assert.True(box!.Height <= 3 * line + 24, $"the reason is {box.Height} px high ({box.Width} px wide) at {line} px a line");
        Assert.True(errors.Count == 0, "browser errors: " + string.Join(" | ", errors));
    }

    [Fact]
    public async Task Bounce_RefusesToReloadAnotherOrigin()
    {
        var response = await app.Client.GetAsync($"/auth/session-token?shop={AdminFixture.Shop}&shopify-reload={Uri.EscapeDataString("https://evil.example/admin")}");

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
    }

    /// <summary>Arrowing through the window's list does not reload the page (focus would go back to its top at each step); Show does.</summary>
    [Fact]
    public async Task Overview_WindowList_ChangesOnlyWhenShown()
    {
        var (page, _) = await OpenAsync("/admin");

        await page.FocusAsync("#days");
        await page.Keyboard.PressAsync("ArrowDown");
        await page.WaitForTimeoutAsync(300);
        Assert.DoesNotContain("days=", page.Url);
        await page.SelectOptionAsync("#days", "30");
        await page.ClickAsync("form[aria-label=Window] button[type=submit]");
        await page.WaitForURLAsync(url => url.Contains("days=30", StringComparison.Ordinal));
        Assert.Equal("30", await page.InputValueAsync("#days"));
    }

    /// <summary>
    /// How answers were produced: the holdout's bestsellers are the experiment's, shown as such and apart from the model's
    /// fallbacks; a refused answer is named in words. Until 7 Dec 2026 the holdout's answers read as "Store bestsellers", a
    /// fallback of a model that had answered every other shopper, and a risky shopper's as "risky_session".
    /// </summary>
    [Fact]
    public async Task Overview_HowAnswersWereProduced_ShowsTheHoldoutApartFromTheModelsFallbacks()
    {
        var holdout = await app.CountAsync("SELECT count(*) FROM recommendation_decisions WHERE shop_id = $1 AND experiment_arm = 'holdout' AND path = 'bestsellers'", app.Seed.ShopId);
        var all = await app.CountAsync("SELECT count(*) FROM recommendation_decisions WHERE shop_id = $1", app.Seed.ShopId);
        var fallbacks = await app.CountAsync("SELECT count(*) FROM recommendation_decisions WHERE shop_id = $1 AND experiment_arm IS DISTINCT FROM 'holdout' AND path = 'bestsellers'", app.Seed.ShopId);
        Assert.True(holdout > 0 && all > holdout, $"{holdout} holdout answers of {all}");

        var (page, _) = await OpenAsync("/admin", "days=30");
        await page.ClickAsync("#paths summary");
        var rows = page.Locator("#paths table tbody tr");
        var holdoutRow = rows.Filter(new() { HasText = "Holdout (bestsellers)" });
        Assert.Equal(1, await holdoutRow.CountAsync());
        Assert.Contains(PluginApp.Admin.Charts.ValueFormatting.Format(PluginApp.Admin.Charts.ValueFormat.Percent, (double)holdout / all), await holdoutRow.InnerTextAsync());
        var bestsellers = rows.Filter(new() { HasTextRegex = new Regex("^Store bestsellers\\s") });
        Assert.Equal(fallbacks > 0 ? 1 : 0, await bestsellers.CountAsync());
        Assert.Equal("Nothing (a risky order from this shopper waits for review)", PluginApp.Recommendations.Admin.OverviewModel.PathName(PluginApp.Risk.RiskySessions.Path));
    }

    [Fact]
    public async Task Overview_AttributedRevenueOfADay_EqualsTheSumOfItsRecommendedLines()
    {
        var day = app.Orders.Where(o => o.Attributed).GroupBy(o => DateOnly.FromDateTime(o.At.UtcDateTime)).OrderByDescending(g => g.Count()).First();
        var expected = day.Sum(o => o.AttributedRevenue);
        // By hand from the orders table as well: the recommended lines of that day's orders, price times quantity less discounts.
        var fromOrders = (decimal)(await app.ScalarAsync("""
            SELECT coalesce(sum(l.price * l.quantity - coalesce(l.total_discount, 0)), 0) FROM order_lines l
            JOIN orders o ON o.shop_id = l.shop_id AND o.id = l.order_id
            WHERE l.shop_id = $1 AND (o.created_at AT TIME ZONE 'UTC')::date = $2
              AND l.id IN (SELECT line_id FROM recommendation_attributions WHERE shop_id = $1 AND experiment_arm <> 'holdout')
            """, app.Seed.ShopId, day.Key))!;
        Assert.True(expected > 0);
        Assert.Equal(expected, fromOrders);

        var (page, _) = await OpenAsync("/admin", "days=30");

        await page.ClickAsync("#revenue summary"); // "Show as table", as a merchant checking the numbers would
        var row = page.Locator("#revenue table tbody tr").Filter(new() { HasText = Format.Day(day.Key) });
        Assert.True(await row.CountAsync() == 1, $"no row for {Format.Day(day.Key)} in: {await page.Locator("#revenue table tbody").TextContentAsync()}");
        Assert.Contains(expected.ToString("N2", CultureInfo.InvariantCulture), await row.InnerTextAsync());
        var total = app.Orders.Where(o => o.Attributed).Sum(o => o.AttributedRevenue);
        Assert.Contains(total.ToString("N2", CultureInfo.InvariantCulture), await page.Locator("#total-revenue").InnerTextAsync());
        Assert.Equal(app.Orders.Count(o => o.Attributed).ToString(CultureInfo.InvariantCulture), (await page.Locator("#total-orders").InnerTextAsync()).Trim());
        // A week of 56 shoppers, about a tenth held out: too few to compare honestly, and the page says so.
        Assert.Contains("Not enough data yet", await page.Locator("#holdout").InnerTextAsync());
        // Model health names each kind's own baseline and links to its own page (until 5 Dec 2026 every kind read "the
        // popularity baseline" and linked to the Upsells page).
        var health = await page.Locator("[aria-labelledby=health-title]").InnerTextAsync();
        Assert.Contains("for the store's bestsellers (popularity)", health);
        Assert.Contains("Held-out NDCG@10", health);
        Assert.DoesNotContain("ServedNdcgAt10", health);
        Assert.DoesNotContain("popularity baseline", health);
        Assert.EndsWith("/admin/churn", new Uri(new Uri(page.Url), await page.Locator("[data-model-page=churn]").GetAttributeAsync("href")).AbsolutePath);
        Assert.EndsWith("/admin/risk", new Uri(new Uri(page.Url), await page.Locator("[data-model-page=risk]").GetAttributeAsync("href")).AbsolutePath);
    }

    [Fact]
    public async Task ExperimentsPage_ShowsBothExperimentsWithTheLiftPlotted_AndTheMerchantChangesSharesThenStopsAndStartsTheHoldout()
    {
        var (page, errors) = await OpenAsync("/admin/experiments");
        var upsells = page.Locator("#experiment-upsells");
        Assert.True(await upsells.IsVisibleAsync());
        Assert.True(await page.Locator("#experiment-cart-offers").IsVisibleAsync());
        // The week's shoppers were exposed through the real serving path; each arm's row counts them.
        var exposed = await app.CountAsync("SELECT count(*) FROM experiment_exposures WHERE experiment = 'upsells'");
        Assert.True(exposed > 40, $"{exposed} exposures");
        var shown = 0L;
        foreach (var arm in new[] { "holdout", "model" })
            shown += long.Parse((await upsells.Locator($"tr[data-arm='{arm}'] td").Nth(1).InnerTextAsync()).Replace(",", ""), CultureInfo.InvariantCulture);
        Assert.Equal(exposed, shown);
        // Revenue per visitor in the orders' currency (until 5 Dec 2026 a bare "0.43", unlike every other page's money).
        Assert.Matches(@"^USD -?[0-9,]+\.[0-9]{2}$", await upsells.Locator("tr[data-arm='model'] td").Nth(3).InnerTextAsync());
        Assert.Contains("not enough data yet", await upsells.Locator(".verdict").First.InnerTextAsync(), StringComparison.OrdinalIgnoreCase);
        Assert.True(await upsells.Locator("figure svg").CountAsync() >= 1, "no lift plot");
        await AdminFixture.ScreenshotAsync(page, "experiments-seeded");

        page.Dialog += (_, d) => d.AcceptAsync();
        try
        {
            await page.FillAsync("#upsells-share-holdout", "12.25");
            await page.FillAsync("#upsells-share-model", "70");
            await upsells.Locator("button[value=true]").ClickAsync();
            // In the percent the fields hold (until 6 Dec 2026 "the shares sum to 0.823; they must sum to 1").
            await EventuallyAsync(async () => (await upsells.Locator("[data-error-for=share_holdout]").InnerTextAsync()) == "the shares sum to 82.25 %; they must sum to 100 %");
            // Nothing saved (the row, if any, is the start the page's first read fixed, with the default shares).
            Assert.Equal(0, await app.CountAsync("SELECT count(*) FROM experiments WHERE key = 'upsells' AND (arms->0->>'share' = '0.1225' OR arms->1->>'share' = '0.7')"));
            await page.FillAsync("#upsells-share-model", "87.75");
            // The page reloads itself 0.4 s after the save succeeds: wait for that reload, or the next navigation would race it (net::ERR_ABORTED).
            await SaveAndAwaitReloadAsync(page, () => upsells.Locator("button[value=true]").ClickAsync(), "/api/admin/experiments/upsells");
            await EventuallyAsync(async () => await app.CountAsync("SELECT count(*) FROM experiments WHERE key = 'upsells' AND arms->0->>'share' = '0.1225'") == 1);

            // Shown as saved, so the page's Stop sends shares that still sum to 1 (until 5 Dec 2026 they showed as 12.3 and
            // 87.8, and Stop was refused as summing to 1.001).
            await page.GotoAsync(app.PageUrl("/admin/experiments"));
            Assert.Equal("12.25", await page.InputValueAsync("#upsells-share-holdout"));
            await page.Locator("#experiment-upsells button[value=false]").ClickAsync();
            await EventuallyAsync(async () => await app.CountAsync("SELECT count(*) FROM experiments WHERE key = 'upsells' AND status = 'stopped'") == 1);
            // Stopped: every visitor gets the model, the holdout visitor included.
            var holdoutVisitor = app.Seed.VisitorIn("holdout");
            var answer = await app.Seed.RecommendAsync($"placement=product&product_id=101&limit=4&visitor_id={holdoutVisitor}-stopped");
            Assert.Equal("model", answer.GetProperty("experiment").GetProperty("arm").GetString());
            Assert.Empty(errors);
        }
        finally
        {
            var put = new HttpRequestMessage(HttpMethod.Put, "/api/admin/experiments/upsells")
            {
                Content = System.Net.Http.Json.JsonContent.Create(new { share_holdout = 10, share_model = 90, metric = "revenue", maxRefundRate = 10, maxAverageDiscount = 15, running = true }),
            };
            put.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", app.SessionToken(AdminFixture.Shop));
            Assert.True((await app.Client.SendAsync(put)).IsSuccessStatusCode); // the defaults again, running
        }
    }

    /// <summary>
    /// Saves through a form whose page reloads itself after a successful save (data-reload, 0.4 s later), and waits for
    /// that reload: a navigation of the test's own would race it (net::ERR_ABORTED). The mark set before the click is gone
    /// only once the page has been loaded again.
    /// </summary>
    private static async Task<IResponse> SaveAndAwaitReloadAsync(IPage page, Func<Task> click, string api)
    {
        await page.EvaluateAsync("() => { window.__beforeReload = true; }");
        var response = await page.RunAndWaitForResponseAsync(click, r => r.Url.Contains(api, StringComparison.Ordinal) && r.Request.Method != "GET");
        if (response.Ok)
            await page.WaitForFunctionAsync("() => window.__beforeReload !== true && document.readyState === 'complete'", null,
                new PageWaitForFunctionOptions { Timeout = 15_000 });
        return response;
    }

    private static async Task EventuallyAsync(Func<Task<bool>> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "timed out");
            await Task.Delay(100);
        }
    }

    /// <summary>
    /// The cart offers form says beside each field what the app cannot read: an emptied percent (the app needs one) and a
    /// pool of 1.5 codes. Until 5 Dec 2026 both were sent, the API could not read them, and the page said only "The app
    /// answered 400." Nothing is saved.
    /// </summary>
    [Fact]
    public async Task CartOffersForm_SaysBesideItsFieldsWhatTheAppCannotRead()
    {
        var (page, errors) = await OpenAsync("/admin/cart-offers");
        var before = (await app.AdminJsonAsync("/api/admin/cart-offers")).GetProperty("version").GetInt32();

        await page.FillAsync("#offerPercent", "");
        await page.FillAsync("#poolSize", "1.5");
        await page.ClickAsync("#cart-offers-form button[type=submit]");

        await Assertions.Expect(page.Locator("[data-error-for=offerPercent]")).ToContainTextAsync("Enter a number");
        await Assertions.Expect(page.Locator("[data-error-for=poolSize]")).ToContainTextAsync("\"1.5\" is not a whole number");
        await AdminFixture.ScreenshotAsync(page, "cart-offers-form-refused");
        Assert.Equal(before, (await app.AdminJsonAsync("/api/admin/cart-offers")).GetProperty("version").GetInt32());
        Assert.True(errors.Count == 0, "browser errors: " + string.Join(" | ", errors));
        // The share of carts that explore, as configured (CartOffers:ExploreShare, 0 in the tests; until 5 Dec 2026 the page said one in ten).
        Assert.Contains("Exploration is off: no cart is given a random action", System.Net.WebUtility.HtmlDecode(await page.ContentAsync()));
        // The codes' validity says what the shopper gets: at least the hours set, up to twice as long (until 5 Dec 2026 it read
        // "Codes expire after", and a shopper given a code at 24 hours could use it for 47).
        Assert.Contains("at least this long after she is given it, and at most 2 times as long", await page.InnerTextAsync("#codeExpiryHours-help"));
    }

    [Fact]
    public async Task RulesForm_RefusesABadValueBesideItsField_ThenSavesAGoodOne_AndServingObeysIt()
    {
        var (page, errors) = await OpenAsync("/admin/rules");
        var before = (await app.AdminJsonAsync("/api/admin/rules")).GetProperty("version").GetInt32();

        await page.FillAsync("#maxPriceRatio", "-1");
        await page.FillAsync("#blockedProductIds", "12, abc");
        await page.FillAsync("#maxPerProductType", "2.5");
        await page.ClickAsync("#rules-form button[type=submit]");

        await Assertions.Expect(page.Locator("[data-error-for=blockedProductIds]")).ToContainTextAsync("\"abc\" is not an id");
        // A count in whole units says so beside itself (until 5 Dec 2026 the API could not read 2.5 and the page said "The app answered 400.").
        await Assertions.Expect(page.Locator("[data-error-for=maxPerProductType]")).ToContainTextAsync("\"2.5\" is not a whole number");
        await page.FillAsync("#maxPerProductType", "");
        Assert.Equal("true", await page.GetAttributeAsync("#blockedProductIds", "aria-invalid"));
        await page.FillAsync("#blockedProductIds", "");
        await page.ClickAsync("#rules-form button[type=submit]");
        await Assertions.Expect(page.Locator("[data-error-for=maxPriceRatio]")).ToContainTextAsync("must be above 0");
        Assert.Equal(before, (await app.AdminJsonAsync("/api/admin/rules")).GetProperty("version").GetInt32());

        var blocked = app.Seed.P(106);
        await page.FillAsync("#maxPriceRatio", "");
        await page.FillAsync("#blockedProductIds", $"{blocked}, {app.Seed.P(112)}");
        await page.ClickAsync("#rules-form button[type=submit]");
        await page.WaitForLoadStateAsync(LoadState.Load);
        await Assertions.Expect(page.Locator("#rules-history")).ToContainTextAsync($"blocked products: none → {blocked}, {app.Seed.P(112)}");
        await Assertions.Expect(page.Locator("#blockedProductIds-help")).ToContainTextAsync(AdminFixture.HostileTitle);
        Assert.False(await page.EvaluateAsync<bool>("() => !!window.__pwned"));
        Assert.True(errors.Count == 0, "browser errors: " + string.Join(" | ", errors));

        app.Factory.Services.GetRequiredService<CatalogCache>().Invalidate(app.Seed.ShopId);
        for (var i = 0; i < 5; i++)
        {
            var answer = await app.Seed.RecommendAsync($"placement=product&product_id=105&limit=4&visitor_id=rules-{i}");
            Assert.DoesNotContain(106L, app.Seed.Products(answer));
            Assert.DoesNotContain(112L, app.Seed.Products(answer));
        }
        await app.Client.SendAsync(Put("/api/admin/rules", "{}"));
    }

    /// <summary>
    /// The what-if applies the per-type cap as serving does: the rules as they are remove nothing from what they served
    /// (three mugs served to a block whose default cap follows its own limit), and pinned products count towards the cap
    /// but are never over it. Until 5 Dec 2026 the default cap came from the items served (two of three), and pinned
    /// products were refused.
    /// </summary>
    [Fact]
    public async Task RulesWhatIf_AppliesThePerTypeCapAsServingDoes()
    {
        var seed = new StoreSeed(app, "whatif-cap.myshopify.com");
        await seed.SeedAsync(customersPerGroup: 2);
        var mugs = new[] { seed.P(101), seed.P(102), seed.P(103) };
        var yesterday = DayWindow.Ending(app.Clock.GetUtcNow().AddDays(-1), null, 1);
        await app.LogDecisionAsync(new PluginApp.Governance.Decision(PluginApp.Governance.DecisionKinds.Upsell, "whatif-cap", seed.ShopId,
            yesterday.From.AddHours(12), "model") { Subject = "cart", OutputIds = mugs });
        var whatIf = app.Factory.Services.GetRequiredService<RulesWhatIf>();
        async Task<long> RemovedAsync(BusinessRules rules) =>
            (await whatIf.YesterdayAsync(seed.ShopId, rules, yesterday, CancellationToken.None)).Reasons.GetValueOrDefault("over the per-type cap");

        Assert.Equal(0, await RemovedAsync(BusinessRules.Default));
        Assert.Equal(1, await RemovedAsync(BusinessRules.Default with { MaxPerProductType = 1, PinnedProductIds = [mugs[0], mugs[1]] }));
    }

    [Fact]
    public async Task RulesWhatIf_CountsYesterdaysServedItemsTheNewRulesWouldRemove()
    {
        // The product served most yesterday (UTC: the seeded shop has no time zone), and how many times.
        long product = 0, served = 0;
        await using (var cmd = app.Db.CreateCommand("""
            SELECT p, count(*) FROM recommendation_decisions, unnest(output_products) AS p
            WHERE shop_id = $1 AND decided_at >= date_trunc('day', now() AT TIME ZONE 'UTC' - interval '1 day') AT TIME ZONE 'UTC'
              AND decided_at < date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
            GROUP BY p ORDER BY count(*) DESC, p LIMIT 1
            """))
        {
            cmd.Parameters.AddWithValue(app.Seed.ShopId);
            await using var r = await cmd.ExecuteReaderAsync();
            if (await r.ReadAsync()) (product, served) = (r.GetInt64(0), r.GetInt64(1));
        }
        var version = (await app.AdminJsonAsync("/api/admin/rules")).GetProperty("version").GetInt32();
        var (page, _) = await OpenAsync("/admin/rules");

        await page.FillAsync("#blockedProductIds", product.ToString(CultureInfo.InvariantCulture));
        await page.ClickAsync("[data-whatif]");

        Assert.True(served > 0, "the seeded week served something yesterday");
        await Assertions.Expect(page.Locator("#whatif-result")).ToContainTextAsync($"would have removed {served}");
        Assert.Equal(version, (await app.AdminJsonAsync("/api/admin/rules")).GetProperty("version").GetInt32()); // the what-if only reads
    }

    [Fact]
    public async Task UpsellsPage_PromotesACandidateThroughTheGate_ThenRollsBack()
    {
        await app.Seed.TrainAsync();
        // Make the new version a candidate that the gate allows, whatever its measured metric was.
        // Version 1 active (whichever version the training just activated steps down first: one active version per shop).
        await app.ScalarAsync("UPDATE models SET status = 'retired' WHERE shop_id = $1 AND status = 'active' AND version <> 1", app.Seed.ShopId);
        await app.ScalarAsync("UPDATE models SET status = 'active', activated_at = now() - interval '1 hour' WHERE shop_id = $1 AND version = 1", app.Seed.ShopId);
        var newest = (int)(await app.ScalarAsync("SELECT max(version) FROM models WHERE shop_id = $1", app.Seed.ShopId))!;
        await app.ScalarAsync("""
            UPDATE models SET status = 'candidate', metrics = jsonb_set(jsonb_set(metrics, '{ServedNdcgAt10}', '0.99'), '{BaselineNdcgAt10}', '0')
            WHERE shop_id = $1 AND version = $2
            """, app.Seed.ShopId, newest);
        var (page, _) = await OpenAsync("/admin/upsells");
        page.Dialog += (_, d) => d.AcceptAsync();

        await page.ClickAsync($"tr[data-version='{newest}'] button:has-text('Promote')");
        await Assertions.Expect(page.Locator($"tr[data-version='{newest}'] .badge")).ToHaveTextAsync("active", new() { Timeout = 10000 });
        Assert.Equal(newest, (await app.AdminJsonAsync("/api/admin/models")).EnumerateArray().Single(m => m.GetProperty("status").GetString() == "active").GetProperty("version").GetInt32());

        await page.ClickAsync($"tr[data-version='{newest}'] button:has-text('Roll back')");
        await Assertions.Expect(page.Locator("tr[data-version='1'] .badge")).ToHaveTextAsync("active", new() { Timeout = 10000 });
        var answer = await app.Seed.RecommendAsync($"placement=product&product_id=105&limit=4&visitor_id={app.Seed.VisitorIn("model", "rb")}");
        Assert.Equal(1, answer.GetProperty("model_version").GetInt32());
    }

    [Fact]
    public async Task UpsellsPage_PreviewShowsWhatTheBlockWouldShowAndWhy_TitlesAsText()
    {
        var (page, errors) = await OpenAsync("/admin/upsells");
        // Each model's data window reads as two whole times, not a date broken over several lines of a narrow column.
        var times = page.Locator("#models .time");
        Assert.True(await times.CountAsync() >= 2);
        foreach (var time in await times.AllAsync())
            Assert.True(await time.EvaluateAsync<bool>("e => e.getClientRects().length === 1"), $"'{await time.InnerTextAsync()}' is broken over lines");

        // The gate as it judges: each version against its own run's bestsellers (until 6 Dec 2026 the page said the two
        // versions' figures were compared as they stand).
        Assert.Contains("measured against store bestsellers on its own held-out customers", await page.Locator("main").InnerTextAsync());
        await page.FillAsync("#product", "Product 109");
        await page.ClickAsync("form[data-preview] button[type=submit]");

        await Assertions.Expect(page.Locator("#preview-result li").First).ToBeVisibleAsync();
        var text = await page.Locator("#preview-result").InnerTextAsync();
        Assert.Contains("On “Product 109”", text);
        Assert.Matches("(Often bought together with this product|Bought by the same customers as this product|A bestseller in this store)", text);
        // As many as the block is set to show, each price as the admin writes money (until 8 Dec 2026 always four, and
        // "USD 12.00" read from the raw amount).
        await page.SelectOptionAsync("#count", "6");
        await page.ClickAsync("form[data-preview] button[type=submit]");
        await Assertions.Expect(page.Locator("#preview-result li")).ToHaveCountAsync(6);
        var preview = await app.AdminJsonAsync("/api/admin/recommendations/preview?product=Product%20109&count=6");
        var first = preview.GetProperty("items")[0];
        var priceText = PluginApp.Shopify.Currency.Format(decimal.Parse(first.GetProperty("price").GetString()!, System.Globalization.CultureInfo.InvariantCulture),
            first.GetProperty("currency").GetString());
        Assert.Equal(priceText, first.GetProperty("priceText").GetString());
        await Assertions.Expect(page.Locator("#preview-result li").First).ToContainTextAsync($"— {priceText}:");
        var tooMany = await app.Client.SendAsync(app.AdminGet("/api/admin/recommendations/preview?product=Product%20109&count=9", AdminFixture.Shop));
        Assert.Equal(System.Net.HttpStatusCode.BadRequest, tooMany.StatusCode);
        await page.FillAsync("#product", "Product 111");
        await page.ClickAsync("form[data-preview] button[type=submit]");
        await Assertions.Expect(page.Locator("#preview-result")).ToContainTextAsync("Product 111");
        Assert.False(await page.EvaluateAsync<bool>("() => !!window.__pwned"));
        Assert.True(errors.Count == 0, "browser errors: " + string.Join(" | ", errors));
        Assert.Equal(0L, await app.CountAsync("SELECT count(*) FROM recommendation_decisions WHERE shop_id = $1 AND visitor_hash IS NULL AND customer_id IS NULL AND decided_at > now() - interval '1 minute'", app.Seed.ShopId));
    }

    [Fact]
    public async Task UpsellSwitch_Off_BlocksShowNothing_TheChangeIsRecorded_AndOnAgainServes()
    {
        var (page, _) = await OpenAsync("/admin/upsells");

        await page.UncheckAsync("#enabled");
        await page.SelectOptionAsync("#whenOff", "nothing");
        await page.ClickAsync("form[data-api*='features'] button[type=submit]");
        await Assertions.Expect(page.Locator("#switch-state")).ToHaveTextAsync("Off, showing nothing", new() { Timeout = 10000 });

        var off = await app.Seed.RecommendAsync("placement=product&product_id=105&limit=4&visitor_id=switch-1");
        Assert.Equal("switched_off", off.GetProperty("path").GetString());
        Assert.Equal(0, off.GetProperty("items").GetArrayLength());
        // The preview says why it shows nothing: the switch, not the rules (until 6 Dec 2026 it blamed the rules).
        await page.FillAsync("#product", "Product 109");
        await page.ClickAsync("form[data-preview] button[type=submit]");
        await Assertions.Expect(page.Locator("#preview-result")).ToContainTextAsync("Nothing: upsells are switched off.");
        var history = await app.AdminJsonAsync("/api/admin/features/history");
        Assert.False(history[0].GetProperty("enabled").GetBoolean());
        Assert.StartsWith("staff user", history[0].GetProperty("by").GetString());

        await page.CheckAsync("#enabled");
        await page.ClickAsync("form[data-api*='features'] button[type=submit]");
        await Assertions.Expect(page.Locator("#switch-state")).ToHaveTextAsync("On", new() { Timeout = 10000 });
        var on = await app.Seed.RecommendAsync("placement=product&product_id=105&limit=4&visitor_id=switch-1");
        Assert.True(on.GetProperty("items").GetArrayLength() > 0);
    }

    [Fact]
    public async Task DisclosurePage_SavesTheShopperNotice_WhichTheBlocksReceiveAsPlainText()
    {
        var (page, errors) = await OpenAsync("/admin/ai");
        const string notice = "We suggest items other shoppers bought together. <img src=x onerror=\"window.__pwned=1\">";
        Assert.Contains("Upsell recommender", await page.Locator(".disclosure-card h2").First.InnerTextAsync());
        // Each model's quality named as the field names it, not by its metrics key (until 6 Dec 2026 "held-out ServedNdcgAt10").
        var cards = await page.Locator(".disclosure-card").First.InnerTextAsync();
        Assert.Contains("held-out NDCG@10", cards);
        Assert.DoesNotContain("ServedNdcgAt10", await page.Locator("main").InnerTextAsync());

        await page.FillAsync("#text", notice);
        var saved = await SaveAndAwaitReloadAsync(page, () => page.ClickAsync("form[data-api*='shopper-notice'] button[type=submit]"), "/api/admin/shopper-notice");
        Assert.Equal(200, saved.Status);
        await Assertions.Expect(page.Locator("#text")).ToHaveValueAsync(notice, new() { Timeout = 10000 });

        app.Factory.Services.GetRequiredService<CatalogCache>().Invalidate(app.Seed.ShopId);
        var answer = await app.Seed.RecommendAsync("placement=product&product_id=105&limit=4&visitor_id=notice-1");
        Assert.Equal(notice, answer.GetProperty("notice").GetString());
        await page.FillAsync("#text", new string('x', 281));
        await page.ClickAsync("form[data-api*='shopper-notice'] button[type=submit]");
        await Assertions.Expect(page.Locator("[data-error-for=text]")).ToContainTextAsync("at most 280 characters");
        Assert.False(await page.EvaluateAsync<bool>("() => !!window.__pwned"));
        Assert.True(errors.Count == 0, "browser errors: " + string.Join(" | ", errors));
    }

    [Fact]
    public async Task GovernancePage_ListsEveryModelWithItsRisk_TurnsAFeatureOffInOneClickWithTheReason_AndTheOverviewShowsAnOpenAlert()
    {
        var shopId = app.Seed.ShopId;
        await app.ScalarAsync("""
            INSERT INTO governance_alerts (shop_id, model_kind, metric, detail, model_version, since, raised_at, updated_at)
            VALUES ($1, 'risk', 'drift:input:amount_z', 'the order risk''s input ''amount_z'' moved: population stability index 0.41', 2, now() - interval '2 days', now(), now())
            """, shopId);
        try
        {
            var (page, errors) = await OpenAsync("/admin/governance");
            var kinds = await page.Locator(".inventory-entry").EvaluateAllAsync<string[]>("els => els.map(e => e.dataset.kind)");
            Assert.Equal(["risk", "intent", "churn", "recommender"], kinds); // highest risk first
            Assert.Contains("4 × 3 = 12, high", await page.Locator(".inventory-entry[data-kind=risk] h3").InnerTextAsync());
            Assert.Contains("0.41", await page.Locator("#alerts").InnerTextAsync());
            var release = page.Locator("#releases .release[data-kind=recommender]");
            await Assertions.Expect(release.Locator("[data-staged]")).ToHaveAttributeAsync("data-staged", "off"); // the test app's default
            await Assertions.Expect(release.Locator("[data-release=none]")).ToContainTextAsync("No version in shadow or canary");
            // Off, it names no stages (until 8 Dec 2026 it said "Shadow for … then a canary" beside the badge's "off").
            Assert.DoesNotContain("canary of", await release.Locator("[data-release=none]").InnerTextAsync());

            var row = page.Locator("#switches tr[data-feature=cart-offers]");
            await row.Locator("input[name=reason]").FillAsync("pausing discounts during the stock count");
            var saved = await page.RunAndWaitForResponseAsync(() => row.Locator("button[type=submit]").ClickAsync(),
                r => r.Url.Contains("/api/admin/features/cart-offers", StringComparison.Ordinal));
            Assert.Equal(200, saved.Status);
            await Assertions.Expect(page.Locator("#switches tr[data-feature=cart-offers] [data-state]")).ToHaveAttributeAsync("data-state", "off", new() { Timeout = 10000 });
            Assert.Contains("pausing discounts during the stock count", await page.Locator("#events").InnerTextAsync());
            Assert.False((await app.Factory.Services.GetRequiredService<PluginApp.Admin.Switches.AiFeatureSwitches>().StateAsync(shopId, "cart-offers", CancellationToken.None)).Enabled);
            // What "off" means reads as a sentence beside its badge, and the switches fit their card: until 5 Dec 2026 the
            // cart block's meaning stood a word a line, and the upsells' choice pushed the table past the card's edge.
            var meaning = await page.Locator("#switches tr[data-feature=cart-offers] td .text-subdued").BoundingBoxAsync();
            Assert.True(meaning!.Height < 5 * 20, $"the off meaning is {meaning.Height} px high in a {meaning.Width} px column");
            Assert.True(await page.Locator("#switches").EvaluateAsync<bool>("t => t.scrollWidth <= t.parentElement.clientWidth"),
                "the switches table is wider than its card");
            await AdminFixture.ScreenshotAsync(page, "governance-switched");

            await page.Locator("#switches tr[data-feature=cart-offers] button[type=submit]").ClickAsync();
            await Assertions.Expect(page.Locator("#switches tr[data-feature=cart-offers] [data-state]")).ToHaveAttributeAsync("data-state", "on", new() { Timeout = 10000 });

            var (overview, _) = await OpenAsync("/admin");
            Assert.Contains("amount_z", await overview.Locator("#overview-alerts").InnerTextAsync());
            Assert.True(errors.Count == 0, "browser errors: " + string.Join(" | ", errors));
        }
        finally
        {
            await app.ScalarAsync("DELETE FROM governance_alerts WHERE shop_id = $1", shopId);
        }
    }

    [Fact]
    public async Task PrivacyPage_ListsADataRequest_AndDownloadsItsExport()
    {
        var customer = app.Seed.Offset + 9000;
        await app.SendWebhookAsync("customers/data_request", AdminFixture.Shop, new System.Text.Json.Nodes.JsonObject
        {
            ["shop_id"] = 1, ["shop_domain"] = AdminFixture.Shop, ["orders_requested"] = new System.Text.Json.Nodes.JsonArray(),
            ["customer"] = new System.Text.Json.Nodes.JsonObject { ["id"] = customer, ["email"] = "ada@example.com" },
            ["data_request"] = new System.Text.Json.Nodes.JsonObject { ["id"] = 77 },
        }.ToJsonString());
        var (page, _) = await OpenAsync("/admin/privacy");

        await Assertions.Expect(page.Locator("#data-requests")).ToContainTextAsync(customer.ToString(CultureInfo.InvariantCulture));
        var download = await page.RunAndWaitForDownloadAsync(() => page.Locator("#data-requests button[data-download]").First.ClickAsync());
        var file = await File.ReadAllTextAsync((await download.PathAsync())!);
        Assert.Contains(customer.ToString(CultureInfo.InvariantCulture), file);
        Assert.EndsWith(".json", download.SuggestedFilename);
        // The retention list reads as a merchant says it: "1 day", not "1 days".
        await Assertions.Expect(page.Locator("#retention tr", new() { HasText = "expired review locks" })).ToContainTextAsync("1 day");
        await Assertions.Expect(page.Locator("#retention")).Not.ToContainTextAsync("1 days");
        await Assertions.Expect(page.Locator("#retention tr", new() { HasText = "every other webhook delivery's record" })).ToContainTextAsync("30 days");
    }

    [Fact]
    public async Task PrivacyPage_StripeCard_RefusesAPublishableKeyBesideItsField_ThenConnectsShowingTheEndpoint_ListsUnmatchedEvents_AndDisconnects()
    {
        var (page, errors) = await OpenAsync("/admin/privacy");
        await Assertions.Expect(page.Locator("#stripe-status")).ToContainTextAsync("Not connected");

        await page.FillAsync("#restrictedKey", "pk_test_pagekey0000");
        await page.FillAsync("#webhookSecret", "whsec_pagesecret0000");
        await page.ClickAsync("#stripe-form button[type=submit]");
        await Assertions.Expect(page.Locator("[data-error-for=restrictedKey]")).ToContainTextAsync("publishable key");
        Assert.Equal("true", await page.GetAttributeAsync("#restrictedKey", "aria-invalid"));
        Assert.Equal(0, await app.CountAsync("SELECT count(*) FROM stripe_connections WHERE shop_id = $1", app.Seed.ShopId));

        await page.FillAsync("#restrictedKey", "rk_test_pagekey0000");
        await page.ClickAsync("#stripe-form button[type=submit]");
        await Assertions.Expect(page.Locator("#stripe-endpoint")).ToContainTextAsync("/stripe/webhooks/");
        await Assertions.Expect(page.Locator("#stripe-status")).ToContainTextAsync("Connected (test mode)");
        var html = await page.ContentAsync();
        Assert.DoesNotContain("pagekey0000", html);
        Assert.DoesNotContain("pagesecret0000", html);
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM stripe_connections WHERE shop_id = $1", app.Seed.ShopId));

        // An unmatched event behind 20 newer ones is still listed under the count that names it.
        await app.ScalarAsync("""
            INSERT INTO stripe_events (connection_id, shop_id, id, type, api_version, livemode, created_at, received_at, charge_id, charge, payload, state, order_id, matched_by, outcome)
            SELECT c.id, c.shop_id, 'evt_page_' || g, 'charge.dispute.created', 'v', false, now() - interval '1 hour' * (30 - g), now() - interval '1 hour' * (30 - g),
                   'ch_page_' || g, '{}', '{"id": "dp"}', CASE WHEN g = 0 THEN 'unmatched' ELSE 'no_label' END, NULL, NULL,
                   CASE WHEN g = 0 THEN 'no order names this charge' END
            FROM stripe_connections c, generate_series(0, 20) g WHERE c.shop_id = $1
            """, app.Seed.ShopId);
        await page.ReloadAsync();
        await Assertions.Expect(page.Locator("#stripe-status")).ToContainTextAsync("1 unmatched");
        await Assertions.Expect(page.Locator("#stripe-unmatched")).ToContainTextAsync("no order names this charge");

        page.Dialog += (_, d) => d.AcceptAsync();
        await page.ClickAsync("#stripe-disconnect");
        await Assertions.Expect(page.Locator("#stripe-status")).ToContainTextAsync("Not connected");
        Assert.Equal(0, await app.CountAsync("SELECT count(*) FROM stripe_connections WHERE shop_id = $1", app.Seed.ShopId));
        Assert.True(errors.Count == 0, "browser errors: " + string.Join(" | ", errors));
    }

    [Fact]
    public async Task OperationsPage_RetriesAFailedCallToShopify()
    {
        var id = (long)(await app.ScalarAsync("""
            INSERT INTO outbox_messages (shop_id, resource_key, operation, variables, idempotency_key, created_at, next_attempt_at, attempts, last_error, failed_at)
            VALUES ($1, 'gid://shopify/Order/1', 'tagsAdd', '{}'::jsonb, 'ops-retry', now(), now(), 10, 'Shopify said no', now()) RETURNING id
            """, app.Seed.ShopId))!;
        // A call waiting after a try that did not go through says why (until 6 Dec 2026 the page counted it, nothing more).
        var waiting = (long)(await app.ScalarAsync("""
            INSERT INTO outbox_messages (shop_id, resource_key, operation, variables, idempotency_key, created_at, next_attempt_at, attempts, last_error)
            VALUES ($1, 'gid://shopify/Order/2', 'tagsAdd', '{}'::jsonb, 'ops-waiting', now(), now() + interval '1 day', 3, 'HTTP 503 from Shopify') RETURNING id
            """, app.Seed.ShopId))!;
        var (page, _) = await OpenAsync("/admin/operations");
        await Assertions.Expect(page.Locator("#outbox-failures")).ToContainTextAsync("Shopify said no");
        await Assertions.Expect(page.Locator("#outbox-waiting")).ToContainTextAsync("HTTP 503 from Shopify");
        await app.ScalarAsync("DELETE FROM outbox_messages WHERE id = $1", waiting);

        await page.ClickAsync("#outbox-failures button:has-text('Retry')");

        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (DateTime.UtcNow < deadline && await app.CountAsync("SELECT count(*) FROM outbox_messages WHERE id = $1 AND failed_at IS NOT NULL AND attempts = 10", id) == 1)
            await Task.Delay(100);
        Assert.Equal(0L, await app.CountAsync("SELECT count(*) FROM outbox_messages WHERE id = $1 AND failed_at IS NOT NULL AND attempts = 10", id));
        Assert.Contains("deliveries", (await page.Locator("#webhooks-title").InnerTextAsync()).ToLowerInvariant());
    }

    private HttpRequestMessage Put(string path, string json)
    {
        var request = app.AdminGet(path, AdminFixture.Shop);
        request.Method = HttpMethod.Put;
        request.Content = new StringContent(json, System.Text.Encoding.UTF8, "application/json");
        return request;
    }
}
