using Microsoft.AspNetCore.Http.HttpResults;
using System.Net;
using Microsoft.Extensions.Options;
using PluginApp.Install;
using PluginApp.Shopify;

namespace PluginApp.Admin;

/// <summary>The embedded app's document. The session token arrives as id_token on the first load.</summary>
public static class AdminPage
{
    public static IEndpointRouteBuilder MapAdminPage(this IEndpointRouteBuilder app)
    {
        app.MapGet("/admin", Render)
            .RequireAuthorization(InstallExtensions.AdminPolicy)
            .AddEndpointFilter<ShopSessionFilter>();
        return app;
    }

    private static ContentHttpResult Render(HttpContext http, IOptions<ShopifyOptions> options, AdminNavigation navigation)
    {
        var shop = http.User.FindFirst(SessionTokenAuthenticationHandler.ShopClaim)!.Value; // passed the shop regex
        http.Response.Headers.ContentSecurityPolicy = $"frame-ancestors https://{shop} https://admin.shopify.com;";
        // The page URL carries the session token (id_token): never send it on to another origin.
        http.Response.Headers["Referrer-Policy"] = "same-origin";
        var key = WebUtility.HtmlEncode(options.Value.ClientId);
        // Shopify's app nav (App Bridge) and the same links in the page, for when App Bridge is not there (tests, the offline demo).
        var links = string.Concat(navigation.Pages.Select(p =>
            $"""<a href="{WebUtility.HtmlEncode(p.Path)}"{(p.Path == "/admin" ? " rel=\"home\"" : "")}>{WebUtility.HtmlEncode(p.Title)}</a>"""));
        return TypedResults.Content($$"""
            <!doctype html>
            <html lang="en"><head>
            <meta charset="utf-8"><meta name="shopify-api-key" content="{{key}}">
            <script src="https://cdn.shopify.com/shopifycloud/app-bridge.js"></script>
            <title>Overview</title></head>
            <body><ui-nav-menu>{{links}}</ui-nav-menu><nav aria-label="App pages">{{links}}</nav>
            <main><h1>Overview</h1><p id="shop">{{WebUtility.HtmlEncode(shop)}}</p>
            <section id="summary" aria-live="polite">Loading…</section></main>
            <script>
            fetch('/api/admin/shop').then(r => r.json()).then(s => {
              document.getElementById('summary').textContent = `${s.orders} orders, ${s.products} products, ${s.customers} customers`;
            });
            </script></body></html>
            """, "text/html; charset=utf-8");
    }
}
