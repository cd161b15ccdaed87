using System.Net;
using Microsoft.Extensions.DependencyInjection;
using PluginApp.CartOffers;
using Hangfire.Storage;
using PluginApp.Admin.Switches;
using PluginApp.Install;
using PluginApp.Recommendations;
using PluginApp.Tests.Infrastructure;

namespace PluginApp.Tests.Admin;

/// <summary>
/// The blocks' visibility in Shopify follows the merchant's switches: the app's metafields on its installation say which
/// blocks render nothing (the storefront tests render the blocks with them), set through the outbox after each change,
/// set again when the shop installs the app again, since Shopify drops them with the installation, and checked daily.
/// </summary>
public sealed class BlockVisibilityTests(AppFixture app) : IClassFixture<AppFixture>
{
    private Task HiddenAsync(string shop, string key, string? expected) => app.AppMetafieldAsync(shop, key, expected);

    [Fact]
    public async Task Switches_SetTheBlocksVisibility_AndAReinstallHidesTheSwitchedOffBlocksAgain()
    {
        const string shop = "blocks-visibility.myshopify.com";
        await app.InstallShopAsync(shop);

        // Off to show bestsellers: the upsell blocks still show; off to show nothing: hidden; cart offers off: hidden.
        Assert.Equal(HttpStatusCode.OK, (await app.SwitchFeatureAsync(shop, UpsellFeature.Name, false, UpsellFeature.ShowBestsellers)).StatusCode);
        await HiddenAsync(shop, "upsells_hidden", "false");
        Assert.Equal(HttpStatusCode.OK, (await app.SwitchFeatureAsync(shop, UpsellFeature.Name, false, UpsellFeature.ShowNothing)).StatusCode);
        await HiddenAsync(shop, "upsells_hidden", "true");
        Assert.Equal(HttpStatusCode.OK, (await app.SwitchFeatureAsync(shop, CartOffersFeature.Name, false, "nothing")).StatusCode);
        await HiddenAsync(shop, "cart_offers_hidden", "true");
        // On, but not turned on in its settings (a new install's): still hidden; turned on there, shown.
        int Sets() => app.Shopify.Admin.Mutations.Count(m => m.Mentions("metafieldsSet(") && m.Shop == shop);
        Assert.Equal(HttpStatusCode.OK, (await app.SwitchFeatureAsync(shop, CartOffersFeature.Name, true)).StatusCode);
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (Sets() < 4 && DateTime.UtcNow < deadline) await Task.Delay(100);
        Assert.Equal(4, Sets()); // the switch's own call, sent
        await HiddenAsync(shop, "cart_offers_hidden", "true");
        var put = new HttpRequestMessage(HttpMethod.Put, "/api/admin/cart-offers")
        {
            Content = System.Net.Http.Json.JsonContent.Create(new { enabled = true, freeShippingThreshold = 50, offerPercent = 10, maxDiscountPercent = 15, marginFloorPercent = 20, dailyBudget = 100, poolSize = 2, codeExpiryHours = 48 }),
        };
        put.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", app.SessionToken(shop));
        Assert.True((await app.Client.SendAsync(put)).IsSuccessStatusCode);
        await HiddenAsync(shop, "cart_offers_hidden", "false");
        // Each through the outbox, sent once.
        Assert.Equal(5, Sets());

        // Uninstalled: Shopify drops the app's metafields; installed again, the upsell blocks switched off are hidden again,
        // and the cart offers, on, are left unset.
        Assert.Equal(HttpStatusCode.OK, (await app.SendWebhookAsync("app/uninstalled", shop, $"{{\"id\": 77, \"myshopify_domain\": \"{shop}\"}}")).StatusCode);
        app.Shopify.Admin.ForgetMetafields(ShopifyStandIn.DefaultAdminApi.AppInstallation(shop));
        await app.Factory.Services.GetRequiredService<ShopInstaller>().InstallAsync(shop,
            new TokenGrant($"shpat_{shop}_again", "read_orders", 3600, $"shprt_{shop}_again", 7776000), CancellationToken.None);
        await HiddenAsync(shop, "upsells_hidden", "true");
        await Task.Delay(500);
        Assert.Null(app.Shopify.Admin.Metafields(ShopifyStandIn.DefaultAdminApi.AppInstallation(shop)).GetValueOrDefault("pluginapp.cart_offers_hidden"));
    }

