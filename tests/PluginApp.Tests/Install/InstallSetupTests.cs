using System.Text.Json.Nodes;
using Hangfire.Storage;
using Microsoft.Extensions.DependencyInjection;
using PluginApp.Tests.Infrastructure;
using ShopifyStandIn;

namespace PluginApp.Tests.Install;

/// <summary>
/// A new install's setup when Shopify does not answer for the shop's settings. Why a class of its own: the setup queues the
/// shop's backfill, which runs in the background against the stand-in's served files, and would count among the bulk
/// operations other classes' tests count.
/// </summary>
public sealed class InstallSetupTests(AppFixture app) : IClassFixture<AppFixture>
{
    /// <summary>
    /// Shopify fails the settings read at the install: the shop is left marked, and the sweep after the grace reads them,
    /// puts the nightly training in the shop's time zone and clears the mark (until 5 Dec 2026 the store stayed on UTC, and
    /// without its shop id, for good).
    /// </summary>
    [Fact]
    public async Task Install_WhoseSettingsShopifyDidNotAnswer_ReadsThemAtTheNextSweep()
    {
        const string shop = "install-settings-again.myshopify.com";
        var services = app.Factory.Services;
        using var storage = services.GetRequiredService<Hangfire.JobStorage>().GetConnection();
        var installer = services.GetRequiredService<PluginApp.Install.ShopInstaller>();
        var failing = true;
        try
        {
            app.Shopify.GraphQL = call => call.Shop != shop || !call.Query.Contains("ianaTimezone", StringComparison.Ordinal) ? null
                : failing ? StandInAnswer.Json(new JsonObject { ["errors"] = new JsonArray(new JsonObject { ["message"] = "Internal error" }) })
                : new StandInAnswer(200, new JsonObject { ["data"] = new JsonObject { ["shop"] = new JsonObject
                    { ["id"] = "gid://shopify/Shop/961", ["ianaTimezone"] = "Asia/Tokyo", ["currencyCode"] = "JPY", ["taxesIncluded"] = true } } });
            await installer.InstallAsync(shop, new PluginApp.Install.TokenGrant("shpat_settings", "read_orders,read_products,read_customers", 3600, "shprt_settings", 7776000),
                CancellationToken.None);
            Assert.Null(await app.ScalarAsync("SELECT iana_timezone FROM shops WHERE domain = $1", shop));
            Assert.NotNull(await app.ScalarAsync("SELECT setup_pending_since FROM shops WHERE domain = $1", shop));

            failing = false;
            await app.ScalarAsync("UPDATE shops SET setup_pending_since = setup_pending_since - $2 WHERE domain = $1", shop,
                PluginApp.Install.ShopInstaller.SetupGrace + TimeSpan.FromMinutes(1));
            await installer.SweepAsync(CancellationToken.None);

            Assert.Equal("Asia/Tokyo", await app.ScalarAsync("SELECT iana_timezone FROM shops WHERE domain = $1", shop));
            Assert.Equal(961L, await app.ScalarAsync("SELECT shopify_shop_id FROM shops WHERE domain = $1", shop));
            Assert.Equal(true, await app.ScalarAsync("SELECT taxes_included FROM shops WHERE domain = $1", shop)); // the cart offers count margin without its tax
            Assert.Null(await app.ScalarAsync("SELECT setup_pending_since FROM shops WHERE domain = $1", shop));
            Assert.Equal("Asia/Tokyo", storage.GetRecurringJobs([PluginApp.Training.TrainingScheduler.NightlyId(shop, "recommender")]).Single().TimeZoneId);
        }
        finally
        {
            app.Shopify.GraphQL = null;
        }
    }

    /// <summary>
    /// Shopify slow to answer for the shop's settings at the install: the merchant's request waits for them at most
    /// <see cref="PluginApp.Install.ShopInstaller.InlineSettingsLimit"/>, and the sweep reads them later. Until 7 Dec 2026 it
    /// waited as long as the read's retries (about 2.5 minutes).
    /// </summary>
    [Fact]
    public async Task Install_WhoseSettingsShopifyIsSlowToAnswer_DoesNotHoldTheMerchantsRequest()
    {
        const string shop = "install-settings-slow.myshopify.com";
        var installer = app.Factory.Services.GetRequiredService<PluginApp.Install.ShopInstaller>();
        try
        {
            app.Shopify.GraphQL = call => call.Shop != shop || !call.Query.Contains("ianaTimezone", StringComparison.Ordinal) ? null
                : new StandInAnswer(200, new JsonObject { ["data"] = new JsonObject { ["shop"] = new JsonObject { ["ianaTimezone"] = "Asia/Tokyo" } } },
                    Delay: TimeSpan.FromMinutes(1));
            var waited = System.Diagnostics.Stopwatch.StartNew();
            await installer.InstallAsync(shop, new PluginApp.Install.TokenGrant("shpat_slow", "read_orders,read_products,read_customers", 3600, "shprt_slow", 7776000),
                CancellationToken.None);

            Assert.InRange(waited.Elapsed, PluginApp.Install.ShopInstaller.InlineSettingsLimit - TimeSpan.FromSeconds(1),
                PluginApp.Install.ShopInstaller.InlineSettingsLimit + TimeSpan.FromSeconds(20));
            Assert.NotNull(await app.ScalarAsync("SELECT setup_pending_since FROM shops WHERE domain = $1", shop)); // the sweep reads them
        }
        finally
        {
            app.Shopify.GraphQL = null;
        }
    }

