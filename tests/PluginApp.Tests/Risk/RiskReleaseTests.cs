using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using PluginApp.Governance;
using PluginApp.Risk;
using PluginApp.Tests.Governance;
using PluginApp.Tests.Infrastructure;
using PluginApp.Training;

namespace PluginApp.Tests.Risk;

/// <summary>Order risk goes through the same shadow and canary releases as the recommender, with its own guardrail.</summary>
public sealed class RiskReleaseTests(ReleaseFixture app) : IClassFixture<ReleaseFixture>
{
    private const string Kind = RiskTrainer.Kind;

    private Task<(int Version, bool Activated)> TrainAsync(string shop) =>
        app.Factory.Services.GetRequiredService<TrainingService>().TrainAsync(shop, Kind, "test", CancellationToken.None);

    private async Task StageAsync(string shop, int shadow, double share, int canary)
    {
        var req = new HttpRequestMessage(HttpMethod.Put, $"/api/admin/releases/{Kind}/settings")
        {
            Content = JsonContent.Create(new { staged = true, shadowDecisions = shadow, canaryShare = share, canaryDecisions = canary }),
        };
        req.Headers.Authorization = app.AdminGet("/", shop).Headers.Authorization;
        Assert.Equal(HttpStatusCode.OK, (await app.Client.SendAsync(req)).StatusCode);
    }

    private Task<object?> StatusAsync(long shopId, int version) =>
        app.ScalarAsync("SELECT status FROM models WHERE shop_id = $1 AND kind = $2 AND version = $3", shopId, Kind, version);

    /// <summary>A store with its first risk model active and a second, trained on the same history, in shadow.</summary>
    private async Task<long> StoreWithReleaseAsync(string shop, long firstId, int shadow, double share)
    {
        var shopId = await RiskOrders.LabelledStoreAsync(app, shop, firstId);
        Assert.Equal((1, true), await TrainAsync(shop));
        await StageAsync(shop, shadow, share, canary: 1000);
        Assert.Equal((2, false), await TrainAsync(shop));
        Assert.Equal("shadow", await StatusAsync(shopId, 2));
        return shopId;
    }

    /// <summary>An ordinary new order (a usual total, a fresh address), sent as Shopify would, and its score once recorded.</summary>
    private async Task<(int? Version, string Level)> ScoreAsync(string shop, long shopId, long orderId)
    {
        var order = RiskOrders.Order(orderId, app.Clock.GetUtcNow(), 30m, $"203.0.113.{orderId % 250}", $"new{orderId}@example.com", customer: null);
        Assert.Equal(HttpStatusCode.OK, (await app.SendWebhookAsync("orders/create", shop, order.ToJsonString())).StatusCode);
        var deadline = DateTime.UtcNow.AddSeconds(30);
        string? level;
        while ((level = await app.ScalarAsync("SELECT level FROM risk_scores WHERE shop_id = $1 AND order_id = $2", shopId, orderId) as string) is null)
        {
            if (DateTime.UtcNow > deadline) Assert.Fail($"order {orderId} was not scored within 30 s");
            await Task.Delay(100);
        }
        return ((int?)await app.ScalarAsync("SELECT model_version FROM risk_scores WHERE shop_id = $1 AND order_id = $2", shopId, orderId), level);
    }

    private async Task<(int? Version, JsonElement Output, JsonElement? Shadow)> DecisionAsync(long shopId, long orderId)
    {
        await using var cmd = app.Db.CreateCommand("SELECT model_version, output::text, shadow::text FROM decisions WHERE shop_id = $1 AND kind = 'risk' AND order_id = $2");
        cmd.Parameters.AddWithValue(shopId);
        cmd.Parameters.AddWithValue(orderId);
        await using var r = await cmd.ExecuteReaderAsync();
        Assert.True(await r.ReadAsync(), $"no risk decision for order {orderId}");
        var result = (r.IsDBNull(0) ? (int?)null : r.GetInt32(0), JsonDocument.Parse(r.GetString(1)).RootElement,
            r.IsDBNull(2) ? (JsonElement?)null : JsonDocument.Parse(r.GetString(2)).RootElement);
        Assert.False(await r.ReadAsync(), $"order {orderId} has more than one risk decision");
        return result;
    }

