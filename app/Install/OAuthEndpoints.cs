using Microsoft.AspNetCore.Http.HttpResults;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.Extensions.Options;
using PluginApp.Shopify;

namespace PluginApp.Install;

/// <summary>Authorization-code install: /auth redirects to Shopify, /auth/callback verifies and stores the offline token.</summary>
public static class OAuthEndpoints
{
    public const string StateCookie = "pluginapp_oauth_state";
    private const string StatePurpose = "PluginApp.Install.OAuthState.v1";

    public static IEndpointRouteBuilder MapOAuth(this IEndpointRouteBuilder app)
    {
        app.MapGet("/auth", Begin);
        app.MapGet("/auth/callback", CallbackAsync);
        return app;
    }

    internal static Results<RedirectHttpResult, ProblemHttpResult> Begin(string? shop, HttpContext http, IOptions<ShopifyOptions> options, IDataProtectionProvider dp)
    {
        if (!ShopDomain.TryNormalize(shop, out var domain))
            return Refuse("shop must be a *.myshopify.com domain");
        var o = options.Value;
        var nonce = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32));
        // Why bind the nonce to this browser with a protected cookie: a callback replayed in another browser lacks it.
        http.Response.Cookies.Append(StateCookie, dp.CreateProtector(StatePurpose).Protect($"{domain}|{nonce}"), new CookieOptions
        {
            HttpOnly = true, Secure = true, SameSite = SameSiteMode.Lax, Path = "/auth/callback", MaxAge = TimeSpan.FromMinutes(10),
        });
        var redirectUri = new Uri(new Uri(o.AppUrl), "/auth/callback").ToString();
        var url = $"https://{domain}/admin/oauth/authorize?client_id={Uri.EscapeDataString(o.ClientId)}"
                + $"&scope={Uri.EscapeDataString(o.Scopes)}&redirect_uri={Uri.EscapeDataString(redirectUri)}&state={nonce}";
        return TypedResults.Redirect(url);
    }

    internal static async Task<Results<RedirectHttpResult, ProblemHttpResult>> CallbackAsync(HttpContext http, ShopifyHmac hmac, IOptions<ShopifyOptions> options,
        IDataProtectionProvider dp, ShopifyTokenClient tokens, ShopInstaller installer, TimeProvider clock, ILoggerFactory logs)
    {
        var q = http.Request.Query;
        if (!ShopDomain.TryNormalize(q["shop"], out var shop)) return Refuse("shop is not a myshopify.com domain");
        if (!hmac.VerifyAdminQuery(q)) return Refuse("the callback signature does not match");
        if (!long.TryParse(q["timestamp"], NumberStyles.None, CultureInfo.InvariantCulture, out var ts)
            || (clock.GetUtcNow() - DateTimeOffset.FromUnixTimeSeconds(ts)).Duration() > options.Value.ClockSkew)
            return Refuse("the callback is stale");
        if (!StateMatches(http, dp, shop, q["state"].ToString())) return Refuse("the state does not match this browser's install");
        var code = q["code"].ToString();
        if (string.IsNullOrEmpty(code)) return Refuse("code is missing");

        http.Response.Cookies.Delete(StateCookie, new CookieOptions { Path = "/auth/callback" });
        try
        {
            var grant = await tokens.ExchangeCodeAsync(shop, code, http.RequestAborted);
            await installer.InstallAsync(shop, grant, http.RequestAborted);
        }
        catch (TokenEndpointException e)
        {
            logs.CreateLogger(typeof(OAuthEndpoints)).LogWarning("Code exchange for {Shop} failed: {Message}", shop, e.Message);
            return TypedResults.Problem(title: "Shopify refused the install", detail: "The authorization code could not be exchanged; start the install again.", statusCode: 502);
        }
        return TypedResults.Redirect($"https://{shop}/admin/apps/{Uri.EscapeDataString(options.Value.ClientId)}");
    }

    private static bool StateMatches(HttpContext http, IDataProtectionProvider dp, string shop, string state)
    {
        if (!http.Request.Cookies.TryGetValue(StateCookie, out var cookie) || string.IsNullOrEmpty(state)) return false;
        string expected;
        try { expected = dp.CreateProtector(StatePurpose).Unprotect(cookie); }
        catch (CryptographicException) { return false; }
        return CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(expected), Encoding.UTF8.GetBytes($"{shop}|{state}"));
    }

    private static ProblemHttpResult Refuse(string why) =>
        TypedResults.Problem(title: "Install request refused", detail: why, statusCode: StatusCodes.Status400BadRequest);
}
