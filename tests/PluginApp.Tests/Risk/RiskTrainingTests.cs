using System.Globalization;
using System.Net;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using PluginApp.Risk;
using PluginApp.Tests.Infrastructure;
using PluginApp.Training;

namespace PluginApp.Tests.Risk;

/// <summary>The store's own fraud model: trained only with enough labels, gated on the rule prior, blended into scores.</summary>
public sealed class RiskTrainingTests(AppFixture app) : IClassFixture<AppFixture>
{
    private Task<long> LabelledStoreAsync(string shop, long firstId, int days = 200, int fraudEvery = 12) =>
        RiskOrders.LabelledStoreAsync(app, shop, firstId, days, fraudEvery);

    private Task<(int Version, bool Activated)> TrainAsync(string shop) =>
        app.Factory.Services.GetRequiredService<TrainingService>().TrainAsync(shop, RiskTrainer.Kind, "test", CancellationToken.None);

    [Fact]
    public async Task FewFraudLabels_TrainingIsSkippedWithTheReason_AndOrdersKeepTheRulePrior()
    {
        const string shop = "risk-few-labels.myshopify.com";
        var shopId = await LabelledStoreAsync(shop, 810_000, days: 100); // 17 fraud orders among the first 40 days, the ones old enough

        var (version, activated) = await TrainAsync(shop);

        Assert.Equal((0, false), (version, activated));
        var run = await app.ScalarAsync("SELECT state || ': ' || error FROM training_runs WHERE shop_id = $1 AND kind = 'risk'", shopId);
        Assert.Equal("skipped: 17 confirmed fraud orders older than 60 days, 30 needed; the rule prior scores orders until then", run);
        Assert.Equal(0L, await app.ScalarAsync("SELECT count(*) FROM models WHERE shop_id = $1 AND kind = 'risk'", shopId));
    }

    [Fact]
    public async Task DisputeLabelArrivingAfterATrainingRun_IsUsedByTheNextRun()
    {
        const string shop = "risk-late-dispute.myshopify.com";
        var shopId = await LabelledStoreAsync(shop, 815_000, days: 100); // 17 fraud orders old enough, as above
        await TrainAsync(shop);
        Assert.Equal("17 confirmed", await LastSkipAsync(shopId));

        // An old order no source called fraud until its chargeback arrives, ten days after the order.
        var at = app.Clock.GetUtcNow().AddDays(-100).AddHours(24.0 / 5);
        var dispute = new System.Text.Json.Nodes.JsonObject
        {
            ["id"] = 815_001, ["order_id"] = 815_001, ["type"] = "chargeback", ["amount"] = "30.00", ["currency"] = "USD", ["reason"] = "fraudulent",
            ["status"] = "needs_response", ["initiated_at"] = at.AddDays(10).ToString("O", CultureInfo.InvariantCulture), ["finalized_on"] = null,
        };
        Assert.Equal(HttpStatusCode.OK, (await app.SendWebhookAsync("disputes/create", shop, dispute.ToJsonString())).StatusCode);
        await TrainAsync(shop);

        Assert.Equal("18 confirmed", await LastSkipAsync(shopId));
    }

    private async Task<string?> LastSkipAsync(long shopId) =>
        ((string?)await app.ScalarAsync("SELECT error FROM training_runs WHERE shop_id = $1 AND kind = 'risk' ORDER BY id DESC LIMIT 1", shopId))?
            .Split(" fraud orders")[0];

