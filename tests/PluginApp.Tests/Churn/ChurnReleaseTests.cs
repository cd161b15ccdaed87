using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using PluginApp.Churn;
using PluginApp.Governance;

namespace PluginApp.Tests.Churn;

/// <summary>Churn goes through the same shadow and canary releases as the other kinds, by customers.</summary>
public sealed class ChurnReleaseTests(ChurnFixture app) : IClassFixture<ChurnFixture>
{
    [Fact]
    public async Task ChurnRelease_ShadowComparesEveryCustomersSegment_ThenTheCanaryScoresItsShareOfCustomers_UntilItPutsFarMoreInWinBack()
    {
        const string shop = "churn-release.myshopify.com";
        var shopId = await VersionTwoInShadowAsync(shop, 96_300_000, seed: 3, canaryDecisions: 100_000);
        Assert.Equal("shadow", await app.ScalarAsync("SELECT status FROM models WHERE shop_id = $1 AND kind = 'churn' AND version = 2", shopId));
        var reason = (string)(await app.ScalarAsync("SELECT status_reason FROM models WHERE shop_id = $1 AND kind = 'churn' AND version = 2", shopId))!;
        Assert.True(reason.Contains("% of customers for 100000 decisions"), reason);
        var calls = await app.CountAsync("SELECT count(*) FROM outbox_messages WHERE shop_id = $1", shopId);

        // In shadow: every customer keeps the active version's score and segment; each one's candidate segment is logged beside it.
        await app.ScoreAsync(shopId);
        Assert.Equal(0, await app.CountAsync("SELECT count(*) FROM churn_scores WHERE shop_id = $1 AND model_version <> 1", shopId));
        Assert.True(await app.CountAsync("""
            SELECT count(DISTINCT customer_id) FROM decisions WHERE shop_id = $1 AND kind = 'churn' AND model_version = 1
              AND shadow->>'version' = '2' AND shadow->>'subject' IS NOT NULL
            """, shopId) == 400);
        Assert.Equal(calls, await app.CountAsync("SELECT count(*) FROM outbox_messages WHERE shop_id = $1", shopId)); // nothing new to Shopify

        await app.Factory.Services.GetRequiredService<StagedReleases>().RunShopAsync(shopId, CancellationToken.None);
        Assert.StartsWith("canary:", await StatusAsync(shopId));
        var started = (string)(await app.ScalarAsync("SELECT detail FROM governance_events WHERE shop_id = $1 AND model_kind = 'churn' AND event = 'canary_started'", shopId))!;
        Assert.Contains("agreed with version 1 on", started);
        Assert.Contains("of customers (each kept on one version by a hash)", started);

        // In canary: the customers in its share are scored by version 2, the others by version 1, run after run.
        var inCanary = (await CustomersAsync(shopId)).Where(c => ChurnScoringJob.InCanary(shopId, c.ToString(System.Globalization.CultureInfo.InvariantCulture), 0.5)).ToHashSet();
        Assert.InRange(inCanary.Count, 100, 300);
        // One canary customer's segment is out of step with Shopify's, so this run writes (and logs) theirs.
        var resynced = inCanary.Min();
        await app.ScalarAsync("UPDATE churn_scores SET synced_segment = 'stale' WHERE shop_id = $1 AND customer_id = $2", shopId, resynced);
        await app.ScoreAsync(shopId);
        foreach (var (customer, version) in await VersionsAsync(shopId))
            Assert.Equal(inCanary.Contains(customer) ? 2 : 1, version);
        // Each customer of its share is a canary decision; only the resynced one's was written to Shopify (its id is the change's).
        Assert.Equal(inCanary.Count, await app.CountAsync("SELECT count(*) FROM decisions WHERE shop_id = $1 AND kind = 'churn' AND output ? 'release'", shopId));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM decisions WHERE shop_id = $1 AND kind = 'churn' AND output ? 'release' AND decision_id NOT LIKE '%:canary:%'", shopId));
        var output = JsonDocument.Parse((string)(await app.ScalarAsync(
            "SELECT output::text FROM decisions WHERE shop_id = $1 AND kind = 'churn' AND customer_id = $2 AND output ? 'release' AND decision_id NOT LIKE '%:canary:%'", shopId, resynced))!).RootElement;
        Assert.Equal("canary", output.GetProperty("release").GetString());
        Assert.Equal(2, output.GetProperty("candidate").GetInt32());
        Assert.False(output.TryGetProperty("failed", out _));

        // Its guardrail: the share of its customers in a win-back segment against the others'. As many as theirs: it stays.
        var releases = app.Factory.Services.GetRequiredService<StagedReleases>();
        await app.ScalarAsync("UPDATE churn_scores SET segment = CASE WHEN customer_id % 4 = 0 THEN 'at-risk' ELSE 'active' END WHERE shop_id = $1", shopId);
        await releases.RunShopAsync(shopId, CancellationToken.None);
        Assert.StartsWith("canary:", await StatusAsync(shopId));

        // Then it puts most of its customers in a win-back segment: rolled back, and the next run scores everyone with version 1.
        await app.ScalarAsync("UPDATE churn_scores SET segment = 'lapsing' WHERE shop_id = $1 AND model_version = 2 AND customer_id % 4 <> 3", shopId);
        await releases.RunShopAsync(shopId, CancellationToken.None);
        Assert.Equal("candidate", await app.ScalarAsync("SELECT status FROM models WHERE shop_id = $1 AND kind = 'churn' AND version = 2", shopId));
        var rolledBack = (string)(await app.ScalarAsync("SELECT status_reason FROM models WHERE shop_id = $1 AND kind = 'churn' AND version = 2", shopId))!;
        Assert.StartsWith("rolled back automatically:", rolledBack);
        Assert.Contains("of its customers put in a win-back segment", rolledBack);
        Assert.Contains("win-back emails would go to far more customers", rolledBack);
        await app.ScoreAsync(shopId);
        Assert.All(await VersionsAsync(shopId), v => Assert.Equal(1, v.Version));
    }

