using Microsoft.Extensions.DependencyInjection;
using PluginApp.Install;
using PluginApp.Tests.Infrastructure;

namespace PluginApp.Tests.Install;

public sealed class TokenRefreshTests(AppFixture app) : IClassFixture<AppFixture>
{
    [Fact]
    public async Task GetAccessToken_NearExpiry_RefreshesOnceAndStoresTheRotatedPair()
    {
        const string shop = "refresh-shop.myshopify.com";
        await app.InstallShopAsync(shop, expiresInSeconds: 120);
        var sut = app.Factory.Services.GetRequiredService<OfflineTokenStore>();

        var tokens = await Task.WhenAll(Enumerable.Range(0, 5).Select(_ => sut.GetAccessTokenAsync(shop, CancellationToken.None)));

        var refreshes = app.Shopify.Requests.Where(r => r.Shop == shop && r.Body["grant_type"]?.GetValue<string>() == "refresh_token").ToList();
        Assert.Single(refreshes);
        Assert.Equal($"shprt_{shop}_seed", refreshes[0].Body["refresh_token"]!.GetValue<string>());
        Assert.All(tokens, t => Assert.Equal(tokens[0], t));
        Assert.NotEqual($"shpat_{shop}_seed", tokens[0]);
        // The rotated refresh token is what the next refresh will use.
        app.Clock.Advance(TimeSpan.FromMinutes(58));
        await sut.GetAccessTokenAsync(shop, CancellationToken.None);
        var second = app.Shopify.Requests.Where(r => r.Shop == shop && r.Body["grant_type"]?.GetValue<string>() == "refresh_token").Last();
        Assert.Equal(tokens[0].Replace("shpat_", "shprt_"), second.Body["refresh_token"]!.GetValue<string>());
    }

    /// <summary>
    /// A refresh waiting on Shopify's token endpoint holds the shop's row, but not against its webhooks: an order delivered
    /// meanwhile is stored and answered before the refresh ends. Before, the refresh's row lock (FOR UPDATE) made every
    /// delivery of the shop, and the batches it shares with other shops, wait for Shopify.
    /// </summary>
    [Fact]
    public async Task ARefreshWaitingOnShopify_DoesNotHoldUpTheShopsWebhooks()
    {
        const string shop = "slow-refresh.myshopify.com";
        await app.InstallShopAsync(shop, expiresInSeconds: 120);
        var sut = app.Factory.Services.GetRequiredService<OfflineTokenStore>();
        var answer = new TaskCompletionSource();
        app.Shopify.TokenEndpoint = (s, body) =>
        {
            if (s == shop) answer.Task.Wait(TimeSpan.FromSeconds(30)); // Shopify answers when the test says so
            return app.Shopify.DefaultGrant(s, body);
        };
        try
        {
            var refresh = sut.GetAccessTokenAsync(shop, CancellationToken.None);
            while (!app.Shopify.Requests.Any(r => r.Shop == shop && r.Body["grant_type"]?.GetValue<string>() == "refresh_token")) await Task.Delay(20);

            var delivered = await app.SendWebhookAsync("orders/create", shop, ShopifyPayloads.Order(8_900_001).ToJsonString());
            Assert.Equal(System.Net.HttpStatusCode.OK, delivered.StatusCode);
            Assert.False(refresh.IsCompleted, "the delivery was answered only after the refresh ended");
            Assert.Equal(1L, await app.ScalarAsync("SELECT count(*) FROM orders WHERE id = 8900001"));

            answer.SetResult();
            Assert.NotEqual($"shpat_{shop}_seed", await refresh);
        }
        finally
        {
            answer.TrySetResult();
            app.Shopify.TokenEndpoint = null;
        }
    }

    /// <summary>
    /// Shopify refuses the shop's refresh token (invalid_grant: revoked, or past its life): the shop is marked as not
    /// connected at once, and later calls do not ask Shopify again. A refusal of our client (invalid_client, a wrong secret)
    /// marks nothing. Until 5 Dec 2026 every call refreshed again and failed, for good, and the shop never read as
    /// disconnected.
    /// </summary>
    [Fact]
    public async Task ARefreshTokenShopifyRefuses_MarksTheShopNotConnected_ButAClientRefusalMarksNothing()
    {
        const string shop = "refused-refresh.myshopify.com", other = "refused-client.myshopify.com";
        await app.InstallShopAsync(shop, expiresInSeconds: 120);
        await app.InstallShopAsync(other, expiresInSeconds: 120);
        var sut = app.Factory.Services.GetRequiredService<OfflineTokenStore>();
        app.Shopify.TokenEndpoint = (s, body) => body["grant_type"]?.GetValue<string>() != "refresh_token" ? app.Shopify.DefaultGrant(s, body)
            : ShopifyStandIn.StandInAnswer.Json(new { error = s == shop ? "invalid_grant" : "invalid_client", error_description = "refused" }, 400);
        try
        {
            await Assert.ThrowsAsync<ShopNotConnectedException>(() => sut.GetAccessTokenAsync(shop, CancellationToken.None));
            Assert.NotNull(await app.ScalarAsync("SELECT token_revoked_at FROM shops WHERE domain = $1", shop));
            var asked = app.Shopify.Requests.Count(r => r.Shop == shop);
            await Assert.ThrowsAsync<ShopNotConnectedException>(() => sut.GetAccessTokenAsync(shop, CancellationToken.None));
            Assert.Equal(asked, app.Shopify.Requests.Count(r => r.Shop == shop));

            await Assert.ThrowsAsync<TokenEndpointException>(() => sut.GetAccessTokenAsync(other, CancellationToken.None));
            Assert.Null(await app.ScalarAsync("SELECT token_revoked_at FROM shops WHERE domain = $1", other));
        }
        finally { app.Shopify.TokenEndpoint = null; }
    }

    [Fact]
    public async Task GetAccessToken_FreshToken_DoesNotCallShopify()
    {
        const string shop = "fresh-token.myshopify.com";
        await app.InstallShopAsync(shop);
        var sut = app.Factory.Services.GetRequiredService<OfflineTokenStore>();

        Assert.Equal($"shpat_{shop}_seed", await sut.GetAccessTokenAsync(shop, CancellationToken.None));
        Assert.DoesNotContain(app.Shopify.Requests, r => r.Shop == shop);
    }
}
