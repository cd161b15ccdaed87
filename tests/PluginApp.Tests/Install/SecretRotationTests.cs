using System.Net;
using System.Net.Http.Headers;
using System.Text;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using PluginApp.Tests.Infrastructure;
using PluginApp.Tests.Recommendations;

namespace PluginApp.Tests.Install;

/// <summary>During a client-secret rotation Shopify may still sign with the old secret; until the stated expiry, and not after.</summary>
public sealed class SecretRotationTests(AppFixture app) : IClassFixture<AppFixture>
{
    private const string Old = "shpss_previous_secret_0123456789abcdef01";
    private const string Shop = "rotation-shop.myshopify.com";

    private WebApplicationFactory<Program> Rotating() => app.CreateFactory(app.Database.ConnectionString, b =>
    {
        b.UseSetting("Shopify:PreviousClientSecret", Old);
        b.UseSetting("Shopify:PreviousClientSecretExpiresAt", app.Clock.GetUtcNow().AddHours(1).ToString("O"));
    });

    private async Task<HttpStatusCode[]> SignedWithOldSecretAsync(HttpClient client, string tag)
    {
        var body = Encoding.UTF8.GetBytes(ShopifyPayloads.Product(9_100_000 + tag.Length).ToJsonString());
        var webhook = new HttpRequestMessage(HttpMethod.Post, "/webhooks") { Content = new ByteArrayContent(body) };
        webhook.Headers.Add("X-Shopify-Topic", "products/update");
        webhook.Headers.Add("X-Shopify-Shop-Domain", Shop);
        webhook.Headers.Add("X-Shopify-Webhook-Id", Guid.NewGuid().ToString());
        webhook.Headers.Add("X-Shopify-Hmac-Sha256", ShopifySigning.WebhookHmac(Old, body));

        var proxy = await client.GetAsync(StoreSeed.Signed("/proxy/recommendations", Shop, "placement=product&product_id=1", app.Clock.GetUtcNow(), secret: Old));
        var admin = new HttpRequestMessage(HttpMethod.Get, "/api/admin/shop");
        admin.Headers.Authorization = new AuthenticationHeaderValue("Bearer", ShopifySigning.SessionToken(Old, Shop, AppFixture.ClientId, app.Clock.GetUtcNow()));

        return [(await client.SendAsync(webhook)).StatusCode, proxy.StatusCode, (await client.SendAsync(admin)).StatusCode];
    }

    [Fact]
    public async Task OldSecret_AcceptedEverywhereUntilItsExpiry_RefusedEverywhereAfter()
    {
        await app.InstallShopAsync(Shop);
        await using var rotating = Rotating();
        using var client = rotating.CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false, BaseAddress = new Uri("https://localhost") });

        var during = await SignedWithOldSecretAsync(client, "during");
        app.Clock.Advance(TimeSpan.FromHours(2));
        HttpStatusCode[] after;
        try { after = await SignedWithOldSecretAsync(client, "after-expiry"); }
        finally { app.Clock.Advance(TimeSpan.FromHours(-2)); }

        // Webhook, app proxy, session token (the OAuth callback has its own test below).
        Assert.Equal([HttpStatusCode.OK, HttpStatusCode.OK, HttpStatusCode.OK], during);
        Assert.Equal([HttpStatusCode.Unauthorized, HttpStatusCode.Unauthorized, HttpStatusCode.Unauthorized], after);
    }

    [Fact]
    public async Task OAuthCallback_SignedWithOldSecret_PassesTheSignatureUntilExpiry()
    {
        await using var rotating = Rotating();
        using var client = rotating.CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false, BaseAddress = new Uri("https://localhost") });
        string Query() => ShopifySigning.OAuthCallbackQuery(Old, new Dictionary<string, string>
        {
            ["code"] = "c", ["shop"] = Shop, ["state"] = "s", ["timestamp"] = app.Clock.GetUtcNow().ToUnixTimeSeconds().ToString(),
        });

        var during = await (await client.GetAsync("/auth/callback?" + Query())).Content.ReadAsStringAsync();
        app.Clock.Advance(TimeSpan.FromHours(2));
        string after;
        try { after = await (await client.GetAsync("/auth/callback?" + Query())).Content.ReadAsStringAsync(); }
        finally { app.Clock.Advance(TimeSpan.FromHours(-2)); }

        Assert.Contains("state does not match", during);
        Assert.Contains("signature does not match", after);
    }

    [Fact]
    public async Task PreviousSecretWithoutAnExpiry_RefusesToStart()
    {
        var e = await app.StartRefusalAsync(b => b.UseSetting("Shopify:PreviousClientSecret", Old));

        Assert.Contains("PreviousClientSecretExpiresAt", e.ToString());
    }
}
