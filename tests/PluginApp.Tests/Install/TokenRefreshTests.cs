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