    /// <summary>
    /// The risk model learns only from orders old enough to have their labels (60 days), so its data end 60 days back; the
    /// orders since are not new to it. Retraining on new orders waits, as for every kind, for orders placed after the last
    /// training, instead of training the store's risk model again every ten minutes; and a store whose training was
    /// skipped for too few labels is not tried again until it has that many new orders (the nightly run tries it anyway).
    /// </summary>
    [Fact]
    public async Task RetrainingOnNewOrders_CountsOrdersPlacedSinceTheLastTraining_NotTheOrdersTooYoungToLearnFrom()
    {
        const string trained = "risk-retrain.myshopify.com", skipped = "risk-retrain-skipped.myshopify.com";
        var shopId = await LabelledStoreAsync(trained, 825_000); // 1,000 orders over 200 days: 300 in the last 60
        Assert.Equal((1, true), await TrainAsync(trained));
        await LabelledStoreAsync(skipped, 827_000, days: 100); // too few fraud labels old enough: skipped
        Assert.Equal((0, false), await TrainAsync(skipped));
        var (job, queued) = RecordingJobs.NewOrdersTraining(app, retrainAfterNewOrders: 200);

        await job.RunAsync(CancellationToken.None);
        Assert.DoesNotContain((trained, RiskTrainer.Kind), queued.Trainings);
        Assert.DoesNotContain((skipped, RiskTrainer.Kind), queued.Trainings);

        // 200 orders placed after the training: now it trains again.
        await app.ScalarAsync("""
            INSERT INTO orders (shop_id, id, email, currency, total_price, created_at, updated_at)
            SELECT $1, 826000 + i, 'later' || i || '@example.com', 'USD', 30, $2 + i * interval '1 minute', $2 + i * interval '1 minute'
            FROM generate_series(1, 200) i
            """, shopId, app.Clock.GetUtcNow());
        await job.RunAsync(CancellationToken.None);
        Assert.Contains((trained, RiskTrainer.Kind), queued.Trainings);
        Assert.DoesNotContain((skipped, RiskTrainer.Kind), queued.Trainings);

        // The next check, before that training started, queues it again; the two run one after the other, and only the first
        // trains (until 5 Dec 2026 each trained in full).
        await job.RunAsync(CancellationToken.None);
        Assert.Equal(2, queued.Trainings.Count(t => t == (trained, RiskTrainer.Kind)));
        var runs = await app.CountAsync("SELECT count(*) FROM training_runs WHERE shop_id = $1 AND kind = 'risk'", shopId);
        app.Clock.Advance(TimeSpan.FromHours(4)); // the trainings start after the 200 orders
        var training = ActivatorUtilities.CreateInstance<TrainingJob>(app.Factory.Services);
        await training.RunAsync(trained, RiskTrainer.Kind, TrainingScheduler.NewOrders, CancellationToken.None);
        await training.RunAsync(trained, RiskTrainer.Kind, TrainingScheduler.NewOrders, CancellationToken.None);
        Assert.Equal(runs + 1, await app.CountAsync("SELECT count(*) FROM training_runs WHERE shop_id = $1 AND kind = 'risk'", shopId));
    }

    /// <summary>
    /// The risk model cut off by its breaker, then a new version trained and made active: the scorer asks the new version at
    /// once, and the governance events say the cut-off ended. Until 6 Dec 2026 only the recommender's breaker was reset, so
    /// the rule prior scored a store's orders for the rest of the old version's rest (up to an hour) while the governance
    /// page said the new version answered.
    /// </summary>
    [Fact]
    public async Task ANewVersion_EndsTheCutOff_AndTheScorerAsksTheModelAgain()
    {
        const string shop = "risk-breaker-reset.myshopify.com";
        var shopId = await LabelledStoreAsync(shop, 840_000);
        var breakers = app.Factory.Services.GetRequiredService<PluginApp.Governance.ModelBreakers>();
        for (var i = 0; i < 3; i++) breakers.Failure(shopId, RiskTrainer.Kind, "the model could not be read");
        Assert.False(breakers.Allows(shopId, RiskTrainer.Kind));

        Assert.True((await TrainAsync(shop)).Activated);

        Assert.False(breakers.State(shopId, RiskTrainer.Kind).Open);
        Assert.True(breakers.Allows(shopId, RiskTrainer.Kind));
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (await app.CountAsync("SELECT count(*) FROM governance_events WHERE shop_id = $1 AND model_kind = 'risk' AND event = 'restored'", shopId) == 0)
        {
            Assert.True(DateTime.UtcNow < deadline, "no restored event within 10 s");
            await Task.Delay(50);
        }
    }

