using System.Collections.Concurrent;
using System.Net.Http.Headers;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Primitives;
using PluginApp.Shopify;

namespace PluginApp.Tests.Storefront;

/// <summary>How the stand-in storefront's app proxy treats the next requests to the app.</summary>
public enum ProxyBehaviour
{
    /// <summary>Sign and forward to the app, as Shopify does.</summary>
    Forward,
    /// <summary>Answer 500 without reaching the app (the app is down).</summary>
    Fail,
    /// <summary>Hold the request longer than the block waits, then forward (the app is slow).</summary>
    Slow,
}

/// <summary>One request that came through the stand-in app proxy, with the app's answer.</summary>
public sealed record ProxiedCall(string Method, string Path, string Query, string? RequestBody, int? Status, string? ResponseBody, bool Aborted);

/// <summary>
/// A small Kestrel "storefront" on loopback: serves the rendered block pages and the extension's assets, and
/// plays Shopify's app proxy: <c>/apps/pluginapp/*</c> is signed (shop, logged_in_customer_id, path_prefix,
/// timestamp, signature) and forwarded to the in-process app at <c>/proxy/*</c>. Also answers the Ajax cart.
/// </summary>
public sealed partial class StorefrontServer : IAsyncDisposable
{
    public const string ProxyPrefix = "/apps/pluginapp";

    private readonly WebApplication _web;
    private readonly HttpClient _app;
    private readonly string _clientSecret;
    private readonly TimeProvider _clock;
    private readonly string _assetsDir;
    private readonly ConcurrentQueue<ProxiedCall> _calls = new();
    private readonly ConcurrentDictionary<string, string> _pages = new(StringComparer.Ordinal);
    private readonly List<JsonObject> _cart = [];
    private string _cartToken = "storefront-cart";

    public string Shop { get; }
    public string BaseUrl { get; private set; } = "";
    public ProxyBehaviour Behaviour { get; set; } = ProxyBehaviour.Forward;

    /// <summary>The customer logged in on the storefront, whose id Shopify's proxy signs into each request (none: a guest).</summary>
    public long? LoggedInCustomer { get; set; }

    /// <summary>When set, the proxy answers /recommendations with this JSON instead of the app's (a hostile or broken answer).</summary>
    public string? RecommendationsOverride { get; set; }
    /// <summary>Slow: how long a request is held before it is forwarded.</summary>
    public TimeSpan SlowFor { get; set; } = TimeSpan.FromSeconds(5);
    /// <summary>Fail: how long before the 500 is sent (so the failure arrives after the first paint).</summary>
    public TimeSpan FailAfter { get; set; } = TimeSpan.FromMilliseconds(300);
    /// <summary>When set, forwarded requests wait for it: the test looks at the page before the answer arrives.</summary>
    public TaskCompletionSource? Gate { get; set; }
    /// <summary>With <see cref="Gate"/>: only requests to this proxy path ("cart-offers", "recommendations") wait; null, all do.</summary>
    public string? GatedPath { get; set; }

    /// <summary>
    /// How long the blocks wait for the app before they give up and hide (their scripts' <c>TIMEOUT_MS</c>), as served to
    /// the browser; null serves the scripts as shipped (1.5 s). Why: a test of how an answer is shown must not turn on
    /// whether a busy machine answered a loopback request within 1.5 s (it once did not, in CI); the time limit itself
    /// is tested with the scripts as shipped.
    /// </summary>
    public TimeSpan? BlockTimeLimit { get; set; }
    public IReadOnlyCollection<ProxiedCall> Calls => _calls;