    /// <summary>
    /// A shop whose setup cannot be done (its token expired with its refresh token) does not hold up the others: the sweep
    /// sets up the next shop waiting, and the failing one is tried again after the grace, behind it. Until 7 Dec 2026 its
    /// failure ended the sweep, and, first in line, ended every sweep after.
    /// </summary>
    [Fact]
    public async Task ASetupThatFails_DoesNotHoldUpTheNextShopsSetup()
    {
        const string stuck = "install-setup-stuck.myshopify.com", next = "install-setup-next.myshopify.com";
        var stuckId = await app.InstallShopAsync(stuck);
        var nextId = await app.InstallShopAsync(next);
        var now = app.Clock.GetUtcNow();
        await app.ScalarAsync("UPDATE shops SET access_token_expires_at = $2, refresh_token_expires_at = $2 WHERE id = $1", stuckId, now.AddHours(-1));
        var stuckSince = now - PluginApp.Install.ShopInstaller.SetupGrace - TimeSpan.FromMinutes(2);
        await app.ScalarAsync("UPDATE shops SET setup_pending_since = $2 WHERE id = $1", stuckId, stuckSince);
        await app.ScalarAsync("UPDATE shops SET setup_pending_since = $2 WHERE id = $1", nextId, stuckSince.AddMinutes(1));

        await app.Factory.Services.GetRequiredService<PluginApp.Install.ShopInstaller>().SweepAsync(CancellationToken.None);

        Assert.Null(await app.ScalarAsync("SELECT setup_pending_since FROM shops WHERE id = $1", nextId));
        Assert.Equal(true, await app.ScalarAsync("SELECT setup_pending_since >= $2 FROM shops WHERE id = $1", stuckId, now));
    }

    /// <summary>
    /// A shop installed before its settings came to be kept current (7 Dec 2026) has no tax setting: the next sweep reads its
    /// settings once, and the sweeps after ask Shopify nothing more. Before, nothing asked again, and a store whose prices
    /// include tax waited for a new order to say so. Shopify failing the read, the shop is asked again an hour later, not
    /// at every sweep.
    /// </summary>
    [Fact]
    public async Task AShopInstalledBeforeItsSettingsWereKept_HasThemReadOnce_ByTheNextSweep()
    {
        const string shop = "install-settings-unread.myshopify.com";
        var shopId = await app.InstallShopAsync(shop);
        await app.ScalarAsync("UPDATE shops SET iana_timezone = 'Europe/London', currency = 'GBP', taxes_included = NULL, settings_at = NULL WHERE id = $1", shopId);
        var reads = 0;
        var failing = true;
        try
        {
            app.Shopify.GraphQL = call =>
            {
                if (call.Shop != shop || !call.Query.Contains("taxesIncluded", StringComparison.Ordinal)) return null;
                Interlocked.Increment(ref reads);
                return failing ? StandInAnswer.Json(new JsonObject { ["errors"] = new JsonArray(new JsonObject { ["message"] = "Internal error" }) })
                    : new StandInAnswer(200, new JsonObject { ["data"] = new JsonObject { ["shop"] = new JsonObject
                        { ["id"] = "gid://shopify/Shop/962", ["ianaTimezone"] = "Europe/London", ["currencyCode"] = "GBP", ["taxesIncluded"] = true } } });
            };
            var installer = app.Factory.Services.GetRequiredService<PluginApp.Install.ShopInstaller>();
            await installer.SweepAsync(CancellationToken.None);
            var failedReads = reads;
            await installer.SweepAsync(CancellationToken.None);
            Assert.Null(await app.ScalarAsync("SELECT taxes_included FROM shops WHERE id = $1", shopId));
            Assert.True(failedReads >= 1);
            Assert.Equal(failedReads, reads); // not asked again within the hour

            failing = false;
            await app.ScalarAsync("UPDATE shops SET settings_asked_at = settings_asked_at - interval '61 minutes' WHERE id = $1", shopId);
            await installer.SweepAsync(CancellationToken.None);
            await installer.SweepAsync(CancellationToken.None);

            Assert.Equal(true, await app.ScalarAsync("SELECT taxes_included FROM shops WHERE id = $1", shopId));
            Assert.Equal(failedReads + 1, reads);
        }
        finally
        {
            app.Shopify.GraphQL = null;
        }
    }
}
