using System.Net;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;
using PluginApp.Shopify;

namespace PluginApp.Install;

/// <summary>
/// The bounce page Shopify's own libraries use: a full page load of the admin that has no (or an expired) id_token is sent
/// here with shopify-reload=&lt;the page&gt;; the page holds only App Bridge, which fetches a fresh session token and loads
/// the page again with it.
/// </summary>
public static class SessionTokenBounce
{
    public const string Path = "/auth/session-token";

    public static IEndpointRouteBuilder MapSessionTokenBounce(this IEndpointRouteBuilder app)
    {
        app.MapGet(Path, Render);
        return app;
    }

    /// <summary>Where a document request without a valid token goes: the bounce for a valid shop, else nowhere.</summary>
    public static string? RedirectFor(HttpRequest request)
    {
        if (!ShopDomain.TryNormalize(request.Query["shop"], out var shop)) return null;
        var reload = AdminReload(request);
        var host = request.Query["host"].ToString();
        return $"{Path}?shop={Uri.EscapeDataString(shop)}" + (host.Length > 0 ? $"&host={Uri.EscapeDataString(host)}" : "")
            + $"&shopify-reload={Uri.EscapeDataString(reload)}";
    }

    private static string AdminReload(HttpRequest request)
    {
        var kept = request.Query.Where(q => q.Key != "id_token").Select(q => $"{Uri.EscapeDataString(q.Key)}={Uri.EscapeDataString(q.Value.ToString())}");
        var query = string.Join("&", kept);
        return request.Path + (query.Length > 0 ? "?" + query : "");
    }

    private static Results<ContentHttpResult, BadRequest> Render(HttpContext http, IOptions<ShopifyOptions> options, string? shop)
    {
        if (!ShopDomain.TryNormalize(shop, out var domain)) return TypedResults.BadRequest();
        // Why only a path is reloaded: an absolute shopify-reload could send the fresh token to another origin.
        var reload = http.Request.Query["shopify-reload"].ToString();
        if (!reload.StartsWith("/admin", StringComparison.Ordinal) || reload.StartsWith("//", StringComparison.Ordinal)) return TypedResults.BadRequest();
        http.Response.Headers.ContentSecurityPolicy = $"frame-ancestors https://{domain} https://admin.shopify.com;";
        http.Response.Headers["Referrer-Policy"] = "same-origin";
        return TypedResults.Content($"""
            <!doctype html><html lang="en"><head><meta charset="utf-8">
            <meta name="shopify-api-key" content="{WebUtility.HtmlEncode(options.Value.ClientId)}">
            <script src="https://cdn.shopify.com/shopifycloud/app-bridge.js"></script>
            <title>Loading…</title></head><body></body></html>
            """, "text/html; charset=utf-8");
    }
}