    private StorefrontServer(HttpClient app, string clientSecret, TimeProvider clock, string assetsDir, string shop)
    {
        _app = app;
        _clientSecret = clientSecret;
        _clock = clock;
        _assetsDir = assetsDir;
        Shop = shop;
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        _web = builder.Build();
        _web.MapGet("/assets/{file}", Asset);
        _web.Map(ProxyPrefix + "/{**rest}", Proxy);
        _web.MapGet("/cart.js", () => Results.Json(CartJson()));
        _web.MapPost("/cart/add.js", AddToCart);
        _web.MapPost("/cart/update.js", UpdateCartAsync);
        // The same cart under a language path ("/fr/cart"), as Shopify serves its routes under one.
        _web.MapGet("/fr/cart.js", () => Results.Json(CartJson()));
        _web.MapPost("/fr/cart/update.js", UpdateCartAsync);
        // A line's quantity set as Shopify's /cart/change.js does (by variant id here; 0 removes it), as a theme's quantity
        // buttons call it without loading the page again.
        _web.MapPost("/cart/change.js", async (HttpRequest request) =>
        {
            var body = (await JsonNode.ParseAsync(request.Body))!.AsObject();
            var (variant, quantity) = (body["id"]!.GetValue<long>(), body["quantity"]!.GetValue<int>());
            lock (_cart)
            {
                var line = _cart.FirstOrDefault(l => l["variant_id"]!.GetValue<long>() == variant);
                if (line is null) return Results.Json(new JsonObject { ["status"] = 400, ["description"] = "no such line" }, statusCode: 400);
                if (quantity == 0) _cart.Remove(line); else line["quantity"] = quantity;
            }
            return Results.Json(CartJson());
        });
        // Shopify's storefront discount link: the code is put on the cart and the shopper goes back to it.
        _web.MapGet("/discount/{code}", (string code, string? redirect) =>
        {
            lock (_cart) AppliedDiscount = code;
            return Results.Redirect(redirect is { Length: > 0 } r && r.StartsWith('/') ? r : "/cart");
        });
        _web.MapGet("/{**path}", (HttpContext ctx) =>
        {
            // Shopify's cart cookie: the cart's token (and, since June 2024, its key), readable by the page's scripts.
            lock (_cart) ctx.Response.Cookies.Append("cart", _cartToken + "?key=5f0c1d2e3a4b6978", new CookieOptions { Path = "/", HttpOnly = false });
            var path = ctx.Request.Path.Value ?? "/";
            // Shopify's Section Rendering API for the cart icon Dawn draws ("/?sections=cart-icon-bubble"): each section's HTML
            // by its id, here the cart's item count.
            if (ctx.Request.Query["sections"] == "cart-icon-bubble")
            {
                int count;
                lock (_cart) count = _cart.Sum(l => l["quantity"]!.GetValue<int>());
                return Results.Json(new JsonObject
                {
                    ["cart-icon-bubble"] = $"<div id=\"shopify-section-cart-icon-bubble\" class=\"shopify-section\"><span class=\"cart-count-bubble\">{count}</span></div>",
                });
            }
            // The storefront's product JSON (/products/{handle}.js, under a language or market path too), where a test set it.
            if (_json.TryGetValue(path, out var json)) return Results.Content(json, "application/json; charset=utf-8");
            if (path.EndsWith(".js", StringComparison.Ordinal)) return Results.NotFound();
            var html = _pages.TryGetValue(path, out var page) ? page
                : $"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{path}</title></head><body><h1>Stand-in page {System.Net.WebUtility.HtmlEncode(path)}</h1></body></html>";
            return Results.Content(html, "text/html; charset=utf-8");
        });
    }

    public static async Task<StorefrontServer> StartAsync(HttpClient app, string clientSecret, TimeProvider clock, string themeExtensionDir,
        string shop)
    {
        var server = new StorefrontServer(app, clientSecret, clock, Path.Combine(themeExtensionDir, "assets"), shop);
        await server._web.StartAsync();
        server.BaseUrl = server._web.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First().TrimEnd('/');
        return server;
    }

    /// <summary>
    /// Asks the app proxy for <paramref name="pathAndQuery"/> (below <see cref="ProxyPrefix"/>) once, as a shopper before the
    /// test's would have, and fails unless it answers 200. Why: the first answer of a fresh process pays for JIT and loading the
    /// store's catalog and models, which under the whole suite's load can outlast a block's 1.5 s; a shopper's first visit is
    /// not the app's first request.
    /// </summary>
    public async Task WarmAsync(string pathAndQuery)
    {
        using var http = new HttpClient { BaseAddress = new Uri(BaseUrl) };
        using var warm = await http.GetAsync(ProxyPrefix + pathAndQuery);
        Assert.True(warm.IsSuccessStatusCode, $"GET {pathAndQuery} through the app proxy answered {(int)warm.StatusCode}: {await warm.Content.ReadAsStringAsync()}");
    }

    /// <summary>Serves <paramref name="html"/> at <paramref name="path"/> (e.g. a product page with the block).</summary>
    public void SetPage(string path, string html) => _pages[path] = html;

    private readonly ConcurrentDictionary<string, string> _json = new(StringComparer.Ordinal);

    /// <summary>What the storefront answers at <paramref name="path"/> as JSON (a product's /products/{handle}.js, say); null: nothing.</summary>
    public void SetJson(string path, JsonNode? json)
    {
        if (json is null) _json.TryRemove(path, out _);
        else _json[path] = json.ToJsonString();
    }

    public void SetCart(params (long ProductId, long VariantId, int Quantity)[] lines)
    {
        lock (_cart)
        {
            _cart.Clear();
            _attributes.Clear();
            AppliedDiscount = null;
            foreach (var l in lines)
                _cart.Add(new JsonObject { ["product_id"] = l.ProductId, ["variant_id"] = l.VariantId, ["id"] = l.VariantId, ["quantity"] = l.Quantity });
        }
    }

