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
}
