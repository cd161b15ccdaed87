using System.Net;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using PluginApp.Tests.Infrastructure;
using PluginApp.Tests.Outbox;
using ShopifyStandIn;
using WireMock.ResponseBuilders;

namespace PluginApp.Tests.Webhooks;

/// <summary>
/// shop/redact for a shop that still reads as installed: Shopify is asked whether the app's token still works before the
/// shop is erased. Why an app without a job server: the check runs every minute, and the test decides when it runs.
/// </summary>
public sealed class ShopRedactionCheckTests(NoSchedulerAppFixture app) : IClassFixture<NoSchedulerAppFixture>
{
    /// <summary>
    /// A shop whose uninstall never reached us (refused, or Shopify gave up retrying) still reads as installed: Shopify is
    /// asked first, and once it refuses the app's token (revoked at the uninstall) the shop is erased.
    /// </summary>
    [Fact]
    public async Task ShopRedact_ForAShopWhoseUninstallWeMissed_ErasesItOnceShopifyRefusesItsToken()
    {
        const string shop = "missed-uninstall.myshopify.com";
        var shopId = await app.InstallShopAsync(shop);
        await app.SendWebhookAsync("orders/create", shop, ShopifyPayloads.Order(6371, customerId: 8371).ToJsonString());
        await app.ScalarAsync("UPDATE shops SET granted_at = $2 WHERE id = $1", shopId, app.Clock.GetUtcNow().AddDays(-3));

        var response = await app.SendWebhookAsync("shop/redact", shop, $"{{\"shop_id\": 7, \"shop_domain\": \"{shop}\"}}");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM orders WHERE shop_id = $1", shopId));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM shop_token_checks WHERE shop_id = $1", shopId));
        // Shopify gives no answer: nothing is erased, and it is asked again later.
        app.Shopify.Next(StandInServer.GraphQLRequest(shop), Response.Create().WithStatusCode(400).WithBody("{\"errors\": \"bad request\"}"));
        await RunShopRedactionChecksAsync(PluginApp.Compliance.ShopTokenChecks.FirstAsk);
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM shop_token_checks WHERE shop_id = $1 AND tries = 1 AND last_error IS NOT NULL", shopId));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM orders WHERE shop_id = $1", shopId));
        app.Shopify.Next(StandInServer.GraphQLRequest(shop), Response.Create().WithStatusCode(401));

        Assert.Equal(1, await RunShopRedactionChecksAsync(PluginApp.Compliance.ShopTokenChecks.FirstAsk + PluginApp.Compliance.ShopTokenChecks.Retry));

        Assert.Equal(0, await app.CountAsync("SELECT count(*) FROM shops WHERE id = $1", shopId));
        Assert.Equal(0, await app.CountAsync("SELECT count(*) FROM orders WHERE shop_id = $1", shopId));
        Assert.Equal(0, await app.CountAsync("SELECT count(*) FROM shop_token_checks WHERE shop_id = $1", shopId));
    }

    /// <summary>
    /// shop/redact's body is signed, the time it was triggered is not: a copy replayed with a fresh time, for a merchant who
    /// uninstalled and came back more than 48 hours ago, erases nothing while Shopify still accepts the app's token, and is
    /// logged as a security event. Until 6 Dec 2026 it deleted the store, token and all.
    /// </summary>
    [Fact]
    public async Task ShopRedact_ReplayedWithAFreshTime_ForAShopThatCameBackLongAgo_ErasesNothing()
    {
        var logs = new LogCapture();
        await using var instance = app.CreateFactory(app.Database.ConnectionString, b =>
        {
            b.UseSetting("Scheduling:Enabled", "false");
            b.ConfigureLogging(l => l.AddProvider(logs));
        });
        const string shop = "came-back-long-ago.myshopify.com";
        var shopId = await app.InstallShopAsync(shop);
        await app.SendWebhookAsync("orders/create", shop, ShopifyPayloads.Order(6381, customerId: 8381).ToJsonString());
        await app.ScalarAsync("UPDATE shops SET granted_at = $2 WHERE id = $1", shopId, app.Clock.GetUtcNow().AddDays(-5));

        var response = await app.SendWebhookAsync("shop/redact", shop, $"{{\"shop_id\": 8, \"shop_domain\": \"{shop}\"}}");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM shop_token_checks WHERE shop_id = $1", shopId));
        Assert.Equal(0, await RunShopRedactionChecksAsync(PluginApp.Compliance.ShopTokenChecks.FirstAsk, instance.Services));

        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM shops WHERE id = $1 AND uninstalled_at IS NULL AND access_token_enc IS NOT NULL", shopId));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM orders WHERE shop_id = $1 AND id = 6381 AND email IS NOT NULL", shopId));
        Assert.Equal(0, await app.CountAsync("SELECT count(*) FROM shop_token_checks WHERE shop_id = $1", shopId));
        Assert.Contains(logs.Entries, e => e.EventId.Id == PluginApp.Webhooks.WebhookIngestor.SecurityEvent.Id && e.Message.Contains(shop));
    }

    /// <summary>
    /// A shop the app holds no token for any more (expired with no refresh left, or none stored) cannot be asked about: the
    /// request erases it. Until the review of 6 Dec 2026 the check was dropped and logged as an erasure, and the shop stayed.
    /// </summary>
    [Fact]
    public async Task ShopRedact_ForAShopWithNoTokenLeft_ErasesIt()
    {
        const string shop = "redact-no-token.myshopify.com";
        var shopId = await app.InstallShopAsync(shop);
        await app.ScalarAsync("UPDATE shops SET granted_at = $2, access_token_enc = NULL, refresh_token_enc = NULL WHERE id = $1", shopId, app.Clock.GetUtcNow().AddDays(-3));
        Assert.Equal(HttpStatusCode.OK, (await app.SendWebhookAsync("shop/redact", shop, $"{{\"shop_id\": 9, \"shop_domain\": \"{shop}\"}}")).StatusCode);

        Assert.Equal(1, await RunShopRedactionChecksAsync(PluginApp.Compliance.ShopTokenChecks.FirstAsk));

        Assert.Equal(0, await app.CountAsync("SELECT count(*) FROM shops WHERE id = $1", shopId));
    }

    /// <summary>
    /// A signed app/uninstalled copied from an earlier uninstall and sent again with a fresh time, for a shop that installed
    /// again since: Shopify still accepts the app's token, so nothing is disconnected, and a shop/redact copied the same way
    /// and sent after it erases nothing either. Until 6 Dec 2026 the uninstall dropped the shop's tokens at once (its blocks
    /// and ingestion stopped until the merchant opened the app), and the shop/redact then erased the store without asking.
    /// </summary>
    [Fact]
    public async Task AppUninstalled_ReplayedWithAFreshTime_DisconnectsNothing_AndAReplayedShopRedactAfterItErasesNothing()
    {
        const string shop = "uninstall-replayed.myshopify.com";
        var shopId = await app.InstallShopAsync(shop);
        await app.SendWebhookAsync("orders/create", shop, ShopifyPayloads.Order(6391, customerId: 8391).ToJsonString());
        await app.ScalarAsync("UPDATE shops SET granted_at = $2 WHERE id = $1", shopId, app.Clock.GetUtcNow().AddDays(-5));
        var uninstall = $"{{\"id\": 9, \"myshopify_domain\": \"{shop}\"}}";

        var response = await app.SendWebhookAsync("app/uninstalled", shop, uninstall, hmac: ShopifySigning.WebhookHmac(AppFixture.ClientSecret, System.Text.Encoding.UTF8.GetBytes(uninstall)));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(0, await RunShopRedactionChecksAsync(PluginApp.Compliance.ShopTokenChecks.FirstAsk));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM shops WHERE id = $1 AND uninstalled_at IS NULL AND access_token_enc IS NOT NULL", shopId));
        Assert.Equal(0, await app.CountAsync("SELECT count(*) FROM shop_token_checks WHERE shop_id = $1", shopId));

        var redact = $"{{\"shop_id\": 9, \"shop_domain\": \"{shop}\"}}";
        Assert.Equal(HttpStatusCode.OK, (await app.SendWebhookAsync("shop/redact", shop, redact, hmac: ShopifySigning.WebhookHmac(AppFixture.ClientSecret, System.Text.Encoding.UTF8.GetBytes(redact)))).StatusCode);
        Assert.Equal(0, await RunShopRedactionChecksAsync(PluginApp.Compliance.ShopTokenChecks.FirstAsk));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM orders WHERE shop_id = $1 AND id = 6391 AND email IS NOT NULL", shopId));

        // Shopify's own uninstall (the token refused first) still disconnects the shop, once asked.
        Assert.Equal(HttpStatusCode.OK, (await app.SendWebhookAsync("app/uninstalled", shop, uninstall)).StatusCode);
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM shops WHERE id = $1 AND uninstalled_at IS NOT NULL AND access_token_enc IS NULL", shopId));
    }

    /// <summary>
    /// A replayed uninstall's check asks Shopify with the shop's token while another instance replaces it (a refresh): Shopify
    /// refuses the old token, which the shop no longer holds, so nothing is disconnected; the check asks again with the new
    /// token, which Shopify accepts, and is dropped. Until 7 Dec 2026 any refusal disconnected the installed shop.
    /// </summary>
    [Fact]
    public async Task AnUninstallCheckRefusedWithATokenReplacedMeanwhile_DisconnectsNothing_AndAsksAgainWithTheNewOne()
    {
        const string shop = "uninstall-token-rotated.myshopify.com";
        var shopId = await app.InstallShopAsync(shop);
        await app.ScalarAsync("UPDATE shops SET granted_at = $2 WHERE id = $1", shopId, app.Clock.GetUtcNow().AddDays(-5));
        var uninstall = $"{{\"id\": 12, \"myshopify_domain\": \"{shop}\"}}";
        Assert.Equal(HttpStatusCode.OK, (await app.SendWebhookAsync("app/uninstalled", shop, uninstall,
            hmac: ShopifySigning.WebhookHmac(AppFixture.ClientSecret, System.Text.Encoding.UTF8.GetBytes(uninstall)))).StatusCode);
        var refreshed = app.Factory.Services.GetRequiredService<PluginApp.Install.KeyRing.SecretProtector>().Protect($"shpat_{shop}_refreshed");
        var refused = 0;
        app.Shopify.GraphQL = call =>
        {
            if (call.Shop != shop || call.AccessToken != $"shpat_{shop}_seed") return null;
            // Another instance refreshes the token while this call is on its way; Shopify refuses the old one.
            app.ScalarAsync("UPDATE shops SET access_token_enc = $2 WHERE id = $1", shopId, refreshed).GetAwaiter().GetResult();
            Interlocked.Increment(ref refused);
            return StandInAnswer.Json(new { errors = "[API] Invalid API key or access token (unrecognized login or wrong password)" }, 401);
        };
        try
        {
            Assert.Equal(0, await RunShopRedactionChecksAsync(PluginApp.Compliance.ShopTokenChecks.FirstAsk));
            Assert.Equal(1, refused);
            Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM shops WHERE id = $1 AND uninstalled_at IS NULL AND token_revoked_at IS NULL", shopId));
            Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM shop_token_checks WHERE shop_id = $1 AND last_error IS NOT NULL", shopId));

            Assert.Equal(0, await RunShopRedactionChecksAsync(PluginApp.Compliance.ShopTokenChecks.FirstAsk + PluginApp.Compliance.ShopTokenChecks.Retry));
        }
        finally { app.Shopify.GraphQL = null; }
        Assert.Equal(1, refused);
        Assert.Equal(0, await app.CountAsync("SELECT count(*) FROM shop_token_checks WHERE shop_id = $1", shopId));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM shops WHERE id = $1 AND uninstalled_at IS NULL AND access_token_enc IS NOT NULL", shopId));
    }

    /// <summary>
    /// An uninstall Shopify gives no answer about (the store frozen or closed, an error every time) is asked again, and after
    /// a day without an answer it acts: the shop is uninstalled. Until the review of 6 Dec 2026 it was asked every five
    /// minutes for ever, and the shop stayed installed, and so unerased by its shop/redact, which asked the same way.
    /// </summary>
    [Fact]
    public async Task AnUninstallShopifyGivesNoAnswerAbout_ActsAfterADay()
    {
        const string shop = "uninstall-no-answer.myshopify.com";
        var shopId = await app.InstallShopAsync(shop, expiresInSeconds: 7 * 86_400);
        var uninstall = $"{{\"id\": 10, \"myshopify_domain\": \"{shop}\"}}";
        Assert.Equal(HttpStatusCode.OK, (await app.SendWebhookAsync("app/uninstalled", shop, uninstall,
            hmac: ShopifySigning.WebhookHmac(AppFixture.ClientSecret, System.Text.Encoding.UTF8.GetBytes(uninstall)))).StatusCode);
        app.Shopify.Next(StandInServer.GraphQLRequest(shop), Response.Create().WithStatusCode(400).WithBody("{\"errors\": \"bad request\"}"), times: 2);

        Assert.Equal(0, await RunShopRedactionChecksAsync(PluginApp.Compliance.ShopTokenChecks.FirstAsk));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM shops WHERE id = $1 AND uninstalled_at IS NULL", shopId));
        // A day and five minutes on (the token, good for a week, still is): Shopify still gives no answer, and the uninstall acts.
        Assert.Equal(1, await RunShopRedactionChecksAsync(TimeSpan.FromDays(1) + PluginApp.Compliance.ShopTokenChecks.Retry));

        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM shops WHERE id = $1 AND uninstalled_at IS NOT NULL AND access_token_enc IS NULL", shopId));
        Assert.Equal(0, await app.CountAsync("SELECT count(*) FROM shop_token_checks WHERE shop_id = $1", shopId));
    }

    /// <summary>
    /// The app's own failure to ask (a token it cannot decrypt) is no answer from Shopify: a day of it neither uninstalls nor
    /// erases the shop; the request waits, with its error noted.
    /// </summary>
    [Fact]
    public async Task AnUninstallTheAppCannotAskAbout_DoesNotActAfterADay()
    {
        const string shop = "uninstall-unreadable-token.myshopify.com";
        var shopId = await app.InstallShopAsync(shop, expiresInSeconds: 7 * 86_400);
        var uninstall = $"{{\"id\": 11, \"myshopify_domain\": \"{shop}\"}}";
        Assert.Equal(HttpStatusCode.OK, (await app.SendWebhookAsync("app/uninstalled", shop, uninstall,
            hmac: ShopifySigning.WebhookHmac(AppFixture.ClientSecret, System.Text.Encoding.UTF8.GetBytes(uninstall)))).StatusCode);
        await app.ScalarAsync("UPDATE shops SET access_token_enc = 'not-a-protected-value' WHERE id = $1", shopId);

        Assert.Equal(0, await RunShopRedactionChecksAsync(PluginApp.Compliance.ShopTokenChecks.FirstAsk));
        Assert.Equal(0, await RunShopRedactionChecksAsync(TimeSpan.FromDays(1) + PluginApp.Compliance.ShopTokenChecks.Retry));

        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM shops WHERE id = $1 AND uninstalled_at IS NULL", shopId));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM shop_token_checks WHERE shop_id = $1 AND last_error IS NOT NULL", shopId));
    }

    /// <summary>
    /// The merchant uninstalled while our webhook endpoint was failing, installed again an hour later (a managed install
    /// tells the app nothing, and its stored token is the one Shopify revoked) and opened the app. The uninstall, delivered
    /// late, does not disconnect her shop: her session was issued after it. Her token is marked revoked, so her next visit
    /// exchanges a new one. The shop/redact 48 hours after the uninstall erases nothing. Until 7 Dec 2026 the late uninstall
    /// disconnected the shop, and the shop/redact erased the store of a merchant running the app.
    /// </summary>
    [Fact]
    public async Task AnUninstallDeliveredLate_AfterTheMerchantOpenedTheAppAgain_NeitherDisconnectsNorErases()
    {
        const string shop = "late-uninstall-reinstalled.myshopify.com";
        var shopId = await app.InstallShopAsync(shop, expiresInSeconds: 3 * 86400); // not refreshed within the test
        await app.SendWebhookAsync("orders/create", shop, ShopifyPayloads.Order(6401, customerId: 8401).ToJsonString());
        var uninstalled = app.Clock.GetUtcNow();
        await app.ScalarAsync("UPDATE shops SET granted_at = $2 WHERE id = $1", shopId, uninstalled.AddDays(-5));
        var moved = TimeSpan.Zero;
        try
        {
            app.Clock.Advance(TimeSpan.FromHours(1)); moved += TimeSpan.FromHours(1);
            Assert.Equal(HttpStatusCode.OK, (await app.Client.SendAsync(app.AdminGet("/api/admin/shop", shop))).StatusCode);

            // The uninstall comes now, triggered an hour ago; Shopify refuses the token it revoked then.
            Assert.Equal(HttpStatusCode.OK, (await app.SendWebhookAsync("app/uninstalled", shop, $"{{\"id\": 10, \"myshopify_domain\": \"{shop}\"}}",
                triggeredAt: uninstalled)).StatusCode);
            Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM shops WHERE id = $1 AND uninstalled_at IS NULL AND token_revoked_at IS NOT NULL", shopId));
            // Set up as the new install it is: its store imported again, as nothing was stored while the app was away.
            Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM shops WHERE id = $1 AND installed_at > $2 AND setup_pending_since IS NOT NULL", shopId, uninstalled));

            app.Clock.Advance(TimeSpan.FromHours(47)); moved += TimeSpan.FromHours(47);
            Assert.Equal(HttpStatusCode.OK, (await app.SendWebhookAsync("shop/redact", shop, $"{{\"shop_id\": 10, \"shop_domain\": \"{shop}\"}}")).StatusCode);
            await RunShopRedactionChecksAsync(PluginApp.Compliance.ShopTokenChecks.FirstAsk);
            Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM orders WHERE shop_id = $1 AND id = 6401 AND email IS NOT NULL", shopId));

            // Her next visit exchanges a token Shopify accepts.
            app.Shopify.Installed(shop);
            Assert.Equal(HttpStatusCode.OK, (await app.Client.SendAsync(app.AdminGet("/api/admin/shop", shop))).StatusCode);
            Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM shops WHERE id = $1 AND token_revoked_at IS NULL AND granted_at > $2", shopId, uninstalled));
        }
        finally { app.Clock.Advance(-moved); }
    }

    /// <summary>
    /// The merchant uninstalls and installs again within seconds: the uninstall waits for its check, so the shop still reads
    /// as installed when she opens the app, which exchanges a token and sets the shop up again (its switched-off blocks
    /// hidden again: Shopify dropped the app's metafields). Until 8 Dec 2026 it was not set up, and those blocks showed on
    /// the storefront until the daily check.
    /// </summary>
    [Fact]
    public async Task InstalledAgainWithinSeconds_OpeningTheAppSetsTheShopUpAgain()
    {
        const string shop = "reinstalled-within-seconds.myshopify.com";
        var shopId = await app.InstallShopAsync(shop);
        await app.ScalarAsync("UPDATE shops SET granted_at = $2 WHERE id = $1", shopId, app.Clock.GetUtcNow().AddDays(-5));
        const string hidden = """
            SELECT count(*) FROM hangfire.job
            WHERE invocationdata->>'Type' LIKE 'PluginApp.Admin.Switches.BlockVisibilityJob,%' AND invocationdata->>'Method' = 'InstalledAsync'
              AND arguments->>0 LIKE '%' || $1 || '%'
            """;
        var before = await app.CountAsync(hidden, shop);
        // Shopify's uninstall, whose check (a minute later) has not run yet.
        app.Shopify.Uninstalled(shop);
        var uninstall = $"{{\"id\": 13, \"myshopify_domain\": \"{shop}\"}}";
        Assert.Equal(HttpStatusCode.OK, (await app.SendWebhookAsync("app/uninstalled", shop, uninstall,
            hmac: ShopifySigning.WebhookHmac(AppFixture.ClientSecret, System.Text.Encoding.UTF8.GetBytes(uninstall)))).StatusCode);
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM shops WHERE id = $1 AND uninstalled_at IS NULL", shopId));

        app.Shopify.Installed(shop);
        Assert.Equal(HttpStatusCode.OK, (await app.Client.SendAsync(app.AdminGet("/api/admin/shop", shop))).StatusCode);

        Assert.Equal(before + 1, await app.CountAsync(hidden, shop));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM shops WHERE id = $1 AND token_revoked_at IS NULL AND granted_at > now() - interval '1 hour'", shopId));
        // The uninstall's check then finds the new token working and drops the request: the shop stays.
        Assert.Equal(0, await RunShopRedactionChecksAsync(PluginApp.Compliance.ShopTokenChecks.FirstAsk));
        Assert.Equal(0, await app.CountAsync("SELECT count(*) FROM shop_token_checks WHERE shop_id = $1", shopId));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM shops WHERE id = $1 AND uninstalled_at IS NULL", shopId));
    }

    /// <summary>
    /// Runs the checks of shop/redact requests once they are due, <paramref name="after"/> from now, and puts the clock back.
    /// </summary>
    private async Task<int> RunShopRedactionChecksAsync(TimeSpan after, IServiceProvider? services = null)
    {
        app.Clock.Advance(after);
        try { return await ActivatorUtilities.CreateInstance<PluginApp.Compliance.ShopTokenChecks>(services ?? app.Factory.Services).RunAsync(CancellationToken.None); }
        finally { app.Clock.Advance(-after); }
    }
}
