using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.Extensions.DependencyInjection.Extensions;
using PluginApp.Install;

namespace PluginApp.Admin.Shell;

/// <summary>
/// The embedded admin: Razor Pages that live beside their features (each page's folder under app/ holds its .cshtml with
/// an absolute "/admin/..." route), one layout, one stylesheet built from Shopify's Polaris tokens, one small script.
/// Every page requires the session token and runs in its shop's scope; features add their pages to the navigation with
/// <see cref="AdminNavigationExtensions.AddAdminPage"/>.
/// </summary>
public static class AdminShell
{
    public static WebApplicationBuilder AddAdminShell(this WebApplicationBuilder builder)
    {
        // Why outside Production too: the demo and the tests run the build output, whose static web assets manifest maps
        // /admin/*.css and *.js to app/wwwroot (Development does this by itself); a published app serves its own copies.
        if (!builder.Environment.IsProduction()) builder.WebHost.UseStaticWebAssets();
        var services = builder.Services;
        services.AddRazorPages(o =>
        {
            // Why the app's root: a page's .cshtml sits in its feature's folder (app/Recommendations/Admin/...), not in a Pages/ hub.
            o.RootDirectory = "/";
        }).AddMvcOptions(o => o.Filters.AddService<ShopSessionPageFilter>());
        services.AddOptions<AdminOptions>().BindConfiguration(AdminOptions.Section).ValidateOnStart();
        services.AddSingleton<Microsoft.Extensions.Options.IValidateOptions<AdminOptions>, AdminOptionsValidator>();
        services.AddAdminPage("/admin", "Overview", 0);
        services.AddAdminPage("/admin/ai", "AI use", 60);
        services.AddAdminPage("/admin/privacy", "Data and privacy", 70);
        services.AddAdminPage("/admin/operations", "Operations", 80);
        services.TryAddSingleton<Switches.AiFeatures>();
        services.TryAddSingleton<Switches.AiFeatureSwitches>();
        services.TryAddSingleton<Switches.ShopperNotices>();
        return builder;
    }

    public static WebApplication MapAdminShell(this WebApplication app)
    {
        app.MapStaticAssets();
        app.MapRazorPages().RequireAuthorization(InstallExtensions.AdminPolicy);
        app.MapSessionTokenBounce();
        // Why: application_url is the app's root, as Shopify builds the app proxy's and the webhooks' addresses on it (a
        // relative url in shopify.app.toml is appended to it); the admin opens it with its embedding parameters.
        app.MapGet("/", (HttpRequest request) => TypedResults.Redirect("/admin" + request.QueryString)).ExcludeFromDescription();
        return app;
    }
}

/// <summary>What every admin page shares: its shop, the security headers of an embedded document, links that keep the embedding parameters.</summary>
public abstract class AdminPageModel : PageModel
{
    public string Shop => User.FindFirst(SessionTokenAuthenticationHandler.ShopClaim)!.Value; // passed the shop regex

    public override void OnPageHandlerExecuting(Microsoft.AspNetCore.Mvc.Filters.PageHandlerExecutingContext context)
    {
        // Only Shopify's admin may frame the page; the URL may carry the session token, so no Referer leaves the origin.
        Response.Headers.ContentSecurityPolicy = $"frame-ancestors https://{Shop} https://admin.shopify.com;";
        Response.Headers["Referrer-Policy"] = "same-origin";
        base.OnPageHandlerExecuting(context);
    }

    /// <summary>A link to another admin page that keeps shop, host and embedded (never the one-minute id_token).</summary>
    public string Link(string path, params (string Name, string? Value)[] extra) => AdminLinks.To(Request, path, extra);
}

public static class AdminLinks
{
    private static readonly string[] Kept = ["shop", "host", "embedded"];

    public static string To(HttpRequest request, string path, params (string Name, string? Value)[] extra)
    {
        var query = Kept.Where(k => request.Query[k].Count == 1).Select(k => (Name: k, Value: (string?)request.Query[k].ToString()))
            .Concat(extra).Where(p => p.Value is not null)
            .Select(p => $"{Uri.EscapeDataString(p.Name)}={Uri.EscapeDataString(p.Value!)}");
        var q = string.Join("&", query);
        return q.Length == 0 ? path : $"{path}?{q}";
    }
}
