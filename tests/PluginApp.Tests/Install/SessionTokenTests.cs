using Microsoft.Extensions.DependencyInjection;
using System.Net;
using System.Net.Http.Headers;
using PluginApp.Tests.Infrastructure;

namespace PluginApp.Tests.Install;

public sealed class SessionTokenTests(AppFixture app) : IClassFixture<AppFixture>
{
    private const string Shop = "session-shop.myshopify.com";

    private Task<HttpResponseMessage> GetShopWith(string token)
    {
        var req = new HttpRequestMessage(HttpMethod.Get, "/api/admin/shop");
        req.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return app.Client.SendAsync(req);
    }

    [Fact]
    public async Task AdminApi_ValidSessionToken_Answers()
    {
        await app.InstallShopAsync(Shop);
        var response = await GetShopWith(app.SessionToken(Shop));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Contains(Shop, await response.Content.ReadAsStringAsync());
    }

    public static TheoryData<string> BadTokens => new() { "expired", "wrong-audience", "wrong-signature", "alg-none", "foreign-dest", "iss-mismatch", "no-nbf", "iss-not-admin", "iss-other-path", "garbage" };

    [Theory]
    [MemberData(nameof(BadTokens))]
    public async Task AdminApi_BadSessionToken_Is401WithRetryHeader(string how)
    {
        await app.InstallShopAsync(Shop);
        var now = app.Clock.GetUtcNow();
        var token = how switch
        {
            "expired" => ShopifySigning.SessionToken(AppFixture.ClientSecret, Shop, AppFixture.ClientId, now.AddMinutes(-5)),
            "wrong-audience" => ShopifySigning.SessionToken(AppFixture.ClientSecret, Shop, "another-app", now),
            "wrong-signature" => ShopifySigning.SessionToken("shpss_some_other_secret_000000000000000", Shop, AppFixture.ClientId, now),
            "alg-none" => string.Join('.', ShopifySigning.SessionToken(AppFixture.ClientSecret, Shop, AppFixture.ClientId, now, alg: "none").Split('.')[..2]) + ".",
            "foreign-dest" => ShopifySigning.SessionToken(AppFixture.ClientSecret, Shop, AppFixture.ClientId, now, dest: "https://evil.example.com", iss: "https://evil.example.com/admin"),
            "iss-mismatch" => ShopifySigning.SessionToken(AppFixture.ClientSecret, Shop, AppFixture.ClientId, now, iss: "https://other.myshopify.com/admin"),
            "no-nbf" => ShopifySigning.SessionToken(AppFixture.ClientSecret, Shop, AppFixture.ClientId, now, withNbf: false),
            "iss-not-admin" => ShopifySigning.SessionToken(AppFixture.ClientSecret, Shop, AppFixture.ClientId, now, iss: $"https://{Shop}"),
            "iss-other-path" => ShopifySigning.SessionToken(AppFixture.ClientSecret, Shop, AppFixture.ClientId, now, iss: $"https://{Shop}/apps/x"),
            _ => "not.a.jwt",
        };

        var response = await GetShopWith(token);

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Equal("1", response.Headers.GetValues("X-Shopify-Retry-Invalid-Session-Request").Single());
    }

    [Fact]
    public async Task AdminApi_NoToken_Is401()
    {
        var response = await app.Client.GetAsync("/api/admin/shop");
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
    }

    [Fact]
    public async Task AdminPage_FirstEmbeddedLoad_ExchangesTheSessionTokenForAnOfflineToken()
    {
        const string shop = "fresh-install.myshopify.com";

        var response = await app.Client.GetAsync($"/admin?shop={shop}&embedded=1&id_token={app.SessionToken(shop)}");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Contains($"frame-ancestors https://{shop} https://admin.shopify.com", response.Headers.GetValues("Content-Security-Policy").Single());
        var exchange = app.Shopify.Requests.Single(r => r.Shop == shop && r.Path == "/admin/oauth/access_token");
        Assert.Equal("urn:ietf:params:oauth:grant-type:token-exchange", exchange.Body["grant_type"]!.GetValue<string>());
        Assert.Equal("urn:shopify:params:oauth:token-type:offline-access-token", exchange.Body["requested_token_type"]!.GetValue<string>());
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM shops WHERE domain = $1 AND installed_at IS NOT NULL AND refresh_token_enc IS NOT NULL", shop));
    }

    /// <summary>
    /// A shop whose stored token cannot be used (revoked by Shopify, or expired with its refresh token after months without a
    /// call): the merchant opening the app gets a new one by token exchange, and the app can call Shopify for the shop again.
    /// </summary>
    [Theory]
    [InlineData("revoked")]
    [InlineData("refresh-expired")]
    public async Task AdminPage_OpenedWhileTheStoredTokenIsDead_ExchangesANewOne(string how)
    {
        var shop = $"dead-token-{how}.myshopify.com";
        await app.InstallShopAsync(shop, expiresInSeconds: 3600);
        var now = app.Clock.GetUtcNow();
        await app.ScalarAsync(how == "revoked"
            ? "UPDATE shops SET token_revoked_at = $2 WHERE domain = $1"
            : "UPDATE shops SET access_token_expires_at = $2 - interval '1 hour', refresh_token_expires_at = $2 - interval '1 minute' WHERE domain = $1", shop, now);
        var store = app.Factory.Services.GetRequiredService<PluginApp.Install.OfflineTokenStore>();
        await Assert.ThrowsAsync<PluginApp.Install.ShopNotConnectedException>(() => store.GetAccessTokenAsync(shop, CancellationToken.None));

        var response = await app.Client.GetAsync($"/admin?shop={shop}&embedded=1&id_token={app.SessionToken(shop)}");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Contains(app.Shopify.Requests, r => r.Shop == shop && r.Path == "/admin/oauth/access_token"
            && r.Body["grant_type"]!.GetValue<string>() == "urn:ietf:params:oauth:grant-type:token-exchange");
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM shops WHERE domain = $1 AND token_revoked_at IS NULL AND access_token_expires_at > $2", shop, now));
        Assert.False(string.IsNullOrEmpty(await store.GetAccessTokenAsync(shop, CancellationToken.None)));
    }

    [Fact]
    public async Task AdminApi_TokenInTheQueryString_IsRefused_OnlyDocumentsMayCarryIt()
    {
        await app.InstallShopAsync(Shop);

        var api = await app.Client.GetAsync($"/api/admin/shop?id_token={app.SessionToken(Shop)}");
        var page = await app.Client.GetAsync($"/admin?shop={Shop}&embedded=1&id_token={app.SessionToken(Shop)}");

        Assert.Equal(HttpStatusCode.Unauthorized, api.StatusCode);
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        Assert.Equal("same-origin", page.Headers.GetValues("Referrer-Policy").Single());
    }
}
