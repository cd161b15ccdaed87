using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text.Json.Nodes;
using Microsoft.Playwright;
using PluginApp.Tests.Infrastructure;

namespace PluginApp.Tests.Storefront;

/// <summary>
/// The app in process on its own database, the stand-in storefront in front of it, and Debian's chromium
/// driven by Playwright. The trained shop is made once, by the first test that needs it.
/// </summary>
public sealed class StorefrontFixture : IAsyncLifetime
{
    public const string Shop = "storefront-test.myshopify.com";

    /// <summary>
    /// The block test classes run one after the other, not beside each other: each starts an app and a browser, and the
    /// blocks give up after 1.5 s by design, which two of them side by side on a 2-core machine can reach.
    /// </summary>
    public const string Collection = "storefront blocks";

    /// <summary>What Shopify's storefront would have: products with names, bought together in patterns.</summary>
    public static readonly (long Id, string Title)[] Catalog =
    [
        (101, "Stoneware Mug"), (102, "Cork Coaster Set"), (103, "Pour-Over Coffee Filter"), (104, "Linen Tea Towel"),
        (105, "Olive Wood Spoon"), (106, "Enamel Colander"), (107, "Loose Leaf Tea Tin"), (108, "Glass Teapot"),
    ];

    private static readonly string[] BrowserArgs =
        ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"];

    private readonly SemaphoreSlim _seedOnce = new(1, 1);
    private long? _shopId;
    private bool _appStarted;

    public AppFixture App { get; } = new();
    public StorefrontServer Storefront { get; private set; } = null!;
    public IPlaywright Playwright { get; private set; } = null!;
    public IBrowser Browser { get; private set; } = null!;

    /// <summary>How long the blocks wait for an answer in these tests (see <see cref="StorefrontServer.BlockTimeLimit"/>).</summary>
    public static readonly TimeSpan AnswerWait = TimeSpan.FromSeconds(10);

    public static string ChromiumPath => Environment.GetEnvironmentVariable("CHROMIUM_PATH") is { Length: > 0 } p ? p : "/usr/bin/chromium";