    private static IEnumerable<long> Orders(long shopId, long from, RiskRelease canary, bool inCanary) =>
        Enumerable.Range(0, 1000).Select(i => from + i).Where(id => canary.Answers(shopId, id) == inCanary);

    [Fact]
    public async Task Shadow_TheCandidateScoresTheSameOrders_ButTheServedScoreAndShopifyKeepTheActiveVersions()
    {
        const string shop = "risk-release-shadow.myshopify.com";
        var shopId = await StoreWithReleaseAsync(shop, 860_000, shadow: 1000, share: 0.5);
        var staged = (string)(await app.ScalarAsync("SELECT status_reason FROM models WHERE shop_id = $1 AND kind = 'risk' AND version = 2", shopId))!;
        Assert.True(staged.Contains("% of orders for 1000 decisions"), staged);

        foreach (var id in new long[] { 861_001, 861_002, 861_003 })
        {
            var (version, level) = await ScoreAsync(shop, shopId, id);
            Assert.Equal(1, version);
            var (decided, output, shadow) = await DecisionAsync(shopId, id);
            Assert.Equal(1, decided);
            Assert.Equal(level, output.GetProperty("level").GetString());
            Assert.False(output.TryGetProperty("release", out _));
            Assert.Equal(2, shadow!.Value.GetProperty("version").GetInt32());
            Assert.Contains(shadow.Value.GetProperty("subject").GetString(), new[] { "LOW", "MEDIUM", "HIGH" });
            Assert.InRange(shadow.Value.GetProperty("score").GetDouble(), 0, 1);
        }

        var releases = await (await app.Client.SendAsync(Get("/api/admin/releases", shop))).Content.ReadFromJsonAsync<JsonElement>();
        var risk = releases.EnumerateArray().Single(k => k.GetProperty("kind").GetString() == Kind);
        Assert.Equal("orders", risk.GetProperty("unit").GetString());
        var release = risk.GetProperty("release");
        Assert.Equal("shadow", release.GetProperty("stage").GetString());
        Assert.Equal(3, release.GetProperty("decisions").GetInt64());
        Assert.Equal(3, release.GetProperty("compared").GetInt64());
        Assert.InRange(release.GetProperty("agreement").GetDouble(), 0, 1);
    }

