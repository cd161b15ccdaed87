using PluginApp.Governance;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Playwright;
using PluginApp.Recommendations;
using PluginApp.Tests.Infrastructure;
using PluginApp.Tests.Recommendations;
using PluginApp.Tests.Storefront;

namespace PluginApp.Tests.Admin;

/// <summary>One order the seeded week holds, with what the overview must credit to recommendations for it.</summary>
public sealed record SeededOrder(long Id, DateTimeOffset At, decimal AttributedRevenue, bool Attributed);

/// <summary>
/// The app on a loopback port with a trained store and a week of storefront traffic made through the real paths (the
/// app proxy's answers and events, then signed order webhooks), and Debian's chromium to look at the admin. The clock
/// walks through the week, so every row carries the day it would have in a live store.
/// </summary>
public sealed class AdminFixture : AppFixture
{
    public const string Shop = "admin-pages.myshopify.com";
    /// <summary>A product whose title would run script if any page wrote it as markup.</summary>
    public const string HostileTitle = "<script>window.__pwned=1</script>\"Quoted\" & <b>bold</b>";

    private static readonly string[] BrowserArgs =
        ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"];

    public StoreSeed Seed { get; private set; } = null!;
    public List<SeededOrder> Orders { get; } = [];
    public IPlaywright Playwright { get; private set; } = null!;
    public IBrowser Browser { get; private set; } = null!;

    protected override bool ServeOverHttp => true;

    // Why: a week of shoppers is made from one loopback address in seconds; the per-shopper limit would refuse it.
    protected override void ConfigureMainInstance(Microsoft.AspNetCore.Hosting.IWebHostBuilder builder) =>
        builder.UseSetting("Recommendations:PerClientPerMinute", "100000");