    /// <summary>The order was placed: Shopify starts the shopper's next cart, empty, under a new token (and cookie).</summary>
    public void StartNewCart(string token)
    {
        lock (_cart)
        {
            _cart.Clear();
            _attributes.Clear();
            AppliedDiscount = null;
            _cartToken = token;
        }
    }

    private readonly JsonObject _attributes = new();

    /// <summary>The cart's attributes as the page's scripts left them.</summary>
    public JsonObject Attributes
    {
        get { lock (_cart) return (JsonObject)_attributes.DeepClone(); }
    }

    /// <summary>Variants the shop has sold out of, by id, with their product's title: /cart/add.js refuses them as Shopify does.</summary>
    public System.Collections.Concurrent.ConcurrentDictionary<long, string> SoldOut { get; } = new();

    /// <summary>How long /cart/add.js takes to refuse a sold-out variant (a busy store, a slow network): none by default.</summary>
    public TimeSpan RefusalDelay { get; set; }

    /// <summary>
    /// What /cart.js says the cart costs after every discount, in the currency's subunit, and its currency (the shopper's);
    /// left out while null, as this stand-in prices nothing.
    /// </summary>
    public (long TotalPrice, string Currency)? CartTotal { get; set; }

    /// <summary>The cart's total before its discounts (/cart.js's original_total_price, in cents), or none.</summary>
    public long? CartOriginalTotal { get; set; }

    /// <summary>The code applied through /discount/{code}, or null.</summary>
    public string? AppliedDiscount { get; private set; }

    /// <summary>Cart attributes, merged as Shopify's /cart/update.js does; they travel to the order as note_attributes.</summary>
    private async Task<IResult> UpdateCartAsync(HttpRequest request)
    {
        var body = (await JsonNode.ParseAsync(request.Body))!.AsObject();
        lock (_cart)
            if (body["attributes"] is JsonObject attributes)
                foreach (var (key, value) in attributes) _attributes[key] = value?.DeepClone();
        return Results.Json(CartJson());
    }

    private JsonObject CartJson()
    {
        lock (_cart)
        {
            var cart = new JsonObject
            {
                // As /cart.js gives it since June 2024: the cart's token and its key (the webhooks carry the token alone).
                ["token"] = _cartToken + "?key=5f0c1d2e3a4b6978",
                ["attributes"] = _attributes.DeepClone(),
                ["item_count"] = _cart.Sum(l => l["quantity"]!.GetValue<int>()),
                ["items"] = new JsonArray(_cart.Select(l => (JsonNode)l.DeepClone()).ToArray()),
            };
            if (CartTotal is { } total) (cart["total_price"], cart["currency"]) = (total.TotalPrice, total.Currency);
            if (CartOriginalTotal is { } original) cart["original_total_price"] = original;
            return cart;
        }
    }

    private async Task<IResult> AddToCart(HttpRequest request)
    {
        var body = (await JsonNode.ParseAsync(request.Body))!.AsObject();
        var items = body["items"] as JsonArray ?? new JsonArray(new JsonObject { ["id"] = body["id"]?.GetValue<long>(), ["quantity"] = body["quantity"]?.GetValue<int>() ?? 1 });
        // Shopify's answer to an add it refuses: 422, and the reason in the shop's language.
        foreach (var item in items.OfType<JsonObject>())
            if (SoldOut.TryGetValue(item["id"]!.GetValue<long>(), out var title))
            {
                if (RefusalDelay > TimeSpan.Zero) await Task.Delay(RefusalDelay);
                return Results.Json(new JsonObject { ["status"] = 422, ["message"] = "Cart Error", ["description"] = $"The product '{title}' is already sold out." },
                    statusCode: 422);
            }
        var added = new JsonArray();
        lock (_cart)
            foreach (var item in items.OfType<JsonObject>())
            {
                var line = new JsonObject { ["variant_id"] = item["id"]!.GetValue<long>(), ["id"] = item["id"]!.GetValue<long>(), ["quantity"] = item["quantity"]?.GetValue<int>() ?? 1 };
                _cart.Add(line);
                added.Add(line.DeepClone());
            }
        return Results.Json(new JsonObject { ["items"] = added });
    }

    private IResult Asset(string file)
    {
        // Why GetFileName: a path from the URL never leaves the assets folder.
        var path = Path.Combine(_assetsDir, Path.GetFileName(file));
        if (!File.Exists(path)) return Results.NotFound();
        var type = Path.GetExtension(path) switch
        {
            ".js" => "text/javascript; charset=utf-8",
            ".css" => "text/css; charset=utf-8",
            ".svg" => "image/svg+xml",
            ".json" => "application/json",
            _ => "application/octet-stream",
        };
        var bytes = File.ReadAllBytes(path);
        if (BlockTimeLimit is { } limit && type.StartsWith("text/javascript", StringComparison.Ordinal))
            bytes = System.Text.Encoding.UTF8.GetBytes(WithTimeLimit(System.Text.Encoding.UTF8.GetString(bytes), file, limit));
        return Results.File(bytes, type);
    }

