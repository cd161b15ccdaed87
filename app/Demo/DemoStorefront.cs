using Microsoft.AspNetCore.Http.HttpResults;
using System.Globalization;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Primitives;
using Npgsql;
using PluginApp.Shopify;

namespace PluginApp.Demo;

public sealed class DemoOptions
{
    public const string Section = "Demo";

    /// <summary>
    /// The product page with the theme block, rendered once from its Liquid by scripts/demo.sh with placeholders the app fills
    /// per product (<see cref="DemoProductPage"/>).
    /// </summary>
    public string? ProductPageTemplate { get; set; }

    /// <summary>The cart page with the Cart offers block, rendered once from its Liquid by scripts/demo.sh.</summary>
    public string? CartPageTemplate { get; set; }

    /// <summary>theme-extension/assets, served at /assets/ as Shopify's CDN would.</summary>
    public string? ThemeAssets { get; set; }
}

/// <summary>
/// A storefront preview for the demo: product pages with the block (/products/{handle}, where the block's links lead;
/// /demo/storefront opens the most ordered product's), the block's assets, and Shopify's app proxy played by the app
/// itself (/apps/pluginapp/* signed and forwarded to /proxy/*), so the real block calls the real serving path.
/// Mapped only in the Demo environment.
/// </summary>
public static class DemoStorefront
{
    public static IEndpointRouteBuilder MapDemoStorefront(this IEndpointRouteBuilder app, IHostEnvironment env)
    {
        if (!env.IsDemo()) return app;
        app.MapGet("/demo/storefront", StorefrontAsync);
        app.MapGet("/products/{handle}", ProductPageAsync);
        app.MapGet("/assets/{file}", Results<PhysicalFileHttpResult, NotFound> (string file, IOptions<DemoOptions> o) =>
        {
            var dir = o.Value.ThemeAssets;
            if (dir is null || file.Contains("..") || file.Contains('/')) return TypedResults.NotFound();
            var path = Path.GetFullPath(Path.Combine(dir, file));
            var type = file.EndsWith(".js", StringComparison.Ordinal) ? "text/javascript" : file.EndsWith(".css", StringComparison.Ordinal) ? "text/css" : "application/octet-stream";
            return File.Exists(path) ? TypedResults.PhysicalFile(path, type) : TypedResults.NotFound();
        });
        app.MapGet("/cart", CartPageAsync);
        app.MapGet("/cart.js", (DemoCart cart) => TypedResults.Json(cart.Json()));
        app.MapPost("/cart/add.js", async (HttpRequest request, DemoCart cart) =>
            TypedResults.Json(cart.Add((await System.Text.Json.Nodes.JsonNode.ParseAsync(request.Body))?.AsObject() ?? [])));
        app.MapPost("/cart/update.js", async (HttpRequest request, DemoCart cart) =>
            TypedResults.Json(cart.Update((await System.Text.Json.Nodes.JsonNode.ParseAsync(request.Body))?.AsObject() ?? [])));
        // Shopify's storefront discount link: the code goes on the cart and the shopper back to the cart page.
        app.MapGet("/discount/{code}", (string code, DemoCart cart) =>
        {
            cart.ApplyDiscount(code);
            return TypedResults.Redirect("/cart");
        });
        app.Map("/apps/pluginapp/{**rest}", ForwardAsync);
        DemoClock.MapDemoClock(app);
        return app;
    }

    private static async Task<Results<RedirectHttpResult, NotFound<string>>> StorefrontAsync(NpgsqlDataSource db, CancellationToken ct) =>
        await DemoProductPage.MostOrderedHandleAsync(db, ct) is { } handle
            ? TypedResults.Redirect("/products/" + Uri.EscapeDataString(handle))
            : TypedResults.NotFound("the demo store has no orders yet: scripts/demo.sh imports them");

    private static async Task<Results<ContentHttpResult, NotFound<string>>> ProductPageAsync(string handle, NpgsqlDataSource db,
        IOptions<DemoOptions> options, CancellationToken ct)
    {
        if (options.Value.ProductPageTemplate is not { } template || !File.Exists(template))
            return TypedResults.NotFound("scripts/demo.sh renders the product page template (Demo:ProductPageTemplate)");
        if (await DemoProductPage.FindAsync(db, handle, ct) is not { } product)
            return TypedResults.NotFound($"the demo store has no product '{handle}'");
        return TypedResults.Content(DemoProductPage.Fill(await File.ReadAllTextAsync(template, ct), product), "text/html; charset=utf-8");
    }

    /// <summary>The cart page: the Cart offers block over the demo cart (two best sellers the first time).</summary>
    private static async Task<Results<ContentHttpResult, NotFound<string>>> CartPageAsync(NpgsqlDataSource db, DemoCart cart, IOptions<DemoOptions> options,
        CancellationToken ct)
    {
        if (options.Value.CartPageTemplate is not { } template || !File.Exists(template))
            return TypedResults.NotFound("scripts/demo.sh renders the cart page template (Demo:CartPageTemplate)");
        await cart.StartAsync(db, ct);
        return TypedResults.Content(await File.ReadAllTextAsync(template, ct), "text/html; charset=utf-8");
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
        // As Shopify's proxy does, the shopper's address; the demo's simulated shoppers each name theirs.
        var shopper = http.Request.Headers["X-Forwarded-For"].ToString().Split(',')[0].Trim();
        request.Headers.Add("X-Forwarded-For", shopper.Length > 0 ? shopper : http.Connection.RemoteIpAddress?.ToString() ?? "127.0.0.1");
        using var response = await clients.CreateClient("demo-proxy").SendAsync(request, http.RequestAborted);
        http.Response.StatusCode = (int)response.StatusCode;
        http.Response.ContentType = response.Content.Headers.ContentType?.ToString();
        await response.Content.CopyToAsync(http.Response.Body, http.RequestAborted);
    }
}