    public override async Task InitializeAsync()
    {
        if (!File.Exists(StorefrontFixture.ChromiumPath))
            throw new InvalidOperationException($"Chromium is not installed at {StorefrontFixture.ChromiumPath}: the admin tests need Debian's chromium.");
        await base.InitializeAsync();
        // Why a week back: the traffic below is made day by day up to today, as a live store would have it.
        Clock.Advance(TimeSpan.FromDays(-7));
        Seed = new StoreSeed(this, Shop);
        await Seed.SeedAsync(customersPerGroup: 12);
        await SendWebhookAsync("products/update", Shop, HostileProduct().ToJsonString());
        var (_, activated) = await Seed.TrainAsync();
        if (!activated) throw new InvalidOperationException("the seeded store's first model did not become active");
        await MakeTrafficAsync();
        await WarmUpAsync();
        Playwright = await Microsoft.Playwright.Playwright.CreateAsync();
        Browser = await Playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions { ExecutablePath = StorefrontFixture.ChromiumPath, Headless = true, Args = BrowserArgs });
    }

    /// <summary>
    /// Every page requested once before the browser measures it: Web Vitals budgets are for a running app, not for the
    /// just-in-time compilation of the first request after a deploy.
    /// </summary>
    private async Task WarmUpAsync()
    {
        foreach (var entry in Factory.Services.GetRequiredService<PluginApp.Admin.AdminNavigation>().Pages)
        {
            var response = await Client.GetAsync(PageUrl(entry.Path)[BaseUrl!.Length..]);
            if (!response.IsSuccessStatusCode) throw new InvalidOperationException($"{entry.Path} answered {(int)response.StatusCode} while warming up");
        }
    }

    public override async Task DisposeAsync()
    {
        if (Browser is not null) await Browser.DisposeAsync();
        Playwright?.Dispose();
        await base.DisposeAsync();
    }

    private JsonObject HostileProduct()
    {
        var body = ShopifyPayloads.Product(Seed.P(112), variants: 1, inventory: 10);
        body["product_type"] = StoreSeed.Types[StoreSeed.Group(112)];
        body["title"] = HostileTitle;
        body["updated_at"] = Clock.GetUtcNow().ToString("O");
        var v = body["variants"]![0]!.AsObject();
        v["id"] = Seed.V(1120);
        v["price"] = "21.00";
        return body;
    }

    /// <summary>
    /// Seven days: each day 8 shoppers see the product block, see every item, click the first, add the first to the cart
    /// for half of them; a quarter order the clicked product and one other an hour later. The clock ends where it began.
    /// </summary>
    private async Task MakeTrafficAsync()
    {
        var random = new Random(11);
        long orderNumber = 800_000;
        for (var day = 0; day < 7; day++)
        {
            for (var s = 0; s < 8; s++)
            {
                var visitor = $"wk{day}-{s}";
                var anchor = 101 + random.Next(11);
                var answer = await Seed.RecommendAsync($"placement=product&product_id={anchor}&limit=4&visitor_id={visitor}");
                var items = answer.GetProperty("items").EnumerateArray().ToList();
                if (items.Count == 0) continue;
                var requestId = answer.GetProperty("request_id").GetString()!;
                foreach (var item in items) await EventAsync("impression", requestId, visitor, item);
                await EventAsync("click", requestId, visitor, items[0]);
                if (s % 2 == 0) await EventAsync("add_to_cart", requestId, visitor, items[0]);
                await Factory.Services.GetRequiredService<DecisionLog>().FlushAsync(CancellationToken.None);
                if (s % 4 != 0) continue;
                var bought = items[0].GetProperty("product_id").GetInt64() - Seed.Offset;
                var other = bought == 101 ? 102 : 101;
                var at = Clock.GetUtcNow().AddHours(1);
                var order = Seed.Order(orderNumber++, null, [bought, other], at, visitor);
                // Every line whose product this shopper was shown is credited (an impression is the weakest signal, but a signal).
                var shown = items.Select(i => i.GetProperty("product_id").GetInt64()).ToHashSet();
                var revenue = order["line_items"]!.AsArray().Select(l => l!.AsObject())
                    .Where(l => shown.Contains(l["product_id"]!.GetValue<long>()))
                    .Sum(l => Money(l["price"]) * l["quantity"]!.GetValue<int>() - Money(l["total_discount"]));
                await SendWebhookAsync("orders/create", Shop, order.ToJsonString());
                // The holdout's shoppers were shown bestsellers, not recommendations: what they bought is not credited to them.
                var held = answer.GetProperty("experiment").GetProperty("arm").GetString() == PluginApp.Recommendations.UpsellExperiment.HoldoutArm;
                Orders.Add(new SeededOrder(Seed.Offset + orderNumber - 1, at, revenue, !held));
            }
            Clock.Advance(TimeSpan.FromDays(1));
        }
    }

    private static decimal Money(JsonNode? value) =>
        value is null ? 0m : decimal.Parse(value.GetValue<string>(), System.Globalization.CultureInfo.InvariantCulture);

    private async Task EventAsync(string type, string requestId, string visitor, JsonElement item)
    {
        var response = await Client.PostAsJsonAsync(StoreSeed.Signed("/proxy/events", Shop, "", Clock.GetUtcNow()), new
        {
            type, request_id = requestId, visitor_id = visitor, product_id = item.GetProperty("product_id").GetInt64(), placement = "product",
            position = item.GetProperty("rank").GetInt32() - 1, token = item.GetProperty("token").GetString(),
        });
        if (!response.IsSuccessStatusCode) throw new InvalidOperationException($"event {type} answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
    }

    /// <summary>An admin page as the embedded admin loads it: shop, host and embedded, and a fresh session token.</summary>
    public string PageUrl(string path, string? query = null) =>
        $"{BaseUrl}{path}?shop={Shop}&host=YWRtaW4uc2hvcGlmeS5jb20vc3RvcmUvYWRtaW4tcGFnZXM&embedded=1&id_token={SessionToken(Shop, TimeSpan.FromHours(1))}" +
        (query is null ? "" : "&" + query);

    /// <summary>
    /// A browser page on the admin: requests leaving the app (Shopify's CDN) are refused, as offline, and Web Vitals are
    /// recorded (largest contentful paint, layout shifts) for the test to read.
    /// </summary>
    public async Task<IPage> NewPageAsync()
    {
        var context = await Browser.NewContextAsync(new BrowserNewContextOptions { ViewportSize = new ViewportSize { Width = 1280, Height = 900 }, Locale = "en-GB" });
        await context.RouteAsync(url => !url.StartsWith(BaseUrl!, StringComparison.Ordinal), route => route.AbortAsync());
        await context.AddInitScriptAsync("""
            (() => {
              const vitals = { lcp: 0, cls: 0 };
              Object.defineProperty(window, '__vitals', { value: vitals });
              new PerformanceObserver((l) => { for (const e of l.getEntries()) vitals.lcp = Math.max(vitals.lcp, e.renderTime || e.loadTime || e.startTime); })
                .observe({ type: 'largest-contentful-paint', buffered: true });
              new PerformanceObserver((l) => { for (const e of l.getEntries()) if (!e.hadRecentInput) vitals.cls += e.value; })
                .observe({ type: 'layout-shift', buffered: true });
            })();
            """);
        return await context.NewPageAsync();
    }

    /// <summary>Saves a full-page screenshot under the test output (screenshots/NAME.png) and returns its path.</summary>
    public static async Task<string> ScreenshotAsync(IPage page, string name)
    {
        var dir = Path.Combine(AppContext.BaseDirectory, "screenshots");
        Directory.CreateDirectory(dir);
        var path = Path.Combine(dir, name + ".png");
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = path, FullPage = true });
        return path;
    }

    public async Task<JsonElement> AdminJsonAsync(string path)
    {
        var response = await Client.SendAsync(AdminGet(path, Shop));
        response.EnsureSuccessStatusCode();
        return await response.Content.ReadFromJsonAsync<JsonElement>();
    }
}