    [Fact]
    public async Task EnoughLabels_TheStoresModelBeatsThePriorOnLaterOrders_AndNewOrdersAreScoredWithItsVersionAndReasons()
    {
        const string shop = "risk-model.myshopify.com";
        var shopId = await LabelledStoreAsync(shop, 820_000);

        var (version, activated) = await TrainAsync(shop);

        Assert.True(activated, (string?)await app.ScalarAsync("SELECT status_reason FROM models WHERE shop_id = $1 AND kind = 'risk'", shopId));
        var metrics = JsonDocument.Parse((string)(await app.ScalarAsync("SELECT metrics::text FROM models WHERE shop_id = $1 AND kind = 'risk'", shopId))!).RootElement;
        Assert.True(metrics.GetProperty("PrAuc").GetDouble() >= metrics.GetProperty("PriorPrAuc").GetDouble(), metrics.ToString());
        Assert.True(metrics.GetProperty("TestFraud").GetInt32() >= RiskTrainer.MinHeldOutFraud);
        // The figures of the score orders are given (model and prior blended at the weight chosen on the training orders'
        // latest quarter) beside the model's own, and the evidence weight the choice replaced.
        var evidence = metrics.GetProperty("TrainFraud").GetDouble() / (metrics.GetProperty("TrainFraud").GetDouble() + RiskModels.EvidenceHalf);
        Assert.Equal(evidence, metrics.GetProperty("EvidenceWeight").GetDouble(), 9);
        Assert.StartsWith("the latest quarter of the training orders", metrics.GetProperty("WeightChosenOn").GetString());
        var weight = metrics.GetProperty("ModelWeight").GetDouble();
        Assert.InRange(weight, 0, 1);
        Assert.InRange(metrics.GetProperty("ServedPrAuc").GetDouble(), 0.01, 1);
        Assert.InRange(metrics.GetProperty("ServedRocAuc").GetDouble(), 0.5, 1);
        Assert.InRange(metrics.GetProperty("ServedBrier").GetDouble(), 0, 0.25);

        // A new order like the fraud: scored with the model's version, the model counted at its registered weight, its reasons in words.
        var order = ShopifyPayloads.Order(829_999, customerId: null, lines: 1);
        order["created_at"] = app.Clock.GetUtcNow().ToString("O", CultureInfo.InvariantCulture);
        order["processed_at"] = order["created_at"]!.DeepClone();
        order["total_price"] = "99.00";
        order["email"] = "f77@mail.example";
        order["client_details"]!["browser_ip"] = "192.0.2.1";
        order["billing_address"]!["country_code"] = "US";
        order["shipping_address"]!["country_code"] = "US";
        order["discount_codes"] = new System.Text.Json.Nodes.JsonArray(new System.Text.Json.Nodes.JsonObject { ["code"] = "SAVE50", ["amount"] = "10.00", ["type"] = "fixed_amount" });
        Assert.Equal(HttpStatusCode.OK, (await app.SendWebhookAsync("orders/create", shop, order.ToJsonString())).StatusCode);
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (await app.ScalarAsync("SELECT model_version FROM risk_scores WHERE shop_id = $1 AND order_id = 829999", shopId) is not int scoredWith)
        {
            if (DateTime.UtcNow > deadline) Assert.Fail("the order was not scored within 20 s");
            await Task.Delay(100);
        }
        Assert.Equal(version, await app.ScalarAsync("SELECT model_version FROM risk_scores WHERE shop_id = $1 AND order_id = 829999", shopId));
        Assert.Equal("HIGH", await app.ScalarAsync("SELECT level FROM risk_scores WHERE shop_id = $1 AND order_id = 829999", shopId));
        var priorWeight = (double)(await app.ScalarAsync("SELECT prior_weight FROM risk_scores WHERE shop_id = $1 AND order_id = 829999", shopId))!;
        Assert.Equal(1 - weight, priorWeight, 6); // the registered weight scores, not the evidence weight
        var reasons = (string)(await app.ScalarAsync("SELECT reasons::text FROM risk_scores WHERE shop_id = $1 AND order_id = 829999", shopId))!;
        Assert.Contains("The store's fraud model weighs", reasons);
    }