    [Fact]
    public async Task Canary_ScoresItsShareOfOrders_AndIsRolledBackWhenItFlagsFarMoreOrdersForReview()
    {
        const string shop = "risk-release-canary.myshopify.com";
        var shopId = await StoreWithReleaseAsync(shop, 870_000, shadow: 1, share: 0.5);
        await ScoreAsync(shop, shopId, 871_000);
        var releases = app.Factory.Services.GetRequiredService<StagedReleases>();
        await releases.RunShopAsync(shopId, CancellationToken.None);
        Assert.Equal("canary", await StatusAsync(shopId, 2));
        var started = (string?)await app.ScalarAsync("SELECT string_agg(event || ': ' || detail, ' | ') FROM governance_events WHERE shop_id = $1 AND model_kind = 'risk'", shopId);
        Assert.True(started?.Contains("canary_started: version 2: after 1 shadow decisions") == true && started.Contains("of orders (each kept on one version by a hash)"), started);

        // Orders in the canary's share are scored by version 2, in Shopify and in the log; the others by version 1.
        var canary = new RiskRelease(2, "canary", 0.5, null, null);
        foreach (var id in Orders(shopId, 872_000, canary, inCanary: true).Take(2))
        {
            Assert.Equal(2, (await ScoreAsync(shop, shopId, id)).Version);
            var (decided, output, shadow) = await DecisionAsync(shopId, id);
            Assert.Equal(2, decided);
            Assert.Equal("canary", output.GetProperty("release").GetString());
            Assert.Equal(2, output.GetProperty("candidate").GetInt32());
            Assert.Null(shadow);
        }
        foreach (var id in Orders(shopId, 872_000, canary, inCanary: false).Take(2))
        {
            Assert.Equal(1, (await ScoreAsync(shop, shopId, id)).Version);
            Assert.False((await DecisionAsync(shopId, id)).Output.TryGetProperty("release", out _));
        }
        await releases.RunShopAsync(shopId, CancellationToken.None);
        // Too few orders to read its flag rate yet. Why the events in the message: this once failed in a full run (4 Dec 2026),
        // and the status alone did not say why the release ended. The cause that fits: the app's check for new orders, every
        // ten minutes by the wall clock, counted this store's orders too young to learn from as new, trained its risk model
        // again, and the new version replaced the canary (fixed since; RiskTrainingTests).
        Assert.True("canary".Equals(await StatusAsync(shopId, 2)), (string?)await app.ScalarAsync(
            "SELECT string_agg(event || ': ' || detail, ' | ' ORDER BY at) FROM governance_events WHERE shop_id = $1 AND model_kind = 'risk'", shopId));

        // Then the canary sends most of its orders to review while the others flag almost none.
        var now = app.Clock.GetUtcNow();
        for (var i = 0; i < 8; i++)
        {
            await app.LogDecisionAsync(new Decision(DecisionKinds.Risk, $"risk:canary-flood:{i}", shopId, now, "model")
            {
                Subject = i < 6 ? "HIGH" : "LOW", ModelKind = Kind, ModelVersion = 2, OrderId = 873_000 + i,
                Output = $$"""{"release":"canary","candidate":2,"level":"{{(i < 6 ? "HIGH" : "LOW")}}"}""",
            });
            await app.LogDecisionAsync(new Decision(DecisionKinds.Risk, $"risk:others:{i}", shopId, now, "model")
            {
                Subject = "LOW", ModelKind = Kind, ModelVersion = 1, OrderId = 874_000 + i, Output = """{"level":"LOW"}""",
            });
        }
        await releases.RunShopAsync(shopId, CancellationToken.None);

        Assert.Equal("candidate", await StatusAsync(shopId, 2));
        Assert.Equal("active", await StatusAsync(shopId, 1));
        var reason = (string)(await app.ScalarAsync("SELECT status_reason FROM models WHERE shop_id = $1 AND kind = 'risk' AND version = 2", shopId))!;
        Assert.StartsWith("rolled back automatically:", reason);
        Assert.Contains("of its orders flagged for review", reason);
        Assert.Contains("the review queue would fill", reason);
        Assert.Equal(1, await app.CountAsync(
            "SELECT count(*) FROM governance_events WHERE shop_id = $1 AND model_kind = 'risk' AND event = 'canary_rolled_back' AND by_whom = 'the release guardrail'", shopId));
        var after = Orders(shopId, 875_000, canary, inCanary: true).First();
        Assert.Equal(1, (await ScoreAsync(shop, shopId, after)).Version);
    }

    /// <summary>
    /// A version in release is left to finish: the nightly training and the new-orders check skip the kind, the run saying
    /// why, instead of replacing it with a version whose shadow and canary start again (a store that makes fewer decisions a
    /// day than a release needs never finished one). The merchant's Train now still replaces it.
    /// </summary>
    [Fact]
    public async Task TrainingsByTheClock_LeaveTheVersionInReleaseToFinish_WhileTrainNowReplacesIt()
    {
        const string shop = "risk-release-nightly.myshopify.com";
        var shopId = await StoreWithReleaseAsync(shop, 880_000, shadow: 1000, share: 0.5);
        var training = app.Factory.Services.GetRequiredService<TrainingService>();

        foreach (var trigger in new[] { TrainingScheduler.Nightly, TrainingScheduler.NewOrders })
        {
            Assert.Equal((0, false), await training.TrainAsync(shop, Kind, trigger, CancellationToken.None));
            Assert.Equal($"skipped: version 2 is in shadow: a {trigger} training waits until its release ends (training on demand replaces it)",
                await app.ScalarAsync("SELECT state || ': ' || error FROM training_runs WHERE shop_id = $1 AND kind = $2 ORDER BY id DESC LIMIT 1", shopId, Kind));
        }
        Assert.Equal("shadow", await StatusAsync(shopId, 2));
        Assert.Null(await StatusAsync(shopId, 3));

        Assert.Equal((3, false), await training.TrainAsync(shop, Kind, "on demand", CancellationToken.None));
        Assert.Equal("candidate", await StatusAsync(shopId, 2));
        Assert.Equal("shadow", await StatusAsync(shopId, 3));
    }

    private HttpRequestMessage Get(string path, string shop)
    {
        var req = new HttpRequestMessage(HttpMethod.Get, path);
        req.Headers.Authorization = app.AdminGet("/", shop).Headers.Authorization;
        return req;
    }
}