    /// <summary>
    /// A store's segments change for a few customers a day, so a canary counted by changes never reached its decisions: it
    /// ran for months and held the nightly trainings. Each customer of its share scored counts, once a day: a canary of 300
    /// decisions over half of 400 customers goes on through a second run the same day (a release's settings saved, churn
    /// switched on: until 8 Dec 2026 each run counted, and it ended that day), and ends at the next day's run, and the new
    /// version serves everyone.
    /// </summary>
    [Fact]
    public async Task ChurnCanary_EndsAfterItsDecisions_CountingEveryCustomerOfItsShareScored_OnceADay()
    {
        var shopId = await VersionTwoInShadowAsync("churn-canary-ends.myshopify.com", 96_400_000, seed: 5, canaryDecisions: 300);
        var releases = app.Factory.Services.GetRequiredService<StagedReleases>();
        await app.ScoreAsync(shopId);
        await releases.RunShopAsync(shopId, CancellationToken.None);
        Assert.StartsWith("canary:", await StatusAsync(shopId));
        // The canary's first run moves its customers to version 2; the next, the same day, changes nobody's segment.
        await app.ScoreAsync(shopId);
        await releases.RunShopAsync(shopId, CancellationToken.None);
        Assert.StartsWith("canary:", await StatusAsync(shopId));
        var calls = await app.CountAsync("SELECT count(*) FROM outbox_messages WHERE shop_id = $1", shopId);
        await app.ScoreAsync(shopId);
        Assert.Equal(calls, await app.CountAsync("SELECT count(*) FROM outbox_messages WHERE shop_id = $1", shopId));
        await releases.RunShopAsync(shopId, CancellationToken.None);
        Assert.StartsWith("canary:", await StatusAsync(shopId));

        app.Clock.Advance(TimeSpan.FromDays(1));
        try
        {
            await app.ScoreAsync(shopId);
            await releases.RunShopAsync(shopId, CancellationToken.None);
            Assert.StartsWith("active", await StatusAsync(shopId));
        }
        finally { app.Clock.Advance(-TimeSpan.FromDays(1)); }
    }

    /// <summary>Version 2's status and why, so a failure says what moved it.</summary>
    private async Task<string> StatusAsync(long shopId) =>
        (string)(await app.ScalarAsync("SELECT status || ': ' || coalesce(status_reason, '') FROM models WHERE shop_id = $1 AND kind = 'churn' AND version = 2", shopId))!;

    /// <summary>
    /// A store of 400 customers scored by its first churn version, its releases staged (100 shadow decisions, then a canary
    /// of half its customers for <paramref name="canaryDecisions"/>), and a second version trained into shadow.
    /// </summary>
    private async Task<long> VersionTwoInShadowAsync(string shop, long firstCustomer, int seed, int canaryDecisions)
    {
        var shopId = await app.InstallShopAsync(shop);
        await app.SeedAsync(shopId, firstCustomer, 400, seed);
        Assert.True((await app.TrainAsync(shop)).Activated);
        await app.ScoreAsync(shopId);
        var req = new HttpRequestMessage(HttpMethod.Put, "/api/admin/releases/churn/settings")
        {
            Content = JsonContent.Create(new { staged = true, shadowDecisions = 100, canaryShare = 0.5, canaryDecisions }),
        };
        req.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", app.SessionToken(shop));
        Assert.True((await app.Client.SendAsync(req)).IsSuccessStatusCode);
        // Why version 1's figures are lowered: these tests are about the release's stages, not its effect. The second
        // training reads the same orders at a later instant, so its held-out split moves by the seconds between the two and
        // its figures differ a little either way (under a loaded full run it came out below version 1, stayed a candidate and
        // never reached shadow; 5 and 6 Dec 2026). Version 1 kept behind recency by 0.5 ROC-AUC is a lead any model that may
        // serve (ROC-AUC at least Churn:MinRocAuc, 0.55) keeps, so version 2 enters shadow whatever the clock.
        await app.ScalarAsync("""
            UPDATE models SET metrics = metrics || '{"RocAuc": 0.5, "RecencyRocAuc": 1.0}'::jsonb
            WHERE shop_id = $1 AND kind = 'churn' AND version = 1
            """, shopId);
        Assert.Equal((2, false), await app.TrainAsync(shop));
        return shopId;
    }

    private async Task<List<long>> CustomersAsync(long shopId) => (await VersionsAsync(shopId)).Select(v => v.Customer).ToList();

    private async Task<List<(long Customer, int Version)>> VersionsAsync(long shopId)
    {
        var list = new List<(long, int)>();
        await using var cmd = app.Db.CreateCommand("SELECT customer_id, model_version FROM churn_scores WHERE shop_id = $1");
        cmd.Parameters.AddWithValue(shopId);
        await using var r = await cmd.ExecuteReaderAsync();
        while (await r.ReadAsync()) list.Add((r.GetInt64(0), r.GetInt32(1)));
        return list;
    }
}