    /// <summary>
    /// Orders whose customer was erased are not learnt from: their email, address and card are gone, so their features,
    /// rebuilt, are not what they were scored with. Until 5 Dec 2026 they were trained on, identity features at 0.
    /// </summary>
    [Fact]
    public async Task ErasedCustomersOrders_AreLeftOutOfTraining()
    {
        const string shop = "risk-erased-training.myshopify.com";
        var shopId = await LabelledStoreAsync(shop, 880_000);
        await app.ScalarAsync("UPDATE orders SET email = NULL, browser_ip = NULL, redacted_at = now() WHERE shop_id = $1 AND id % 10 = 3", shopId);
        await TrainAsync(shop);

        var metrics = JsonDocument.Parse((string)(await app.ScalarAsync("SELECT metrics::text FROM models WHERE shop_id = $1 AND kind = 'risk'", shopId))!).RootElement;
        var learnt = metrics.GetProperty("TrainOrders").GetInt32() + metrics.GetProperty("TestOrders").GetInt32();
        var old = app.Factory.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<RiskOptions>>().Value.LabelMaturity;
        // As the trainer judges a store: on its own timeline, from its newest order.
        Assert.Equal(await app.CountAsync("""
            SELECT count(*) FROM orders WHERE shop_id = $1 AND redacted_at IS NULL
              AND created_at <= (SELECT max(created_at) FROM orders WHERE shop_id = $1) - $2::interval
            """, shopId, old), learnt);
    }

    /// <summary>
    /// Orders imported from the store's old platform (placed a year before Shopify created them) are not learnt from: their
    /// features are taken on the import's day, where their windows are empty. Until 8 Dec 2026 they were trained on.
    /// </summary>
    [Fact]
    public async Task ImportedOrders_AreLeftOutOfTraining()
    {
        const string shop = "risk-imported-training.myshopify.com";
        var shopId = await LabelledStoreAsync(shop, 884_000);
        await app.ScalarAsync("UPDATE orders SET processed_at = created_at - interval '400 days' WHERE shop_id = $1 AND id % 10 = 4", shopId);
        await TrainAsync(shop);

        var metrics = JsonDocument.Parse((string)(await app.ScalarAsync("SELECT metrics::text FROM models WHERE shop_id = $1 AND kind = 'risk'", shopId))!).RootElement;
        var learnt = metrics.GetProperty("TrainOrders").GetInt32() + metrics.GetProperty("TestOrders").GetInt32();
        var old = app.Factory.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<RiskOptions>>().Value.LabelMaturity;
        Assert.Equal(await app.CountAsync("""
            SELECT count(*) FROM orders WHERE shop_id = $1 AND id % 10 <> 4
              AND created_at <= (SELECT max(created_at) FROM orders WHERE shop_id = $1) - $2::interval
            """, shopId, old), learnt);
    }

    /// <summary>
    /// A new version whose model leads the rule prior by more than the active one's, but whose own evidence weighed little
    /// (few frauds in its latest quarter, so its score is mostly the prior's), serves orders a worse score: it waits as a
    /// candidate, judged on the score orders are given. Until 8 Dec 2026 the gate judged the model alone and promoted it.
    /// </summary>
    [Fact]
    public async Task AVersionWhoseServedScoreIsWorse_WaitsThoughItsModelLeadsThePriorByMore()
    {
        var shopId = await app.InstallShopAsync("risk-gate-served.myshopify.com");
        var registry = app.Factory.Services.GetRequiredService<ModelRegistry>();
        var active = new RiskTrainer.RiskMetrics(PrAuc: 0.53, RocAuc: 0.85, PriorPrAuc: 0.30, PriorRocAuc: 0.8, Brier: 0.05, TrainOrders: 2000,
            TrainFraud: 120, TestOrders: 500, TestFraud: 30, Split: "test", Learner: "LightGbm", ServedPrAuc: 0.53, ModelWeight: 1.0);
        Assert.True((await registry.RegisterAsync(shopId, RiskTrainer.Registration, new TrainedModel([1], new { }, active, 2500, null, null), CancellationToken.None)).Activated);
        var thin = active with { PrAuc = 0.60, ServedPrAuc = 0.32, ModelWeight = 0.38 };

        var (_, activated, reason) = await registry.RegisterAsync(shopId, RiskTrainer.Registration, new TrainedModel([2], new { }, thin, 2600, null, null), CancellationToken.None);

        Assert.False(activated);
        Assert.StartsWith("held-out PR-AUC 0.3200 is +0.0200 against the rule prior on the same orders", reason);
        Assert.Equal(1, (await registry.LoadActiveAsync(shopId, RiskTrainer.Kind, CancellationToken.None))!.Value.Version);
    }