    /// <summary>
    /// The day's checks are queued a group at a time, not every shop at once: they share the long jobs' workers with
    /// merchants' imports and trainings.
    /// </summary>
    [Fact]
    public async Task DailyCheck_QueuesItsShopsAGroupAtATime()
    {
        for (var i = 0; i < BlockVisibilityJob.CheckGroup + 3; i++) await app.InstallShopAsync($"blocks-spread-{i}.myshopify.com");
        var reachable = await app.CountAsync($"SELECT count(*) FROM shops s WHERE {PluginApp.StoreData.ShopStatus.Reachable("s")}");
        var storage = app.Factory.Services.GetRequiredService<Hangfire.JobStorage>();
        var monitor = storage.GetMonitoringApi();
        List<KeyValuePair<string, Hangfire.Storage.Monitoring.ScheduledJobDto>> Checks() => monitor.ScheduledJobs(0, 10_000)
            .Where(j => j.Value.Job?.Method.Name == nameof(BlockVisibilityJob.CheckAsync)).ToList();
        var before = Checks().Select(j => j.Key).ToHashSet();
        var start = DateTime.UtcNow;

        await app.Factory.Services.GetRequiredService<BlockVisibilityJob>().SweepAsync(CancellationToken.None);

        var scheduled = Checks().Where(j => !before.Contains(j.Key)).ToList();
        try
        {
            Assert.Equal(reachable - BlockVisibilityJob.CheckGroup, scheduled.Count);
            foreach (var group in scheduled.GroupBy(j => (int)Math.Round((j.Value.EnqueueAt - start).TotalSeconds / BlockVisibilityJob.CheckGroupSpacing.TotalSeconds)))
            {
                Assert.InRange(group.Key, 1, (reachable - 1) / BlockVisibilityJob.CheckGroup);
                Assert.True(group.Count() <= BlockVisibilityJob.CheckGroup, $"{group.Count()} checks queued {group.Key} groups in");
            }
        }
        finally
        {
            // Not left to run during the class's other tests.
            var jobs = app.Factory.Services.GetRequiredService<Hangfire.IBackgroundJobClient>();
            foreach (var j in scheduled) Hangfire.BackgroundJobClientExtensions.Delete(jobs, j.Key);
        }
    }

    [Fact]
    public async Task DailyCheck_PutsBackWhatShopifyLost_AndQueuesNothingWhereShopifyHoldsTheSwitch()
    {
        const string lost = "blocks-check-lost.myshopify.com", held = "blocks-check-held.myshopify.com";
        var ids = new Dictionary<string, long>();
        foreach (var shop in new[] { lost, held })
        {
            ids[shop] = await app.InstallShopAsync(shop);
            Assert.Equal(HttpStatusCode.OK, (await app.SwitchFeatureAsync(shop, UpsellFeature.Name, false, UpsellFeature.ShowNothing)).StatusCode);
            await HiddenAsync(shop, "upsells_hidden", "true");
            Assert.Equal(HttpStatusCode.OK, (await app.SwitchFeatureAsync(shop, CartOffersFeature.Name, false, "nothing")).StatusCode);
            await HiddenAsync(shop, "cart_offers_hidden", "true");
        }
        // Every call sent and marked so: a call still open counts as one that may land later, and the check queues after it.
        async Task SentAsync(string shop)
        {
            var deadline = DateTime.UtcNow.AddSeconds(20);
            while (await app.CountAsync("SELECT count(*) FROM outbox_messages WHERE shop_id = $1 AND completed_at IS NULL AND failed_at IS NULL", ids[shop]) > 0)
            {
                Assert.True(DateTime.UtcNow < deadline, $"{shop}: its calls were not all sent within 20 s");
                await Task.Delay(100);
            }
        }
        await SentAsync(lost);
        await SentAsync(held);
        // Shopify no longer holds what the switches said (a switch's job that failed all its tries, or a shop switched off
        // before the app set metafields): the blocks would show their empty box until the merchant's next change.
        app.Shopify.Admin.ForgetMetafields(ShopifyStandIn.DefaultAdminApi.AppInstallation(lost));
        Task<long> Queued(string shop) => app.CountAsync("SELECT count(*) FROM outbox_messages WHERE shop_id = $1 AND resource_key LIKE '%/pluginapp.%'", ids[shop]);
        var heldBefore = await Queued(held);

        // The day's check, as its recurring job runs it: each shop checked in a job of its own.
        using (var storage = app.Factory.Services.GetRequiredService<Hangfire.JobStorage>().GetConnection())
            Assert.Single(storage.GetRecurringJobs([BlockVisibilityJob.CheckId]), j => !j.Removed);
        var job = app.Factory.Services.GetRequiredService<BlockVisibilityJob>();
        await job.SweepAsync(CancellationToken.None);
        await HiddenAsync(lost, "upsells_hidden", "true");
        await HiddenAsync(lost, "cart_offers_hidden", "true");
        await SentAsync(lost);

        // Where Shopify holds what the switches say, the check queues no call.
        await job.CheckAsync(ids[held], CancellationToken.None);
        Assert.Equal(heldBefore, await Queued(held));
        // And one put right is not queued again.
        var lostAfter = await Queued(lost);
        await job.CheckAsync(ids[lost], CancellationToken.None);
        Assert.Equal(lostAfter, await Queued(lost));

        // A call still to be sent on the metafield (here an older "shown", tried again in an hour) would land after what
        // Shopify holds now: the check queues the switch's value after it, though Shopify holds that value today.
        var resource = $"{ShopifyStandIn.DefaultAdminApi.AppInstallation(held)}/pluginapp.upsells_hidden";
        await app.ScalarAsync("""
            INSERT INTO outbox_messages (shop_id, resource_key, operation, variables, idempotency_key, created_at, next_attempt_at)
            VALUES ($1, $2, 'metafieldsSet', '{"metafields": [{"value": "false"}]}', 'blocks:older', now(), now() + interval '1 hour') RETURNING id
            """, ids[held], resource);
        await job.CheckAsync(ids[held], CancellationToken.None);
        Assert.Equal("true", await app.ScalarAsync(
            "SELECT variables->'metafields'->0->>'value' FROM outbox_messages WHERE shop_id = $1 AND resource_key = $2 ORDER BY id DESC LIMIT 1", ids[held], resource));
    }
}