    public async Task InitializeAsync()
    {
        // Why no skip: a storefront test that silently does not run proves nothing.
        if (!File.Exists(ChromiumPath))
            throw new InvalidOperationException(
                $"Chromium is not installed at {ChromiumPath}: the storefront tests need Debian's chromium " +
                "(scripts/test.sh installs it: apt-get update && apt-get install -y chromium; or set CHROMIUM_PATH).");
        await App.InitializeAsync();
        _appStarted = true;
        Storefront = await StorefrontServer.StartAsync(App.Client, AppFixture.ClientSecret, App.Clock, ThemeBlockRenderer.ThemeExtensionDir, Shop);
        // The blocks wait up to the tests' own waits; the test of the shipped 1.5 s limit asks for it.
        Storefront.BlockTimeLimit = AnswerWait;
        Playwright = await Microsoft.Playwright.Playwright.CreateAsync();
        Browser = await Playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = ChromiumPath,
            Headless = true,
            Args = BrowserArgs,
        });
    }

    /// <summary>
    /// A browser page on the storefront: remote images answered with a placeholder picture, any other remote
    /// request refused (no internet), and every layout shift recorded in <c>window.__paShifts</c> (<c>input</c>: within
    /// 500 ms of the shopper's input, which cumulative layout shift does not count), with the
    /// block's and the page footer's boxes at DOMContentLoaded in <c>window.__paBefore</c>.
    /// </summary>
    public async Task<IPage> NewPageAsync()
    {
        var context = await Browser.NewContextAsync(new BrowserNewContextOptions
        {
            ViewportSize = new ViewportSize { Width = 1280, Height = 1000 },
            Locale = "en-GB",
            TimezoneId = "UTC",
        });
        await context.RouteAsync(url => !url.StartsWith(Storefront.BaseUrl, StringComparison.Ordinal), async route =>
        {
            if (route.Request.ResourceType == "image")
                await route.FulfillAsync(new RouteFulfillOptions { ContentType = "image/svg+xml", Body = PlaceholderImage(route.Request.Url) });
            else
                await route.AbortAsync();
        });
        await context.AddInitScriptAsync(LayoutProbe);
        return await context.NewPageAsync();
    }

    private const string LayoutProbe = """
        (() => {
          const shifts = [];
          Object.defineProperty(window, '__paShifts', { value: shifts });
          Object.defineProperty(window, '__paShiftSupported', {
            value: typeof PerformanceObserver !== 'undefined' && PerformanceObserver.supportedEntryTypes.includes('layout-shift') });
          if (window.__paShiftSupported) {
            new PerformanceObserver((list) => {
              for (const e of list.getEntries()) shifts.push({
                value: e.value,
                input: e.hadRecentInput,
                sources: (e.sources || []).map((s) => s.node ? s.node.nodeName + '.' + (s.node.className || '') : '?').join(' '),
              });
            }).observe({ type: 'layout-shift', buffered: true });
          }
          const box = (selector) => {
            const el = document.querySelector(selector);
            if (!el) return null;
            const r = el.getBoundingClientRect();
            return { x: r.x, y: r.y, width: r.width, height: r.height };
          };
          Object.defineProperty(window, '__paBox', { value: box });
          document.addEventListener('DOMContentLoaded', () => {
            window.__paBefore = { block: box('[data-pa-upsells]') || box('[data-pa-offers]'), below: box('#storefront-below'),
              state: (document.querySelector('[data-pa-upsells]') || document.querySelector('[data-pa-offers]'))?.getAttribute('data-pa-state') };
          });
        })();
        """;

    /// <summary>
    /// An init script: <c>window.__paRedraw(selector, how)</c> does what a theme does to its cart section after a cart change
    /// (Shopify's Section Rendering API): it fetches the page's HTML again and puts the server's new markup of the app block
    /// holding <c>selector</c> in place of the old, by the block wrapper's innerHTML (<c>how</c> "inner", as Dawn does) or by
    /// replacing the block's element ("replace"). The old element is kept in <c>window.__paOld</c>.
    /// </summary>
    public const string ThemeRedraw = """
        window.__paRedraw = async (selector, how) => {
          const html = await (await fetch(location.href)).text();
          const old = document.querySelector(selector);
          const wrapper = old.closest('.shopify-app-block');
          const fresh = new DOMParser().parseFromString(html, 'text/html').getElementById(wrapper.id);
          window.__paOld = old;
          if (how === 'replace') old.replaceWith(document.importNode(fresh.querySelector(selector), true));
          else wrapper.innerHTML = fresh.innerHTML;
        };
        """;

    /// <summary>Presses Tab until <paramref name="selector"/> has the focus: it is reachable by keyboard, in page order.</summary>
    public static async Task TabToAsync(IPage page, string selector)
    {
        for (var i = 0; i < 30; i++)
        {
            await page.Keyboard.PressAsync("Tab");
            if (await page.EvaluateAsync<bool>("(s) => document.activeElement === document.querySelector(s)", selector)) return;
        }
        Assert.Fail($"Tab never reached {selector}");
    }

    /// <summary>What has the page's focus: "body", or the focused element's tag, classes and whether it is in <paramref name="block"/>.</summary>
    public static Task<string> FocusAsync(IPage page, string block) => page.EvaluateAsync<string>("""
        (block) => {
          const a = document.activeElement;
          if (!a || a === document.body) return 'body';
          return a.tagName.toLowerCase() + (a.className ? '.' + String(a.className).trim().split(/\s+/).join('.') : '')
            + (a.closest(block) ? ' in ' : ' outside ') + block;
        }
        """, block);

    private static string PlaceholderImage(string url)
    {
        var name = Path.GetFileNameWithoutExtension(new Uri(url).AbsolutePath);
        var hue = (uint)StringComparer.Ordinal.GetHashCode(name) % 360;
        return $"""
            <svg xmlns="http://www.w3.org/2000/svg" width="300" height="300" viewBox="0 0 300 300">
              <rect width="300" height="300" fill="hsl({hue},45%,78%)"/>
              <circle cx="150" cy="135" r="70" fill="hsl({hue},45%,60%)"/>
              <text x="150" y="265" font-family="sans-serif" font-size="28" text-anchor="middle" fill="#333">{WebUtility.HtmlEncode(name)}</text>
            </svg>
            """;
    }

    /// <summary>Installs the shop, sends its catalog and orders with co-purchase patterns, trains and waits for an active model.</summary>
    public async Task<long> TrainedShopAsync()
    {
        await _seedOnce.WaitAsync();
        try
        {
            if (_shopId is { } id) return id;
            var shopId = await App.InstallShopAsync(Shop);
            foreach (var (productId, title) in Catalog)
            {
                var product = ShopifyPayloads.Product(productId, variants: 1);
                product["title"] = title;
                product["handle"] = Handle(title);
                await Ok(await App.SendWebhookAsync("products/create", Shop, product.ToJsonString()), "products/create");
            }
            foreach (var order in Orders()) await Ok(await App.SendWebhookAsync("orders/create", Shop, order.ToJsonString()), "orders/create");

            var train = new HttpRequestMessage(HttpMethod.Post, "/api/admin/models/train");
            train.Headers.Authorization = new AuthenticationHeaderValue("Bearer", App.SessionToken(Shop));
            await Ok(await App.Client.SendAsync(train), "POST /api/admin/models/train");

            var deadline = DateTime.UtcNow.AddSeconds(60);
            string last = "";
            while (DateTime.UtcNow < deadline)
            {
                var list = await App.Client.SendAsync(App.AdminGet("/api/admin/models", Shop));
                last = await list.Content.ReadAsStringAsync();
                if (list.IsSuccessStatusCode)
                {
                    var root = JsonNode.Parse(last);
                    var models = root as JsonArray ?? root?["models"] as JsonArray ?? [];
                    if (models.Any(m => m?["status"]?.GetValue<string>() == "active" && m?["kind"]?.GetValue<string>() is null or "recommender"))
                        return (_shopId = shopId).Value;
                }
                await Task.Delay(250);
            }
            throw new TimeoutException($"no active recommender model after 60 s; GET /api/admin/models answered: {last}");
        }
        finally
        {
            _seedOnce.Release();
        }
    }

    public static string Handle(string title) => title.ToLowerInvariant().Replace(' ', '-');

    /// <summary>
    /// Forty customers, each with two or three orders over the last two months: mugs go with coasters and
    /// filters, towels with spoons and colanders, tea with teapots. Deterministic.
    /// </summary>
    private static IEnumerable<JsonObject> Orders()
    {
        long[][] baskets =
        [
            [101, 102], [101, 103], [101, 102, 103], [104, 105], [104, 106], [104, 105, 106], [107, 108], [101, 107, 108],
        ];
        var now = DateTimeOffset.UtcNow;
        var orderId = 5_000_000L;
        for (var customer = 0; customer < 40; customer++)
            for (var k = 0; k < 2 + customer % 2; k++)
            {
                var basket = baskets[(customer * 3 + k * 5) % baskets.Length];
                var at = now.AddDays(-(58 - (customer + k * 17) % 57)).ToString("yyyy-MM-dd'T'HH:mm:ssK", CultureInfo.InvariantCulture);
                var order = ShopifyPayloads.Order(++orderId, customerId: 70_000 + customer, lines: basket.Length, updatedAt: at);
                order["created_at"] = at;
                order["processed_at"] = at;
                var lines = order["line_items"]!.AsArray();
                for (var i = 0; i < basket.Length; i++)
                {
                    var line = lines[i]!.AsObject();
                    line["product_id"] = basket[i];
                    line["variant_id"] = basket[i] * 10;
                    line["title"] = Catalog.First(c => c.Id == basket[i]).Title;
                }
                yield return order;
            }
    }

    private static async Task Ok(HttpResponseMessage response, string what)
    {
        if (!response.IsSuccessStatusCode)
            throw new InvalidOperationException($"{what} answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
    }

    public async Task DisposeAsync()
    {
        if (Browser is not null) await Browser.DisposeAsync();
        Playwright?.Dispose();
        if (Storefront is not null) await Storefront.DisposeAsync();
        if (_appStarted) await App.DisposeAsync();
    }
}