    [Fact]
    public async Task ModelWorseThanTheRulePrior_IsKeptAsACandidateWithTheReason()
    {
        var shopId = await app.InstallShopAsync("risk-gate.myshopify.com");
        var registry = app.Factory.Services.GetRequiredService<ModelRegistry>();
        var metrics = new RiskTrainer.RiskMetrics(PrAuc: 0.31, RocAuc: 0.8, PriorPrAuc: 0.42, PriorRocAuc: 0.85, Brier: 0.05, TrainOrders: 800,
            TrainFraud: 60, TestOrders: 200, TestFraud: 15, Split: "test", Learner: "LogisticRegression", ServedPrAuc: 0.31);

        var (_, activated, reason) = await registry.RegisterAsync(shopId, RiskTrainer.Registration,
            new TrainedModel([1, 2, 3], new { }, metrics, 1000, null, null), CancellationToken.None);

        Assert.False(activated);
        Assert.Equal("held-out PR-AUC 0.3100 is below the baseline's 0.4200 (the rule prior on the same orders)", reason);
        Assert.Null(await registry.LoadActiveAsync(shopId, RiskTrainer.Kind, CancellationToken.None));

        // Nor can the merchant promote it through the API: the rule prior goes on scoring (until 5 Dec 2026 a promotion
        // skipped this check, and with no active version to compare with it was made active as "first model").
        var promote = app.AdminGet("/api/admin/models/promote?kind=risk&version=1", "risk-gate.myshopify.com");
        promote.Method = HttpMethod.Post;
        var response = await app.Client.SendAsync(promote);
        Assert.NotEqual(HttpStatusCode.OK, response.StatusCode);
        Assert.Contains("is below the baseline's 0.4200", await response.Content.ReadAsStringAsync());
        Assert.Null(await registry.LoadActiveAsync(shopId, RiskTrainer.Kind, CancellationToken.None));

        // A version measured before the served figure was stored (5 Dec 2026) is judged by the model's own: still refused.
        var legacyShop = await app.InstallShopAsync("risk-gate-legacy.myshopify.com");
        var (_, legacyActivated, legacyReason) = await registry.RegisterAsync(legacyShop, RiskTrainer.Registration,
            new TrainedModel([1, 2, 3], new { }, metrics with { ServedPrAuc = null }, 1000, null, null), CancellationToken.None);
        Assert.False(legacyActivated);
        Assert.Equal("held-out PR-AUC 0.3100 is below the baseline's 0.4200 (the rule prior on the same orders)", legacyReason);

        // Such a version set against one with the served figure: the two figures measure different scores, and say so.
        static JsonElement Json(string s) => JsonDocument.Parse(s).RootElement;
        var (passes, why) = PluginApp.Training.PromotionGate.Compare(RiskTrainer.Registration, Json("""{"PrAuc": 0.6, "PriorPrAuc": 0.3}"""),
            Json("""{"PrAuc": 0.5, "ServedPrAuc": 0.55, "PriorPrAuc": 0.3}"""));
        Assert.True(passes);
        Assert.StartsWith("its held-out PR-AUC is not comparable: it was measured by the model's own figure", why);
    }
}
