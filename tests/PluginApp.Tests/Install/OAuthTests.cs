using System.Net;
using System.Web;
using Microsoft.Extensions.DependencyInjection;
using PluginApp.Install;
using PluginApp.Tests.Infrastructure;

namespace PluginApp.Tests.Install;

public sealed class OAuthTests(AppFixture app) : IClassFixture<AppFixture>
{
    /// <summary>Starts an install in this "browser" and returns the state Shopify would echo back with the cookie it set.</summary>
    private async Task<(string State, string Cookie)> BeginAsync(string shop)
    {
        var response = await app.Client.GetAsync($"/auth?shop={shop}");
        Assert.Equal(HttpStatusCode.Redirect, response.StatusCode);
        var location = response.Headers.Location!;
        Assert.Equal(shop, location.Host);
        Assert.Equal("/admin/oauth/authorize", location.AbsolutePath);
        var query = HttpUtility.ParseQueryString(location.Query);
        Assert.Equal(AppFixture.ClientId, query["client_id"]);
        var cookie = response.Headers.GetValues("Set-Cookie").Single(c => c.StartsWith(OAuthEndpoints.StateCookie));
        return (query["state"]!, cookie.Split(';')[0]);
    }

    private Dictionary<string, string> CallbackParams(string shop, string state) => new()
    {
        ["code"] = "auth-code-1",
        ["host"] = Convert.ToBase64String("admin.shopify.com/store/x"u8.ToArray()).TrimEnd('='),
        ["shop"] = shop,
        ["state"] = state,
        ["timestamp"] = app.Clock.GetUtcNow().ToUnixTimeSeconds().ToString(),
    };

    private Task<HttpResponseMessage> CallbackAsync(string query, string? cookie)
    {
        var req = new HttpRequestMessage(HttpMethod.Get, "/auth/callback?" + query);
        if (cookie is not null) req.Headers.Add("Cookie", cookie);
        return app.Client.SendAsync(req);
    }

    [Fact]
    public async Task Callback_SignedWithStateFromThisBrowser_StoresEncryptedExpiringToken()
    {
        const string shop = "oauth-ok.myshopify.com";
        var (state, cookie) = await BeginAsync(shop);

        var response = await CallbackAsync(ShopifySigning.OAuthCallbackQuery(AppFixture.ClientSecret, CallbackParams(shop, state)), cookie);

        Assert.Equal(HttpStatusCode.Redirect, response.StatusCode);
        var exchange = app.Shopify.Requests.Single(r => r.Shop == shop && r.Path == "/admin/oauth/access_token");
        Assert.Equal("auth-code-1", exchange.Body["code"]!.GetValue<string>());
        Assert.Equal("1", exchange.Body["expiring"]!.GetValue<string>());
        var stored = (string)(await app.ScalarAsync("SELECT access_token_enc FROM shops WHERE domain = $1 AND installed_at IS NOT NULL AND refresh_token_enc IS NOT NULL AND access_token_expires_at > now()", shop))!;
        Assert.DoesNotContain("shpat_", stored);
        var token = await app.Factory.Services.GetRequiredService<OfflineTokenStore>().GetAccessTokenAsync(shop, CancellationToken.None);
        Assert.StartsWith($"shpat_{shop}_", token);
    }

    [Theory]
    [InlineData("tampered-code")]
    [InlineData("tampered-shop")]
    [InlineData("foreign-domain")]
    [InlineData("no-cookie")]
    [InlineData("wrong-state")]
    [InlineData("stale")]
    public async Task Callback_NotExactlyWhatShopifySigned_IsRefusedAndInstallsNothing(string how)
    {
        var shop = $"oauth-{how}.myshopify.com";
        var (state, cookie) = await BeginAsync(shop);
        var p = CallbackParams(shop, state);
        if (how == "foreign-domain") p["shop"] = "evil.example.com";
        if (how == "wrong-state") p["state"] = new string('a', 64);
        if (how == "stale") p["timestamp"] = app.Clock.GetUtcNow().AddMinutes(-10).ToUnixTimeSeconds().ToString();
        var query = ShopifySigning.OAuthCallbackQuery(AppFixture.ClientSecret, p);
        if (how == "tampered-code") query = query.Replace("code=auth-code-1", "code=auth-code-2");
        if (how == "tampered-shop") query = query.Replace($"shop={shop}", "shop=other-shop.myshopify.com");

        var response = await CallbackAsync(query, how == "no-cookie" ? null : cookie);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.DoesNotContain(app.Shopify.Requests, r => r.Shop == shop || r.Shop == "other-shop.myshopify.com");
        Assert.Equal(0, await app.CountAsync("SELECT count(*) FROM shops WHERE domain IN ($1, 'other-shop.myshopify.com', 'evil.example.com')", shop));
    }

    [Fact]
    public async Task Begin_WithForeignDomain_IsRefused()
    {
        var response = await app.Client.GetAsync("/auth?shop=shop.evil.com");
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
    }
}
