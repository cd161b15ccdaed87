using System.Net;
using Hangfire.Storage;
using Microsoft.Extensions.DependencyInjection;
using System.Text.Json.Nodes;
using PluginApp.Tests.Infrastructure;
using ShopifyStandIn;

namespace PluginApp.Tests.Install;

/// <summary>The shop's time zone, currency and tax setting, kept current by Shopify's shop/update webhook.</summary>
public sealed class ShopSettingsTests(AppFixture app) : IClassFixture<AppFixture>
{
    private static string Body(string shop, long shopifyId, string zone, string currency, bool taxesIncluded, string updatedAt) => $$"""
        {"id":{{shopifyId}},"name":"Settings","email":"owner@example.com","shop_owner":"Olive Owner","phone":"+15555550123",
         "domain":"{{shop}}","myshopify_domain":"{{shop}}","iana_timezone":"{{zone}}","currency":"{{currency}}",
         "taxes_included":{{(taxesIncluded ? "true" : "false")}},"created_at":"2024-01-01T00:00:00-05:00","updated_at":"{{updatedAt}}"}
        """;

    /// <summary>
    /// The merchant moves the store to Tokyo, to yen and to prices that include tax: the shop's row follows, its nightly
    /// training moves to Tokyo's nights, and the cart offers count margins without tax. A delivery of an older change that
    /// arrives after it puts nothing back, and the owner's contact details in the body are not kept. Until 7 Dec 2026 the
    /// settings were read once, at install.
    /// </summary>
    [Fact]
    public async Task AShopUpdate_KeepsTheSettingsCurrent_AndAnOlderOneArrivingLateChangesNothing()
    {
        const string shop = "settings-update.myshopify.com";
        var shopId = await app.InstallShopAsync(shop);
        await app.ScalarAsync("UPDATE shops SET shopify_shop_id = 548380020, iana_timezone = 'America/New_York', currency = 'USD', taxes_included = false WHERE id = $1", shopId);

        var current = await app.SendWebhookAsync("shop/update", shop, Body(shop, 548380020, "Asia/Tokyo", "JPY", true, "2026-12-07T10:00:00+09:00"));
        var older = await app.SendWebhookAsync("shop/update", shop, Body(shop, 548380020, "Europe/Paris", "EUR", false, "2026-12-07T09:00:00+09:00"));

        Assert.Equal((HttpStatusCode.OK, HttpStatusCode.OK), (current.StatusCode, older.StatusCode));
        Assert.Equal("Asia/Tokyo|JPY|True", await app.ScalarAsync("SELECT iana_timezone || '|' || currency || '|' || CASE WHEN taxes_included THEN 'True' ELSE 'False' END FROM shops WHERE id = $1", shopId));
        Assert.Equal(0L, await app.ScalarAsync("SELECT count(*) FROM webhook_deliveries WHERE shop_id = $1 AND body::text LIKE '%owner@example.com%'", shopId));
        Assert.True((await app.Factory.Services.GetRequiredService<PluginApp.CartOffers.TaxShares>().ShareAsync(shopId, CancellationToken.None)).PricesIncludeTax);

        await ActivatorUtilities.CreateInstance<PluginApp.Training.NightlyTrainingSchedules>(app.Factory.Services).RunAsync(CancellationToken.None);
        using var storage = app.Factory.Services.GetRequiredService<Hangfire.JobStorage>().GetConnection();
        Assert.Equal("Asia/Tokyo", storage.GetRecurringJobs([PluginApp.Training.TrainingScheduler.NightlyId(shop, "recommender")]).Single().TimeZoneId);
    }