    /// <summary>The script with its time limit set to <paramref name="limit"/>; fails if the script has no single limit to set.</summary>
    private static string WithTimeLimit(string script, string file, TimeSpan limit)
    {
        var declared = TimeLimitDeclaration().Matches(script);
        if (declared.Count != 1)
            throw new InvalidOperationException($"{file} declares its time limit {declared.Count} times, not once as 'TIMEOUT_MS=<ms>'");
        return TimeLimitDeclaration().Replace(script, $"TIMEOUT_MS={(long)limit.TotalMilliseconds}");
    }

    // As the built script declares it (scripts/theme/build.mjs keeps the name): "var TIMEOUT_MS=1500," or "var x,TIMEOUT_MS=1500;".
    [System.Text.RegularExpressions.GeneratedRegex(@"\bTIMEOUT_MS ?= ?\d+")]
    private static partial System.Text.RegularExpressions.Regex TimeLimitDeclaration();

    /// <summary>What Shopify's app proxy does: same method and body, the signed parameters added to the query.</summary>
    private async Task Proxy(HttpContext ctx, string? rest)
    {
        var method = ctx.Request.Method;
        var browserQuery = ctx.Request.QueryString.Value ?? "";
        string? requestBody = null;
        if (ctx.Request.ContentLength > 0 || ctx.Request.Headers.TransferEncoding.Count > 0)
            requestBody = await new StreamReader(ctx.Request.Body).ReadToEndAsync(ctx.RequestAborted);
        var path = ProxyPrefix + "/" + rest;
        try
        {
            switch (Behaviour)
            {
                case ProxyBehaviour.Fail:
                    await Task.Delay(FailAfter, ctx.RequestAborted);
                    _calls.Enqueue(new ProxiedCall(method, path, browserQuery, requestBody, 500, null, false));
                    ctx.Response.StatusCode = 500;
                    await ctx.Response.WriteAsync("app unavailable", ctx.RequestAborted);
                    return;
                case ProxyBehaviour.Slow:
                    await Task.Delay(SlowFor, ctx.RequestAborted);
                    break;
            }
            if (Gate is { } gate && (GatedPath is null || GatedPath == rest)) await gate.Task.WaitAsync(TimeSpan.FromSeconds(30), ctx.RequestAborted);
            if (RecommendationsOverride is { } canned && rest == "recommendations")
            {
                _calls.Enqueue(new ProxiedCall(method, path, browserQuery, requestBody, 200, canned, false));
                ctx.Response.ContentType = "application/json";
                await ctx.Response.WriteAsync(canned, ctx.RequestAborted);
                return;
            }

            // Nobody logged in (unless a test logs a customer in): logged_in_customer_id is empty, and still signed.
            var signed = ShopifySigner.ProxyQuery(_clientSecret, Shop,
                QueryHelpers.ParseQuery(browserQuery).Select(p => new KeyValuePair<string, string>(p.Key, p.Value.ToString())), _clock.GetUtcNow(),
                LoggedInCustomer?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "", pathPrefix: ProxyPrefix);
            var forward = new HttpRequestMessage(new HttpMethod(method), "/proxy/" + rest + "?" + signed);
            if (requestBody is not null)
            {
                forward.Content = new StringContent(requestBody);
                forward.Content.Headers.ContentType = MediaTypeHeaderValue.Parse(ctx.Request.ContentType ?? "application/json");
            }
            forward.Headers.TryAddWithoutValidation("X-Forwarded-For", "203.0.113.50");
            forward.Headers.TryAddWithoutValidation("X-Forwarded-Host", Shop);
            using var answer = await _app.SendAsync(forward, ctx.RequestAborted);
            var body = await answer.Content.ReadAsByteArrayAsync(ctx.RequestAborted);
            _calls.Enqueue(new ProxiedCall(method, path, browserQuery, requestBody, (int)answer.StatusCode, System.Text.Encoding.UTF8.GetString(body), false));
            ctx.Response.StatusCode = (int)answer.StatusCode;
            if (answer.Content.Headers.ContentType is { } type) ctx.Response.ContentType = type.ToString();
            await ctx.Response.Body.WriteAsync(body, ctx.RequestAborted);
        }
        catch (OperationCanceledException) when (ctx.RequestAborted.IsCancellationRequested)
        {
            // The browser gave up (the block's time limit): nothing reaches the app.
            _calls.Enqueue(new ProxiedCall(method, path, browserQuery, requestBody, null, null, true));
        }
    }

    public async ValueTask DisposeAsync()
    {
        Gate?.TrySetResult();
        await _web.StopAsync();
        await _web.DisposeAsync();
    }
}
