using Microsoft.AspNetCore.Http.HttpResults;
using System.Globalization;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Primitives;
using PluginApp.Shopify;

namespace PluginApp.Demo;

public sealed class DemoOptions
{
    public const string Section = "Demo";

    /// <summary>The product page with the theme block, rendered from its Liquid by scripts/demo.sh.</summary>
    public string? StorefrontPage { get; set; }

    /// <summary>theme-extension/assets, served at /assets/ as Shopify's CDN would.</summary>
    public string? ThemeAssets { get; set; }
}

/// <summary>
/// A storefront preview for the demo: the block's page, its assets, and Shopify's app proxy played by the app
/// itself (/apps/pluginapp/* signed and forwarded to /proxy/*), so the real block calls the real serving path.
/// Mapped only in the Demo environment.
/// </summary>
public static class DemoStorefront
{
    public static IEndpointRouteBuilder MapDemoStorefront(this IEndpointRouteBuilder app, IHostEnvironment env)
    {
        if (!env.IsDemo()) return app;
        app.MapGet("/demo/storefront", Results<PhysicalFileHttpResult, NotFound<string>> (IOptions<DemoOptions> o) =>
            o.Value.StorefrontPage is { } page && File.Exists(page)
                ? TypedResults.PhysicalFile(Path.GetFullPath(page), "text/html; charset=utf-8")
                : TypedResults.NotFound("scripts/demo.sh renders the storefront page once a model is trained"));
        app.MapGet("/assets/{file}", Results<PhysicalFileHttpResult, NotFound> (string file, IOptions<DemoOptions> o) =>
        {
            var dir = o.Value.ThemeAssets;
            if (dir is null || file.Contains("..") || file.Contains('/')) return TypedResults.NotFound();
            var path = Path.GetFullPath(Path.Combine(dir, file));
            var type = file.EndsWith(".js", StringComparison.Ordinal) ? "text/javascript" : file.EndsWith(".css", StringComparison.Ordinal) ? "text/css" : "application/octet-stream";
            return File.Exists(path) ? TypedResults.PhysicalFile(path, type) : TypedResults.NotFound();
        });
        app.MapGet("/cart.js", () => TypedResults.Json(new { token = "demo-cart", items = Array.Empty<object>(), item_count = 0, total_price = 0, currency = "GBP" }));
        app.MapPost("/cart/add.js", () => TypedResults.Json(new { }));
        app.MapPost("/cart/update.js", () => TypedResults.Json(new { }));
        app.Map("/apps/pluginapp/{**rest}", ForwardAsync);
        return app;
    }

    private static async Task ForwardAsync(HttpContext http, string rest, IHttpClientFactory clients, IOptions<ShopifyOptions> shopify, TimeProvider clock)
    {
        var query = ShopifySigner.ProxyQuery(shopify.Value.ClientSecret, DemoExtensions.Shop,
            http.Request.Query.Select(p => new KeyValuePair<string, string>(p.Key, p.Value.ToString())), clock.GetUtcNow());
        using var request = new HttpRequestMessage(new HttpMethod(http.Request.Method), new Uri(new Uri(shopify.Value.AppUrl), $"/proxy/{rest}?{query}"));
        if (http.Request.ContentLength > 0 || http.Request.Method == "POST")
        {
            request.Content = new StreamContent(http.Request.Body);
            request.Content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");
        }
        request.Headers.Add("X-Forwarded-For", http.Connection.RemoteIpAddress?.ToString() ?? "127.0.0.1");
        using var response = await clients.CreateClient("demo-proxy").SendAsync(request, http.RequestAborted);
        http.Response.StatusCode = (int)response.StatusCode;
        http.Response.ContentType = response.Content.Headers.ContentType?.ToString();
        await response.Content.CopyToAsync(http.Response.Body, http.RequestAborted);
    }
}