    /// <summary>
    /// A signed shop/update body sent again naming another shop (its domain in the header, or another Shopify shop id), and one
    /// that names no shop, are refused and change nothing.
    /// </summary>
    [Fact]
    public async Task AShopUpdate_ForAnotherShop_OrNamingNone_IsRefused_AndChangesNothing()
    {
        const string shop = "settings-victim.myshopify.com", other = "settings-other.myshopify.com";
        var shopId = await app.InstallShopAsync(shop);
        await app.InstallShopAsync(other);
        await app.ScalarAsync("UPDATE shops SET shopify_shop_id = 548380030, iana_timezone = 'America/New_York', taxes_included = false WHERE id = $1", shopId);

        var otherShopsBody = await app.SendWebhookAsync("shop/update", shop, Body(other, 548380031, "Asia/Tokyo", "JPY", true, "2026-12-07T10:00:00Z"));
        var otherShopifyId = await app.SendWebhookAsync("shop/update", shop, Body(shop, 548380031, "Asia/Tokyo", "JPY", true, "2026-12-07T10:00:00Z"));
        var namingNone = await app.SendWebhookAsync("shop/update", shop, """{"id":548380030,"iana_timezone":"Asia/Tokyo","taxes_included":true,"updated_at":"2026-12-07T10:00:00Z"}""");
        // The shop's own body sent again as an order, a customer or a product (the Shop object has no GID to tell them apart):
        // until 7 Dec 2026 it was stored as one, the owner's email and phone with it.
        var own = Body(shop, 548380030, "Asia/Tokyo", "JPY", true, "2026-12-07T10:00:00Z");
        var asOtherTopics = new List<HttpStatusCode>();
        foreach (var topic in new[] { "orders/create", "customers/update", "products/update" })
            asOtherTopics.Add((await app.SendWebhookAsync(topic, shop, own)).StatusCode);

        Assert.Equal([HttpStatusCode.Forbidden, HttpStatusCode.Forbidden, HttpStatusCode.Forbidden], new[] { otherShopsBody.StatusCode, otherShopifyId.StatusCode, namingNone.StatusCode });
        Assert.Equal([HttpStatusCode.Forbidden, HttpStatusCode.Forbidden, HttpStatusCode.Forbidden], asOtherTopics);
        Assert.Equal("America/New_York|False", await app.ScalarAsync("SELECT iana_timezone || '|' || CASE WHEN taxes_included THEN 'True' ELSE 'False' END FROM shops WHERE id = $1", shopId));
        Assert.Equal(0L, await app.ScalarAsync("SELECT (SELECT count(*) FROM orders WHERE shop_id = $1) + (SELECT count(*) FROM customers WHERE shop_id = $1) + (SELECT count(*) FROM products WHERE shop_id = $1)", shopId));
    }

    /// <summary>
    /// A shop whose settings were never read (installed before they were kept) takes no shop/update older than its latest
    /// install: an old app/uninstalled body, the same Shop object, sent again as shop/update. A newer one is applied, and
    /// gives the shop its Shopify id where it was not known.
    /// </summary>
    [Fact]
    public async Task AShopUpdate_OlderThanTheInstall_IsNotApplied_ToAShopWhoseSettingsWereNeverRead()
    {
        const string shop = "settings-unread.myshopify.com";
        var shopId = await app.InstallShopAsync(shop);
        await app.ScalarAsync("UPDATE shops SET settings_at = NULL, shopify_shop_id = NULL, iana_timezone = 'America/New_York', granted_at = '2026-12-01T00:00:00Z' WHERE id = $1", shopId);

        var old = await app.SendWebhookAsync("shop/update", shop, Body(shop, 548380040, "Asia/Tokyo", "JPY", true, "2026-11-20T00:00:00Z"));
        Assert.Equal("America/New_York", await app.ScalarAsync("SELECT iana_timezone FROM shops WHERE id = $1", shopId));
        var newer = await app.SendWebhookAsync("shop/update", shop, Body(shop, 548380040, "Europe/Paris", "EUR", true, "2026-12-02T00:00:00Z"));

        Assert.Equal((HttpStatusCode.OK, HttpStatusCode.OK), (old.StatusCode, newer.StatusCode));
        Assert.Equal("Europe/Paris|548380040", await app.ScalarAsync("SELECT iana_timezone || '|' || shopify_shop_id FROM shops WHERE id = $1", shopId));
    }

    /// <summary>
    /// The sweep asks Shopify for a shop's settings, and while Shopify answers with what it read (London, pounds, tax on
    /// top) the merchant moves the store to Tokyo, and that shop/update is applied first. The read's older answer, which
    /// comes after the change, does not undo it: the read counts as of the time it asked.
    /// </summary>
    [Fact]
    public async Task ASettingsRead_DoesNotUndo_AShopUpdateAppliedWhileShopifyAnswered()
    {
        const string shop = "settings-read-race.myshopify.com";
        var shopId = await app.InstallShopAsync(shop);
        await app.ScalarAsync("""
            UPDATE shops SET shopify_shop_id = 548380050, iana_timezone = 'Europe/London', currency = 'GBP', taxes_included = NULL, settings_at = NULL,
              settings_asked_at = NULL, granted_at = '2026-01-01T00:00:00Z' WHERE id = $1
            """, shopId);
        var changed = app.Clock.GetUtcNow().AddMinutes(1).ToString("O", System.Globalization.CultureInfo.InvariantCulture);
        HttpStatusCode? delivered = null;
        try
        {
            app.Shopify.GraphQL = call =>
            {
                if (call.Shop != shop || !call.Query.Contains("taxesIncluded", StringComparison.Ordinal)) return null;
                delivered ??= app.SendWebhookAsync("shop/update", shop, Body(shop, 548380050, "Asia/Tokyo", "JPY", true, changed)).GetAwaiter().GetResult().StatusCode;
                app.Clock.Advance(TimeSpan.FromMinutes(2)); // Shopify's answer comes after the change
                return new StandInAnswer(200, new JsonObject { ["data"] = new JsonObject { ["shop"] = new JsonObject
                    { ["id"] = "gid://shopify/Shop/548380050", ["ianaTimezone"] = "Europe/London", ["currencyCode"] = "GBP", ["taxesIncluded"] = false } } });
            };
            await app.Factory.Services.GetRequiredService<PluginApp.Install.ShopInstaller>().SweepAsync(CancellationToken.None);
        }
        finally
        {
            app.Shopify.GraphQL = null;
        }

        Assert.Equal(HttpStatusCode.OK, delivered);
        Assert.Equal("Asia/Tokyo|JPY|True", await app.ScalarAsync(
            "SELECT iana_timezone || '|' || currency || '|' || CASE WHEN taxes_included THEN 'True' ELSE 'False' END FROM shops WHERE id = $1", shopId));
    }

    /// <summary>
    /// The sweep reads the settings of two shops never read; the first in line has lost its token (expired, its refresh
    /// token too: the merchant must open the app again). The second's are read all the same, and the first is asked again
    /// in an hour.
    /// </summary>
    [Fact]
    public async Task TheSweep_ReadsTheOtherShopsSettings_PastAShopWhoseTokenCannotBeHad()
    {
        const string lost = "settings-token-lost.myshopify.com", fine = "settings-token-fine.myshopify.com";
        var lostId = await app.InstallShopAsync(lost);
        var fineId = await app.InstallShopAsync(fine);
        var now = app.Clock.GetUtcNow();
        await app.ScalarAsync("UPDATE shops SET settings_at = NULL, settings_asked_at = NULL, taxes_included = NULL WHERE id IN ($1, $2)", lostId, fineId);
        await app.ScalarAsync("UPDATE shops SET access_token_expires_at = $2 - interval '1 hour', refresh_token_expires_at = $2 - interval '1 minute' WHERE id = $1", lostId, now);
        try
        {
            app.Shopify.GraphQL = call => call.Shop != fine || !call.Query.Contains("taxesIncluded", StringComparison.Ordinal) ? null
                : new StandInAnswer(200, new JsonObject { ["data"] = new JsonObject { ["shop"] = new JsonObject
                    { ["id"] = "gid://shopify/Shop/548380061", ["ianaTimezone"] = "Europe/Berlin", ["currencyCode"] = "EUR", ["taxesIncluded"] = true } } });
            await app.Factory.Services.GetRequiredService<PluginApp.Install.ShopInstaller>().SweepAsync(CancellationToken.None);
        }
        finally
        {
            app.Shopify.GraphQL = null;
        }

        Assert.Equal("Europe/Berlin|True", await app.ScalarAsync("SELECT iana_timezone || '|' || CASE WHEN taxes_included THEN 'True' ELSE 'False' END FROM shops WHERE id = $1", fineId));
        Assert.Equal(1L, await app.ScalarAsync("SELECT count(*) FROM shops WHERE id = $1 AND settings_at IS NULL AND settings_asked_at IS NOT NULL", lostId));
    }
}
