using System.Globalization;
using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using PluginApp.Ml.Tabular;
using PluginApp.Risk;
using PluginApp.Tests.Infrastructure;

namespace PluginApp.Tests.Risk;

/// <summary>Orders scored off the webhook path by the rule prior, with reasons, written to Shopify once.</summary>
public sealed class RiskScoringTests(AppFixture app) : IClassFixture<AppFixture>
{
    /// <summary>A store with 40 days of ordinary orders (25 to 31 each) from ten returning customers, each from their own address.</summary>
    private async Task<long> OrdinaryStoreAsync(string shop, long firstId)
    {
        var shopId = await app.InstallShopAsync(shop);
        var now = app.Clock.GetUtcNow();
        for (var i = 0; i < 40; i++)
        {
            var customer = 50_000 + firstId + i % 10;
            await SendAsync(shop, "orders/create", RiskOrders.Order(firstId + i, now.AddDays(-40 + i).AddHours(-1), 25 + i % 7, $"198.51.100.{i % 10}",
                $"regular{customer}@example.com", customer));
        }
        await WaitForAsync(shopId, "SELECT count(*) = 40 FROM risk_scores WHERE shop_id = $1");
        return shopId;
    }

    private async Task SendAsync(string shop, string topic, JsonObject body)
    {
        var response = await app.SendWebhookAsync(topic, shop, body.ToJsonString());
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"{topic} answered {(int)response.StatusCode}");
    }

    private async Task WaitForAsync(long shopId, string condition, long? orderId = null)
    {
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (true)
        {
            var ok = orderId is null ? await app.ScalarAsync(condition, shopId) : await app.ScalarAsync(condition, shopId, orderId.Value);
            if (ok is true) return;
            if (DateTime.UtcNow > deadline) Assert.Fail($"not within 20 s: {condition}");
            await Task.Delay(100);
        }
    }

    private async Task<(string Level, double Score, JsonElement Reasons, JsonElement Features)> ScoreOfAsync(long shopId, long orderId)
    {
        await WaitForAsync(shopId, "SELECT EXISTS (SELECT 1 FROM risk_scores WHERE shop_id = $1 AND order_id = $2)", orderId);
        await using var cmd = app.Db.CreateCommand("SELECT level, score, reasons::text, features::text FROM risk_scores WHERE shop_id = $1 AND order_id = $2");
        cmd.Parameters.AddWithValue(shopId);
        cmd.Parameters.AddWithValue(orderId);
        await using var r = await cmd.ExecuteReaderAsync();
        Assert.True(await r.ReadAsync());
        return (r.GetString(0), r.GetDouble(1), JsonDocument.Parse(r.GetString(2)).RootElement.Clone(), JsonDocument.Parse(r.GetString(3)).RootElement.Clone());
    }

    private static List<string> Codes(JsonElement reasons) => reasons.EnumerateArray().Select(r => r.GetProperty("code").GetString()!).ToList();

    [Theory]
    [InlineData(3.46f, "EUR", 480f, "The total, EUR 480.00, is 3.5 standard deviations above this store's usual order")]
    [InlineData(307.7f, "EUR", 480f, "The total, EUR 480.00, is more than 10 standard deviations above this store's usual order")]
    // In the currency's own decimals: until 5 Dec 2026 "JPY 48,000.00".
    [InlineData(3.46f, "JPY", 48000f, "The total, JPY 48,000, is 3.5 standard deviations above this store's usual order")]
    public void RulePrior_SaysHowFarAboveTheUsualOrderATotalIs_WithoutFiguresThatReadAsNoise(float z, string currency, float amount, string says)
    {
        var f = new float[PluginApp.Risk.OrderFeatures.Names.Length];
        f[PluginApp.Risk.OrderFeatures.Index("amount_z")] = z;
        f[PluginApp.Risk.OrderFeatures.Index("amount")] = amount;
        var reason = PluginApp.Risk.RulePrior.Assess(f, currency).Reasons.Single(r => r.Code == "amount_high");
        Assert.Equal(says, reason.Text);
    }

    [Fact]
    public async Task SuspiciousFirstOrder_IsScoredWithReasonsInWords_AndShopifyGetsTheAssessmentAndTagOnce()
    {
        const string shop = "risk-first.myshopify.com";
        var shopId = await OrdinaryStoreAsync(shop, 710_000);
        var ordinary = await ScoreOfAsync(shopId, 710_039); // the customer's fourth order in 30 days
        Assert.Equal("LOW", ordinary.Level);
        Assert.Contains("returning_customer", Codes(ordinary.Reasons));

        // A guest's first order, twenty times the usual, shipped abroad.
        var order = RiskOrders.Order(719_001, app.Clock.GetUtcNow(), 640m, "203.0.113.50", "new.buyer@example.net", null, billing: "US", shipping: "NG");
        await SendAsync(shop, "orders/create", order);
        var (level, score, reasons, _) = await ScoreOfAsync(shopId, 719_001);

        Assert.Equal("HIGH", level);
        Assert.True(score >= RiskThresholds.Default.HighFrom);
        Assert.Equal(["amount_high", "first_order_high_value", "country_mismatch"], Codes(reasons).Take(3));
        Assert.Contains("standard deviations above this store's usual order", reasons[0].GetProperty("text").GetString());
        Assert.Equal("The billing country differs from the shipping country", reasons[2].GetProperty("text").GetString());

        // In Shopify: one assessment with the level and the reasons as facts, and our tag.
        var gid = "gid://shopify/Order/719001";
        await WaitUntilAsync(() => app.Shopify.Admin.RiskAssessments(gid).Count == 1 && TagsAdded(gid).Contains("pluginapp:risk-high"));
        var assessment = app.Shopify.Admin.RiskAssessments(gid).Single();
        Assert.Equal("HIGH", assessment["riskLevel"]!.GetValue<string>());
        var facts = assessment["facts"]!.AsArray().Select(f => f!["description"]!.GetValue<string>()).ToList();
        Assert.Equal(reasons.EnumerateArray().Select(r => r.GetProperty("text").GetString()), facts.Take(reasons.GetArrayLength()));
        Assert.All(assessment["facts"]!.AsArray().Take(3), f => Assert.Equal("NEGATIVE", f!["sentiment"]!.GetValue<string>()));

        // The same delivery again, and an update that changes nothing the score used: nothing new anywhere.
        await SendAsync(shop, "orders/create", order);
        var fulfilled = RiskOrders.Order(719_001, app.Clock.GetUtcNow(), 640m, "203.0.113.50", "new.buyer@example.net", null, billing: "US", shipping: "NG");
        fulfilled["updated_at"] = app.Clock.GetUtcNow().AddMinutes(5).ToString("O", CultureInfo.InvariantCulture);
        fulfilled["note"] = "gift wrap";
        await SendAsync(shop, "orders/updated", fulfilled);
        Assert.Equal(0L, await app.ScalarAsync("SELECT count(*) FROM risk_pending WHERE shop_id = $1", shopId));
        await Task.Delay(1500);
        Assert.Single(app.Shopify.Admin.RiskAssessments(gid));
        Assert.Single(TagsAdded(gid), t => t == "pluginapp:risk-high");
    }

    /// <summary>
    /// An order of more than 131,072 (a wholesale or a luxury order; a total in yen or won): its score's amount is a
    /// single-precision feature, a cent or two off the total, and an update that changes nothing the score used still
    /// scores it nothing new. Until 6 Dec 2026 the cents were compared exactly, and each of its updates scored it again.
    /// </summary>
    [Fact]
    public async Task ALargeOrderUpdatedWithNothingTheScoreUsed_IsNotScoredAgain()
    {
        const string shop = "risk-large-total.myshopify.com";
        var shopId = await app.InstallShopAsync(shop);
        var at = app.Clock.GetUtcNow();
        await SendAsync(shop, "orders/create", RiskOrders.Order(738_101, at, 250_000.37m, "203.0.113.80", "wholesale@example.net", null));
        var (_, _, _, features) = await ScoreOfAsync(shopId, 738_101);
        Assert.NotEqual(250_000.37, features.GetProperty("amount").GetDouble()); // what a single-precision amount keeps

        var noted = RiskOrders.Order(738_101, at, 250_000.37m, "203.0.113.80", "wholesale@example.net", null);
        noted["updated_at"] = at.AddMinutes(5).ToString("O", CultureInfo.InvariantCulture);
        noted["note"] = "deliver to the loading dock";
        await SendAsync(shop, "orders/updated", noted);

        Assert.Equal(0L, await app.ScalarAsync("SELECT count(*) FROM risk_pending WHERE shop_id = $1", shopId));
        await Task.Delay(1500);
        Assert.Equal(1L, await app.ScalarAsync("SELECT count(*) FROM decisions WHERE shop_id = $1 AND order_id = 738101 AND kind = 'risk'", shopId));
    }

    /// <summary>
    /// A merchant who switches order risk off to score nothing: the store's new orders are stored but not queued, no scoring
    /// job starts for them (the operator's job list stays quiet) and nothing reaches Shopify; once it is on again, the next
    /// order is scored. The orders placed while it was off stay unscored, as the switch said.
    /// </summary>
    [Fact]
    public async Task SwitchedOffToScoreNothing_OrdersAreStoredButNotQueued_NoScoringJobStarts_AndOnAgainTheNextOrderIsScored()
    {
        const string shop = "risk-off.myshopify.com";
        var shopId = await app.InstallShopAsync(shop);
        Assert.Equal(HttpStatusCode.OK, (await app.SwitchFeatureAsync(shop, RiskScorer.Name, false, RiskScorer.ScoreNothing, "a sale weekend")).StatusCode);
        const string jobs = """
            SELECT count(*) FROM hangfire.job
            WHERE invocationdata->>'Type' LIKE 'PluginApp.Risk.RiskScoringJob,%' AND invocationdata->>'Method' = 'ScoreShopAsync' AND arguments->>0 = $1::text
            """;

        var now = app.Clock.GetUtcNow();
        for (var i = 0; i < 3; i++)
            await SendAsync(shop, "orders/create", RiskOrders.Order(731_001 + i, now.AddMinutes(i), 640m, "203.0.113.70", "off.buyer@example.net", null, shipping: "NG"));
        Assert.Equal(3L, await app.ScalarAsync("SELECT count(*) FROM orders WHERE shop_id = $1", shopId));
        Assert.Equal(0L, await app.ScalarAsync("SELECT count(*) FROM risk_pending WHERE shop_id = $1", shopId));
        // Why a wait: a queued order would have woken the scorer within a second of the commit.
        await Task.Delay(1500);
        Assert.Equal(0L, await app.ScalarAsync(jobs, shopId.ToString(CultureInfo.InvariantCulture)));
        Assert.Equal(0L, await app.ScalarAsync("SELECT count(*) FROM risk_scores WHERE shop_id = $1", shopId));
        Assert.Empty(app.Shopify.Admin.RiskAssessments("gid://shopify/Order/731001"));

        Assert.Equal(HttpStatusCode.OK, (await app.SwitchFeatureAsync(shop, RiskScorer.Name, true)).StatusCode);
        // An order placed while it was off, updated once it is on (its total changed, say): still unscored (until 4 Dec 2026 the
        // update scored it, and at HIGH held it and queued it for review).
        var edited = RiskOrders.Order(731_001, now, 700m, "203.0.113.70", "off.buyer@example.net", null, shipping: "NG");
        edited["updated_at"] = now.AddMinutes(5).ToString("O", CultureInfo.InvariantCulture);
        await SendAsync(shop, "orders/updated", edited);
        Assert.Equal(0L, await app.ScalarAsync("SELECT count(*) FROM risk_pending WHERE shop_id = $1", shopId));
        await SendAsync(shop, "orders/create", RiskOrders.Order(731_010, now.AddMinutes(10), 640m, "203.0.113.70", "off.buyer@example.net", null, shipping: "NG"));
        await ScoreOfAsync(shopId, 731_010);
        // An order placed now whose orders/create never landed (Shopify gave up retrying it): its first update scores it.
        var lost = RiskOrders.Order(731_020, now.AddMinutes(20), 640m, "203.0.113.71", "lost.create@example.net", null, shipping: "NG");
        await SendAsync(shop, "orders/updated", lost);
        await ScoreOfAsync(shopId, 731_020);
        await WaitUntilAsync(() => app.Shopify.Admin.RiskAssessments("gid://shopify/Order/731010").Count == 1);
        Assert.Equal(2L, await app.ScalarAsync("SELECT count(*) FROM risk_scores WHERE shop_id = $1", shopId));
    }

    [Fact]
    public async Task FraudLabel_CountsOnlyForOrdersPlacedAfterItWasKnown_AndAnOrderRebuiltLaterHasTheFeaturesItWasScoredWith()
    {
        const string shop = "risk-labels.myshopify.com";
        var shopId = await OrdinaryStoreAsync(shop, 720_000);
        var now = app.Clock.GetUtcNow();
        const string ip = "192.0.2.66";

        // An order from the address, cancelled for fraud an hour later: the label is known from the cancellation.
        var first = RiskOrders.Order(729_001, now.AddHours(-5), 45m, ip, "one@example.org", null);
        await SendAsync(shop, "orders/create", first);
        var cancelled = RiskOrders.Order(729_001, now.AddHours(-5), 45m, ip, "one@example.org", null);
        cancelled["cancelled_at"] = now.AddHours(-4).ToString("O", CultureInfo.InvariantCulture);
        cancelled["cancel_reason"] = "fraud";
        cancelled["updated_at"] = now.AddHours(-4).ToString("O", CultureInfo.InvariantCulture);
        await SendAsync(shop, "orders/cancelled", cancelled);
        Assert.Equal(1L, await app.ScalarAsync("SELECT count(*) FROM risk_labels WHERE shop_id = $1 AND order_id = 729001 AND fraud AND source = 'cancelled'", shopId));

        // Placed before the cancellation: the label did not exist yet, so it must not count (nothing from the future).
        await SendAsync(shop, "orders/create", RiskOrders.Order(729_002, now.AddHours(-4.5), 38m, ip, "two@example.org", null));
        var before = await ScoreOfAsync(shopId, 729_002);
        Assert.Equal(0, before.Features.GetProperty("ip_fraud_share_30d").GetDouble());
        Assert.DoesNotContain("ip_fraud_history", Codes(before.Reasons));

        // Placed after it: the address's confirmed fraud is the main reason, and a prior-only store says HIGH.
        await SendAsync(shop, "orders/create", RiskOrders.Order(729_003, now.AddHours(-1), 52m, ip, "three@example.org", null));
        var after = await ScoreOfAsync(shopId, 729_003);
        Assert.Equal(1, after.Features.GetProperty("ip_fraud_share_30d").GetDouble());
        Assert.Equal("ip_fraud_history", Codes(after.Reasons)[0]);
        Assert.Equal("100% of the labelled orders from this browser address in the last 30 days were confirmed fraud", after.Reasons[0].GetProperty("text").GetString());
        Assert.Equal("HIGH", after.Level);

        // Later orders and labels arrive; rebuilding the earlier orders' features for training gives what they were scored with.
        await SendAsync(shop, "orders/create", RiskOrders.Order(729_004, now.AddMinutes(-10), 61m, ip, "two@example.org", null));
        await using (var label = app.Db.CreateCommand("INSERT INTO risk_labels (shop_id, order_id, source, fraud, labelled_at) VALUES ($1, 729002, 'review', true, $2)"))
        {
            label.Parameters.AddWithValue(shopId);
            label.Parameters.AddWithValue(now.AddMinutes(-5));
            await label.ExecuteNonQueryAsync();
        }
        await ScoreOfAsync(shopId, 729_004);
        await using var conn = await app.Db.OpenConnectionAsync();
        var rebuilt = await OrderFeatures.BuildAsync(conn, shopId, [729_002, 729_003], CancellationToken.None);
        foreach (var (id, stored) in new[] { (729_002L, before.Features), (729_003L, after.Features) })
            Assert.Equal(OrderFeatures.Names.Select(n => stored.GetProperty(n).GetSingle()), rebuilt[id]);
    }

    /// <summary>
    /// A store's first busy day: its orders arrived after PostgreSQL last analyzed the table, whose statistics still say the
    /// store has none. Scoring a batch must look its orders up by id, for their features and for the store's usual order on
    /// their days, not walk every order of the store (6,000 rows read for 300 orders, and more with every order of the day).
    /// </summary>
    [Fact]
    public async Task Features_OfAStoreWhoseOrdersCameAfterTheLastAnalyze_ReadTheBatchsOrdersByTheirIds()
    {
        var older = await app.InstallShopAsync("risk-older-store.myshopify.com");
        var shopId = await app.InstallShopAsync("risk-first-sale.myshopify.com");
        var now = app.Clock.GetUtcNow();
        // The deployment's older store: most of the table, and all the statistics know of it.
        await using (var fill = app.Db.CreateCommand("""
            INSERT INTO orders (shop_id, id, email, currency, total_price, browser_ip, created_at, updated_at)
            SELECT $1, 951000000 + i, 'o' || (i % 5000) || '@example.com', 'USD', 25, '203.0.' || (i % 250) || '.' || (i % 13),
                   $2 - interval '5 minutes' * i, $2
            FROM generate_series(1, 30000) i
            """))
        {
            fill.Parameters.AddWithValue(older);
            fill.Parameters.AddWithValue(now);
            await fill.ExecuteNonQueryAsync();
        }
        await using (var analyze = app.Db.CreateCommand("ANALYZE orders")) await analyze.ExecuteNonQueryAsync();
        await using (var fill = app.Db.CreateCommand("""
            INSERT INTO orders (shop_id, id, email, currency, total_price, browser_ip, customer_id, created_at, updated_at)
            SELECT $1, 961000000 + i, 'c' || (i % 3000) || '@example.com', 'USD', 20 + i % 30, '198.51.' || (i % 250) || '.' || (i % 11),
                   CASE WHEN i % 2 = 0 THEN 971000000 + i % 3000 END, $2 - interval '10 minutes' * i, $2
            FROM generate_series(1, 6000) i
            """))
        {
            fill.Parameters.AddWithValue(shopId);
            fill.Parameters.AddWithValue(now);
            await fill.ExecuteNonQueryAsync();
        }

        var batch = Enumerable.Range(1, 300).Select(i => 961_000_000L + i).ToArray();
        await using var conn = await app.Db.OpenConnectionAsync();
        await QueryPlans.AssertReadsAtMostAsync(conn, $"building the features of {batch.Length} orders", 4 * batch.Length, OrderFeatures.Query, [shopId, batch]);
        // The store's usual order for the batch's days: computed once a day (reading the store's 90 days before), and each
        // next batch of the day must find that its days are done from its own orders. In a transaction rolled back, so
        // BuildAsync below computes them as scoring does.
        await using (var tx = await conn.BeginTransactionAsync())
        {
            // As BuildAsync does: the days are computed under the store days' lock.
            await using (var held = new NpgsqlCommand(OrderFeatures.StoreDaysHeld, conn, tx) { Parameters = { new() { Value = shopId }, new() { Value = batch } } })
                await held.ExecuteNonQueryAsync();
            await using (var days = new NpgsqlCommand(OrderFeatures.StoreDays, conn, tx) { Parameters = { new() { Value = shopId }, new() { Value = batch } } })
                Assert.True(await days.ExecuteNonQueryAsync() > 0);
            await QueryPlans.AssertReadsAtMostAsync(conn, $"finding the days of {batch.Length} orders", 4 * batch.Length, OrderFeatures.StoreDays, [shopId, batch], tx);
        }
        Assert.Equal(batch.Length, (await OrderFeatures.BuildAsync(conn, shopId, batch, CancellationToken.None)).Count);
    }

    /// <summary>
    /// An address thousands of orders share (a mobile carrier's, or a ring's burst): each new order's features must not read
    /// every one of them, or scoring would get dearer with every order when it matters most. Each window reads its latest
    /// orders up to the cap; below the cap the counts stay exact, and the reviewer reads a capped count as "more than".
    /// </summary>
    [Fact]
    public async Task AnAddressThousandsOfOrdersShare_EachNewOrdersFeaturesReadOnlyItsLatestOrders_AndCountsBelowTheCapStayExact()
    {
        const int orders = 3_000, batch = 20;
        var shopId = await app.InstallShopAsync("risk-shared-address.myshopify.com");
        var now = app.Clock.GetUtcNow();
        // One address and one card for every order, ten seconds apart (eight hours in all); 40 emails taking turns.
        await using (var fill = app.Db.CreateCommand("""
            INSERT INTO orders (shop_id, id, email, currency, total_price, browser_ip, card_bin, card_last4, created_at, updated_at)
            SELECT $1, 991000000 + i, 'ring' || (i % 40) || '@example.com', 'USD', 30, '198.51.100.7', '424242', '4242',
                   $2 - interval '10 seconds' * ($3 - i), $2
            FROM generate_series(1, $3) i
            """))
        {
            fill.Parameters.AddWithValue(shopId);
            fill.Parameters.AddWithValue(now);
            fill.Parameters.AddWithValue(orders);
            await fill.ExecuteNonQueryAsync();
        }
        await using (var analyze = app.Db.CreateCommand("ANALYZE orders")) await analyze.ExecuteNonQueryAsync();

        var ids = Enumerable.Range(orders - batch + 1, batch).Select(i => 991_000_000L + i).ToArray();
        await using var conn = await app.Db.OpenConnectionAsync();
        await QueryPlans.AssertReadsAtMostAsync(conn, $"building the features of {batch} orders", (OrderFeatures.WindowCap + 1) * batch, OrderFeatures.Query, [shopId, ids]);

        var f = (await OrderFeatures.BuildAsync(conn, shopId, [ids[^1]], CancellationToken.None))[ids[^1]];
        double Get(string name) => f[OrderFeatures.Index(name)];
        Assert.Equal(OrderFeatures.WindowCap, Get("ip_orders_30d"));
        Assert.Equal(OrderFeatures.WindowCap, Get("ip_orders_1d"));
        Assert.Equal(OrderFeatures.WindowCap, Get("card_orders_7d"));
        Assert.Equal(39, Get("ip_emails_7d"));         // every email is among the latest 500; the order's own is not "other"
        Assert.Equal(74, Get("email_orders_30d"));     // the email's 75 orders, less this one: under the cap, exact
        Assert.Equal(39, Get("card_other_emails_30d"));
        var reasons = RulePrior.Assess(f, "USD").Reasons.Select(r => r.Text).ToList();
        Assert.Contains($"More than {OrderFeatures.WindowCap} orders from the same browser address in 24 hours", reasons);
        Assert.Contains("75 orders from the same email in 24 hours", reasons);
        Assert.Contains("At least 39 other email addresses ordered from the same browser address in 7 days", reasons);
    }

    [Fact]
    public async Task ADisputeDeliveredBeforeItsOrder_CountsForTheAddressAndTheEmailOnceTheOrderArrives_AndOnceWonNoLongerCountsAsFraud()
    {
        const string shop = "risk-label-first.myshopify.com";
        var shopId = await OrdinaryStoreAsync(shop, 760_000);
        var now = app.Clock.GetUtcNow();
        const string ip = "192.0.2.77", email = "ring@example.org";
        JsonObject Dispute(string status, string? finalizedOn) => new()
        {
            ["id"] = 97_001, ["order_id"] = 769_001, ["type"] = "chargeback", ["amount"] = "80.00", ["currency"] = "USD",
            ["reason"] = "fraudulent", ["status"] = status, ["finalized_on"] = finalizedOn,
            ["initiated_at"] = now.AddDays(-10).ToString("O", CultureInfo.InvariantCulture),
        };

        // The chargeback comes before the order it is about (an order placed before the app was installed, not imported yet).
        await SendAsync(shop, "disputes/create", Dispute("needs_response", null));
        Assert.Equal(1L, await app.ScalarAsync("SELECT count(*) FROM risk_labels WHERE shop_id = $1 AND order_id = 769001 AND fraud", shopId));
        await SendAsync(shop, "orders/create", RiskOrders.Order(769_001, now.AddDays(-12), 80m, ip, email, null));

        // Placed after the chargeback was opened: the disputed order counts as confirmed fraud for its address and its email.
        await SendAsync(shop, "orders/create", RiskOrders.Order(769_002, now.AddDays(-5), 75m, ip, email, null));
        var during = (await ScoreOfAsync(shopId, 769_002)).Features;
        Assert.Equal(1, during.GetProperty("ip_labelled_30d").GetDouble());
        Assert.Equal(1, during.GetProperty("ip_fraud_share_30d").GetDouble());
        Assert.Equal(1, during.GetProperty("email_labelled_90d").GetDouble());
        Assert.Equal(1, during.GetProperty("email_fraud_share_90d").GetDouble());

        // The merchant wins the chargeback: from then on the order is labelled, and not fraud.
        await SendAsync(shop, "disputes/update", Dispute("won", now.AddDays(-3).ToString("yyyy-MM-dd", CultureInfo.InvariantCulture)));
        await SendAsync(shop, "orders/create", RiskOrders.Order(769_003, now.AddHours(-1), 70m, ip, email, null));
        var after = (await ScoreOfAsync(shopId, 769_003)).Features;
        Assert.Equal(1, after.GetProperty("ip_labelled_30d").GetDouble());
        Assert.Equal(1, after.GetProperty("email_labelled_90d").GetDouble());
        Assert.Equal(0, after.GetProperty("ip_fraud_share_30d").GetDouble());
        Assert.Equal(0, after.GetProperty("email_fraud_share_90d").GetDouble());
        Assert.Equal(0, after.GetProperty("ip_fraud_14d").GetDouble());
    }

    [Fact]
    public async Task FraudConfirmedWeeksAgo_IsToldFromFraudConfirmedThisFortnight_OnTheAddressAndTheEmail()
    {
        const string shop = "risk-recent.myshopify.com";
        var shopId = await OrdinaryStoreAsync(shop, 930_000);
        var now = app.Clock.GetUtcNow();
        const string ip = "192.0.2.77";
        const string email = "card@example.org";

        // Two earlier orders of the same address and email, both confirmed fraud a day after each: 20 and 3 days ago.
        await SendAsync(shop, "orders/create", RiskOrders.Order(939_001, now.AddDays(-20), 100m, ip, email, null));
        await SendAsync(shop, "orders/create", RiskOrders.Order(939_002, now.AddDays(-3), 50m, ip, email, null));
        foreach (var (order, at) in new[] { (939_001L, now.AddDays(-19)), (939_002L, now.AddDays(-2)) })
        {
            await using var label = app.Db.CreateCommand("INSERT INTO risk_labels (shop_id, order_id, source, fraud, labelled_at) VALUES ($1, $2, 'review', true, $3)");
            label.Parameters.AddWithValue(shopId);
            label.Parameters.AddWithValue(order);
            label.Parameters.AddWithValue(at);
            await label.ExecuteNonQueryAsync();
        }

        await SendAsync(shop, "orders/create", RiskOrders.Order(939_003, now.AddMinutes(-1), 150m, ip, email, null));
        var f = (await ScoreOfAsync(shopId, 939_003)).Features;

        Assert.Equal(2, f.GetProperty("ip_labelled_30d").GetDouble()); // both within 30 days
        Assert.Equal(1, f.GetProperty("ip_fraud_14d").GetDouble());    // only the one of 3 days ago within 14
        Assert.Equal(1, f.GetProperty("email_fraud_14d").GetDouble());
        Assert.Equal(3, f.GetProperty("amount_vs_email_avg_7d").GetDouble(), 3);  // 150 against the 50 of the last week
        Assert.Equal(2, f.GetProperty("amount_vs_email_avg_30d").GetDouble(), 3); // against the 75 of the last 30 days
    }

    [Fact]
    public async Task UpdatedOrder_WhoseTotalChanged_IsScoredAgain_AndShopifyGetsTheNewLevelAndTagInPlaceOfTheOld()
    {
        const string shop = "risk-update.myshopify.com";
        var shopId = await OrdinaryStoreAsync(shop, 730_000);
        var at = app.Clock.GetUtcNow();
        await SendAsync(shop, "orders/create", RiskOrders.Order(739_001, at, 30m, "203.0.113.90", "late@example.com", null, billing: "US", shipping: "NG"));
        Assert.Equal("LOW", (await ScoreOfAsync(shopId, 739_001)).Level);

        var bigger = RiskOrders.Order(739_001, at, 640m, "203.0.113.90", "late@example.com", null, billing: "US", shipping: "NG");
        bigger["updated_at"] = at.AddMinutes(3).ToString("O", CultureInfo.InvariantCulture);
        await SendAsync(shop, "orders/updated", bigger);
        await WaitForAsync(shopId, "SELECT EXISTS (SELECT 1 FROM risk_scores WHERE shop_id = $1 AND order_id = $2 AND level = 'HIGH')", 739_001);

        var gid = "gid://shopify/Order/739001";
        await WaitUntilAsync(() => app.Shopify.Admin.RiskAssessments(gid).Count == 2 && TagsAdded(gid).Contains("pluginapp:risk-high")
            && TagsRemoved(gid).Contains("pluginapp:risk-low"));
        Assert.Equal(["LOW", "HIGH"], app.Shopify.Admin.RiskAssessments(gid).Select(a => a["riskLevel"]!.GetValue<string>()));
    }

    /// <summary>
    /// An order edited while the scorer is scoring its previous version (after it read the order, before it finished): the
    /// edit's queueing meets the row being scored and queues nothing, and the scorer queues the order again when it sees it
    /// moved (until 4 Dec it was dropped with the row, and the order kept the score of what it no longer was). The scorer is
    /// held between the two (a lock on the risk settings it reads in between) to make the moment certain.
    /// </summary>
    [Fact]
    public async Task AnEditLandingWhileItsOrderIsScored_IsScoredAfterwards()
    {
        const string shop = "risk-edit-race.myshopify.com";
        var shopId = await OrdinaryStoreAsync(shop, 737_000);
        var at = app.Clock.GetUtcNow();
        const long id = 739_701;
        JsonObject Total(decimal total, int minutes)
        {
            var body = RiskOrders.Order(id, at, total, "203.0.113.96", "edited@example.com", null, billing: "US", shipping: "NG");
            body["updated_at"] = at.AddMinutes(minutes).ToString("O", CultureInfo.InvariantCulture);
            return body;
        }
        await SendAsync(shop, "orders/create", Total(30m, 0));
        Assert.Equal("LOW", (await ScoreOfAsync(shopId, id)).Level);

        await using var holder = await app.Factory.Services.GetRequiredService<Npgsql.NpgsqlDataSource>().OpenConnectionAsync();
        await using var hold = await holder.BeginTransactionAsync();
        await using (var lockCmd = new Npgsql.NpgsqlCommand("LOCK TABLE risk_settings IN ACCESS EXCLUSIVE MODE", holder, hold)) await lockCmd.ExecuteNonQueryAsync();
        await SendAsync(shop, "orders/updated", Total(31m, 1));
        // The scorer has claimed the order, read it at 31 and waits for the settings (no other shop has orders waiting, so the
        // one waiting is this shop's).
        await WaitForAsync(shopId, """
            SELECT NOT EXISTS (SELECT 1 FROM risk_pending WHERE shop_id <> $1)
               AND EXISTS (SELECT 1 FROM pg_locks WHERE NOT granted AND relation = 'risk_settings'::regclass)
            """);
        var late = SendAsync(shop, "orders/updated", Total(640m, 2));
        // The edit is answered (its queueing meets the row being scored and queues nothing) while the scorer still waits.
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (!late.IsCompleted && await app.ScalarAsync("SELECT EXISTS (SELECT 1 FROM pg_locks WHERE NOT granted AND locktype = 'transactionid')") is not true
               && DateTime.UtcNow < deadline)
            await Task.Delay(20);
        await hold.RollbackAsync();
        await late;

        await WaitForAsync(shopId, "SELECT EXISTS (SELECT 1 FROM risk_scores WHERE shop_id = $1 AND order_id = $2 AND (features->>'amount')::numeric = 640)", id);
        Assert.Equal("HIGH", (await ScoreOfAsync(shopId, id)).Level);
    }

    /// <summary>
    /// An order approved at MEDIUM, then edited into HIGH, comes back to the review queue (a reviewer decided on less than it
    /// now is); approved at HIGH, edited to MEDIUM and back, it stays decided. Edited back and forth (MEDIUM, HIGH, MEDIUM,
    /// HIGH), it ends with our HIGH tag, each change written, and the tag saying the reviewer's decision, which goes while the
    /// order is back in the queue.
    /// </summary>
    [Fact]
    public async Task ALevelRaisedAfterAReview_BringsTheOrderBack_AndTheTagsFollowEveryChangeAndDecision()
    {
        const string shop = "risk-back-and-forth.myshopify.com";
        var shopId = await OrdinaryStoreAsync(shop, 735_000);
        await app.ScalarAsync("INSERT INTO risk_settings (shop_id, medium_from, high_from, updated_at) VALUES ($1, 0.01, 0.4, $2)", shopId, app.Clock.GetUtcNow());
        var at = app.Clock.GetUtcNow();
        const long id = 739_501;
        var gid = $"gid://shopify/Order/{id}";
        var version = 0;
        async Task<string> SendTotalAsync(decimal total)
        {
            var body = RiskOrders.Order(id, at, total, "203.0.113.95", "edits@example.com", null, billing: "US", shipping: "NG");
            body["updated_at"] = at.AddMinutes(version++).ToString("O", CultureInfo.InvariantCulture);
            await SendAsync(shop, version == 1 ? "orders/create" : "orders/updated", body);
            // Each scoring logs its decision in the transaction that writes the score.
            await WaitForAsync(shopId, $"SELECT count(*) = {version} FROM decisions WHERE shop_id = $1 AND order_id = $2 AND kind = 'risk'", id);
            await app.DrainAsync(shopId);
            return (await ScoreOfAsync(shopId, id)).Level;
        }
        var store = app.Factory.Services.GetRequiredService<PluginApp.Risk.Review.ReviewStore>();
        async Task<bool> InQueueAsync() => (await store.QueueAsync(shopId, 200, CancellationToken.None)).Rows.Any(r => r.OrderId == id);

        Assert.Equal("MEDIUM", await SendTotalAsync(30m));
        Assert.True(await InQueueAsync());
        IEnumerable<string> OurTags() => app.Shopify.Admin.Tags(gid).Where(t => t.StartsWith("pluginapp:", StringComparison.Ordinal));
        Assert.NotNull(await store.DecideAsync(shopId, id, "approve", "known customer", "Ada", CancellationToken.None));
        Assert.False(await InQueueAsync());
        await app.DrainAsync(shopId);
        Assert.Equal(["pluginapp:risk-approved", "pluginapp:risk-medium"], OurTags());

        // Back in the queue, the order no longer says it was approved.
        Assert.Equal("HIGH", await SendTotalAsync(640m));
        Assert.True(await InQueueAsync(), "an order approved at MEDIUM and now HIGH is not in the review queue");
        Assert.Equal(["pluginapp:risk-high"], OurTags());

        Assert.NotNull(await store.DecideAsync(shopId, id, "approve", "spoke to the customer", "Ada", CancellationToken.None));
        Assert.Equal("MEDIUM", await SendTotalAsync(30.5m));
        Assert.Equal("HIGH", await SendTotalAsync(641m));
        Assert.False(await InQueueAsync(), "an order approved at HIGH came back at HIGH");
        Assert.Equal(["pluginapp:risk-approved", "pluginapp:risk-high"], OurTags());

        // A later decision replaces the earlier one's tag.
        Assert.NotNull(await store.DecideAsync(shopId, id, "fraud", "chargeback came in", "Ada", CancellationToken.None));
        await app.DrainAsync(shopId);
        Assert.Equal(["pluginapp:risk-fraud", "pluginapp:risk-high"], OurTags());
        // The fraud verdict sends an assessment of its own.
        Assert.Equal(["MEDIUM", "HIGH", "MEDIUM", "HIGH", "HIGH"], app.Shopify.Admin.RiskAssessments(gid).Select(a => a["riskLevel"]!.GetValue<string>()));

        // Another order marked as fraud at MEDIUM (after an approval), then edited into HIGH: the fraud verdict stands, so it
        // stays out of the queue and keeps its fraud tag (until 4 Dec 2026 it came back to the queue and lost the tag, as an
        // approval does).
        const long other = 739_502;
        var otherGid = $"gid://shopify/Order/{other}";
        for (var (i, total) = (0, 30m); i < 2; (i, total) = (i + 1, 640m))
        {
            var body = RiskOrders.Order(other, at, total, "203.0.113.96", "edits2@example.com", null, billing: "US", shipping: "NG");
            body["updated_at"] = at.AddMinutes(i).ToString("O", CultureInfo.InvariantCulture);
            await SendAsync(shop, i == 0 ? "orders/create" : "orders/updated", body);
            await WaitForAsync(shopId, $"SELECT count(*) = {i + 1} FROM decisions WHERE shop_id = $1 AND order_id = $2 AND kind = 'risk'", other);
            await app.DrainAsync(shopId);
            if (i == 0)
            {
                // Approved at first, then marked as fraud when the chargeback came: the later verdict is the one that stands.
                Assert.Equal("MEDIUM", (await ScoreOfAsync(shopId, other)).Level);
                Assert.NotNull(await store.DecideAsync(shopId, other, "approve", "looks fine", "Ada", CancellationToken.None));
                Assert.NotNull(await store.DecideAsync(shopId, other, "fraud", "stolen card", "Ada", CancellationToken.None));
                await app.DrainAsync(shopId);
            }
        }
        Assert.Equal("HIGH", (await ScoreOfAsync(shopId, other)).Level);
        Assert.DoesNotContain((await store.QueueAsync(shopId, 200, CancellationToken.None)).Rows, r => r.OrderId == other);
        Assert.Equal(["pluginapp:risk-fraud", "pluginapp:risk-high"], app.Shopify.Admin.Tags(otherGid).Where(t => t.StartsWith("pluginapp:", StringComparison.Ordinal)));
    }

    /// <summary>
    /// Marked as fraud at MEDIUM, an order is HIGH risk in Shopify, saying who decided, and stays so when an edit is scored LOW
    /// (until 5 Dec 2026 Shopify kept MEDIUM, then showed LOW with no word of the verdict, where a Flow may fulfil LOW orders);
    /// approved afterwards, it shows its score's level again, saying who approved. The level tag still says what was scored.
    /// </summary>
    [Fact]
    public async Task AnOrderMarkedAsFraud_IsHighRiskInShopify_WhateverItsLaterScore_UntilApproved()
    {
        const string shop = "risk-fraud-verdict-shown.myshopify.com";
        var shopId = await OrdinaryStoreAsync(shop, 736_000);
        await app.ScalarAsync("INSERT INTO risk_settings (shop_id, medium_from, high_from, updated_at) VALUES ($1, 0.01, 0.4, $2)", shopId, app.Clock.GetUtcNow());
        var at = app.Clock.GetUtcNow();
        const long id = 739_601;
        var gid = $"gid://shopify/Order/{id}";
        var body = RiskOrders.Order(id, at, 30m, "203.0.113.97", "verdict@example.com", null, billing: "US", shipping: "NG");
        await SendAsync(shop, "orders/create", body);
        await WaitForAsync(shopId, "SELECT count(*) = 1 FROM decisions WHERE shop_id = $1 AND order_id = $2 AND kind = 'risk'", id);
        Assert.Equal("MEDIUM", (await ScoreOfAsync(shopId, id)).Level);
        var store = app.Factory.Services.GetRequiredService<PluginApp.Risk.Review.ReviewStore>();
        Assert.NotNull(await store.DecideAsync(shopId, id, "fraud", "stolen card", "Ada", CancellationToken.None));
        await app.DrainAsync(shopId);
        JsonNode Latest() => app.Shopify.Admin.RiskAssessments(gid).Last();
        string FirstFact() => Latest()["facts"]!.AsArray()[0]!["description"]!.GetValue<string>();
        Assert.Equal("HIGH", Latest()["riskLevel"]!.GetValue<string>());
        Assert.Equal("Known fraud: marked as fraud by Ada", FirstFact());
        Assert.Equal("NEGATIVE", Latest()["facts"]!.AsArray()[0]!["sentiment"]!.GetValue<string>());

        // The merchant raises the thresholds and the order is edited: scored LOW now, it is still HIGH in Shopify.
        await app.ScalarAsync("UPDATE risk_settings SET medium_from = 0.9, high_from = 0.95 WHERE shop_id = $1", shopId);
        body = RiskOrders.Order(id, at, 31m, "203.0.113.97", "verdict@example.com", null, billing: "US", shipping: "NG");
        body["updated_at"] = at.AddMinutes(1).ToString("O", CultureInfo.InvariantCulture);
        await SendAsync(shop, "orders/updated", body);
        await WaitForAsync(shopId, "SELECT count(*) = 2 FROM decisions WHERE shop_id = $1 AND order_id = $2 AND kind = 'risk'", id);
        await app.DrainAsync(shopId);
        Assert.Equal("LOW", (await ScoreOfAsync(shopId, id)).Level);
        Assert.Equal(3, app.Shopify.Admin.RiskAssessments(gid).Count);
        Assert.Equal("HIGH", Latest()["riskLevel"]!.GetValue<string>());
        Assert.Equal("Known fraud: marked as fraud by Ada", FirstFact());
        Assert.Contains("(LOW)", Latest()["facts"]!.AsArray().Last()!["description"]!.GetValue<string>());
        Assert.Equal(["pluginapp:risk-fraud", "pluginapp:risk-low"], app.Shopify.Admin.Tags(gid).Where(t => t.StartsWith("pluginapp:", StringComparison.Ordinal)));

        // Approved after all: its score's level again, and who approved it.
        Assert.NotNull(await store.DecideAsync(shopId, id, "approve", "the card holder called", "Bo", CancellationToken.None));
        await app.DrainAsync(shopId);
        Assert.Equal("LOW", Latest()["riskLevel"]!.GetValue<string>());
        Assert.Equal("Approved by Bo in the PluginApp review queue", FirstFact());
        Assert.Equal(["pluginapp:risk-approved", "pluginapp:risk-low"], app.Shopify.Admin.Tags(gid).Where(t => t.StartsWith("pluginapp:", StringComparison.Ordinal)));
    }

    /// <summary>
    /// A chargeback for an order scored LOW: Shopify's assessment of it becomes HIGH, saying why, while its level tag still
    /// says what was scored; the dispute won, the score's level again. Until 6 Dec 2026 a label from outside the review
    /// queue (a chargeback, a Stripe warning, a cancellation for fraud) reached Shopify only if a later score changed the
    /// order's level, so the order stayed LOW in Shopify, where a merchant's Flow may fulfil LOW orders.
    /// </summary>
    [Fact]
    public async Task AChargebackForAnOrderScoredLow_MakesItHighRiskInShopify_AndWonItIsLowAgain()
    {
        const string shop = "risk-chargeback-told.myshopify.com";
        var shopId = await OrdinaryStoreAsync(shop, 738_000);
        var at = app.Clock.GetUtcNow();
        const long id = 738_901;
        var gid = $"gid://shopify/Order/{id}";
        await SendAsync(shop, "orders/create", RiskOrders.Order(id, at, 30m, "203.0.113.98", "told@example.com", null));
        await WaitForAsync(shopId, "SELECT count(*) = 1 FROM decisions WHERE shop_id = $1 AND order_id = $2 AND kind = 'risk'", id);
        await app.DrainAsync(shopId);
        Assert.Equal("LOW", (await ScoreOfAsync(shopId, id)).Level);
        JsonNode Latest() => app.Shopify.Admin.RiskAssessments(gid).Last();
        Assert.Equal("LOW", Latest()["riskLevel"]!.GetValue<string>());
        JsonObject Dispute(string status, string? finalizedOn) => new()
        {
            ["id"] = 97_701, ["order_id"] = id, ["type"] = "chargeback", ["amount"] = "30.00", ["currency"] = "USD",
            ["reason"] = "fraudulent", ["status"] = status, ["finalized_on"] = finalizedOn,
            ["initiated_at"] = at.AddHours(1).ToString("O", CultureInfo.InvariantCulture),
        };

        await SendAsync(shop, "disputes/create", Dispute("needs_response", null));
        await WaitForAsync(shopId, "SELECT count(*) = 2 FROM decisions WHERE shop_id = $1 AND order_id = $2 AND kind = 'risk'", id);
        await app.DrainAsync(shopId);
        Assert.Equal(2, app.Shopify.Admin.RiskAssessments(gid).Count);
        Assert.Equal("HIGH", Latest()["riskLevel"]!.GetValue<string>());
        Assert.StartsWith("Known fraud: Shopify Payments chargeback 97701", Latest()["facts"]!.AsArray()[0]!["description"]!.GetValue<string>());
        Assert.Equal(["pluginapp:risk-low"], app.Shopify.Admin.Tags(gid).Where(t => t.StartsWith("pluginapp:", StringComparison.Ordinal)));

        // The same dispute delivered again changes nothing; won, Shopify shows the score's level again.
        await SendAsync(shop, "disputes/update", Dispute("needs_response", null));
        await SendAsync(shop, "disputes/update", Dispute("won", at.AddDays(20).ToString("O", CultureInfo.InvariantCulture)));
        await WaitForAsync(shopId, "SELECT count(*) = 3 FROM decisions WHERE shop_id = $1 AND order_id = $2 AND kind = 'risk'", id);
        await app.DrainAsync(shopId);
        Assert.Equal(3, app.Shopify.Admin.RiskAssessments(gid).Count);
        Assert.Equal("LOW", Latest()["riskLevel"]!.GetValue<string>());
    }

    /// <summary>
    /// An active model whose file cannot be read: the store's orders are still scored, by the rule prior, and the decision
    /// says no model version (until 5 Dec 2026 the error rolled each batch back, and no order of the store was scored).
    /// </summary>
    [Fact]
    public async Task AnActiveModelWhoseFileCannotBeRead_LeavesOrdersScoredByTheRules()
    {
        const string shop = "risk-unreadable-model.myshopify.com";
        var shopId = await OrdinaryStoreAsync(shop, 1_780_000);
        var now = app.Clock.GetUtcNow();
        await app.ScalarAsync("""
            INSERT INTO models (shop_id, kind, version, status, parameters, metrics, artifact, created_at, activated_at)
            VALUES ($1, 'risk', 1, 'active', '{}', '{}', '\x00', $2, $2)
            """, shopId, now);

        await SendAsync(shop, "orders/create", RiskOrders.Order(1_789_001, now, 90m, "198.51.100.90", "someone@example.com", null));

        Assert.NotNull((await ScoreOfAsync(shopId, 1_789_001)).Level);
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM risk_scores WHERE shop_id = $1 AND order_id = 1789001 AND model_version IS NULL", shopId));
    }

    /// <summary>
    /// A customer's earlier orders count for her only when they stood by the order's time: one cancelled as fraud before it,
    /// a test order and one known as fraud before it do not; one cancelled only after it does (as scored then). Until 5 Dec
    /// 2026 all four counted, and a buyer whose earlier orders were cancelled as fraud read as "Returning customer".
    /// </summary>
    [Fact]
    public async Task ACustomersEarlierOrders_CountOnlyThoseThatStoodByTheOrdersTime()
    {
        const string shop = "risk-earlier-orders.myshopify.com";
        var shopId = await OrdinaryStoreAsync(shop, 1_810_000);
        var now = app.Clock.GetUtcNow();
        const long customer = 1_819_900;
        const string email = "earlier@example.net";
        async Task PlaceAsync(long id, double daysAgo, Action<JsonObject>? change = null)
        {
            var o = RiskOrders.Order(id, now.AddDays(-daysAgo), 40m, $"203.0.113.{id % 100}", email, customer);
            change?.Invoke(o);
            await SendAsync(shop, "orders/create", o);
        }
        await PlaceAsync(1_819_001, 20);
        var cancelled = RiskOrders.Order(1_819_001, now.AddDays(-20), 40m, "203.0.113.1", email, customer);
        cancelled["cancelled_at"] = now.AddDays(-19).ToString("O", CultureInfo.InvariantCulture);
        cancelled["updated_at"] = now.AddDays(-19).ToString("O", CultureInfo.InvariantCulture);
        cancelled["cancel_reason"] = "customer";
        await SendAsync(shop, "orders/cancelled", cancelled);
        await PlaceAsync(1_819_002, 15, o => o["test"] = true);
        await PlaceAsync(1_819_003, 10);
        await app.ScalarAsync("INSERT INTO risk_labels (shop_id, order_id, source, fraud, labelled_at) VALUES ($1, 1819003, 'review', true, $2)", shopId, now.AddDays(-8));
        await PlaceAsync(1_819_004, 6);
        await PlaceAsync(1_819_005, 3);

        await PlaceAsync(1_819_006, 1);
        var later = RiskOrders.Order(1_819_005, now.AddDays(-3), 40m, "203.0.113.5", email, customer);
        later["cancelled_at"] = now.AddHours(-2).ToString("O", CultureInfo.InvariantCulture);
        later["updated_at"] = now.AddHours(-2).ToString("O", CultureInfo.InvariantCulture);
        later["cancel_reason"] = "customer";
        await SendAsync(shop, "orders/cancelled", later);

        var scored = await ScoreOfAsync(shopId, 1_819_006);
        Assert.Equal(2, scored.Features.GetProperty("customer_orders_before").GetDouble());
        Assert.Equal(80, scored.Features.GetProperty("customer_spend_before").GetDouble());
        Assert.InRange(scored.Features.GetProperty("customer_age_days").GetDouble(), 4.9, 5.1);
    }

    /// <summary>
    /// An order rung up at the counter (Shopify POS): the card was present and the goods left with the buyer, so it is not
    /// scored, tagged or held, and no reviewer sees it. Until 5 Dec 2026 a large one, with no email or address, read as a
    /// first order from nowhere and was flagged. The same order placed online is scored.
    /// </summary>
    [Fact]
    public async Task AnOrderRungUpInTheStore_IsNotScored_WhileTheSameOrderOnlineIs()
    {
        const string shop = "risk-pos.myshopify.com";
        var shopId = await app.InstallShopAsync(shop);
        var now = app.Clock.GetUtcNow();
        var counter = RiskOrders.Order(741_001, now, 1_900m, "203.0.113.80", "counter@example.net", null);
        counter["source_name"] = "pos";
        counter["email"] = null;
        counter["browser_ip"] = null;
        counter["client_details"] = null;
        counter["customer"] = null;
        counter["shipping_address"] = null;
        await SendAsync(shop, "orders/create", counter);
        var online = RiskOrders.Order(741_002, now.AddMinutes(1), 1_900m, "203.0.113.81", "online@example.net", null);
        online["source_name"] = "web";
        await SendAsync(shop, "orders/create", online);

        await ScoreOfAsync(shopId, 741_002);
        Assert.Equal(2L, await app.ScalarAsync("SELECT count(*) FROM orders WHERE shop_id = $1", shopId));
        Assert.Equal(0L, await app.ScalarAsync("SELECT count(*) FROM risk_scores WHERE shop_id = $1 AND order_id = 741001", shopId));
        Assert.Equal(0L, await app.ScalarAsync("SELECT count(*) FROM risk_pending WHERE shop_id = $1", shopId));
        await WaitUntilAsync(() => app.Shopify.Admin.RiskAssessments("gid://shopify/Order/741002").Count == 1);
        Assert.Empty(app.Shopify.Admin.RiskAssessments("gid://shopify/Order/741001"));
    }

    /// <summary>
    /// A draft order taken over the phone, with no customer account and no email: nothing finds its buyer's earlier orders,
    /// so its reasons say none was found. Until 6 Dec 2026 they said "First order from this customer".
    /// </summary>
    [Fact]
    public async Task AnOrderWithNoAccountOrEmail_IsNotCalledTheCustomersFirstOrder()
    {
        const string shop = "risk-no-identity.myshopify.com";
        var shopId = await OrdinaryStoreAsync(shop, 1_840_000);
        var order = RiskOrders.Order(1_849_001, app.Clock.GetUtcNow(), 900m, "203.0.113.90", "", null, discount: true);
        order["source_name"] = "shopify_draft_order";
        order["email"] = null;
        order["contact_email"] = null;
        order["customer"] = null;
        await SendAsync(shop, "orders/create", order);

        var reasons = (await ScoreOfAsync(shopId, 1_849_001)).Reasons.GetRawText();

        Assert.Contains("No earlier order found for this buyer, and larger than 9 in 10", reasons, StringComparison.Ordinal);
        Assert.Contains("A discount code, and no earlier order found for this buyer", reasons, StringComparison.Ordinal);
        Assert.DoesNotContain("first order", reasons, StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>
    /// A store that imported its old platform's orders the day before: a returning customer's first order in the store does
    /// not read her three imported orders (created on the import's day, placed in 2023 and 2024) as orders of the last day,
    /// and she is a customer of years. Until 7 Dec 2026 they were three orders from her email in 24 hours, and her age a day.
    /// </summary>
    [Fact]
    public async Task AReturningCustomersImportedOrders_AreNotRecentOrders()
    {
        const string shop = "risk-imported-history.myshopify.com";
        var shopId = await OrdinaryStoreAsync(shop, 1_770_000);
        var now = app.Clock.GetUtcNow();
        for (var i = 0; i < 3; i++)
        {
            var imported = RiskOrders.Order(1_779_001 + i, now.AddHours(-20).AddMinutes(i), 60m, $"192.0.2.{10 + i}", "moved@example.com", null);
            imported["processed_at"] = now.AddDays(-900 + 200 * i).ToString("O", System.Globalization.CultureInfo.InvariantCulture);
            await SendAsync(shop, "orders/create", imported);
        }
        await SendAsync(shop, "orders/create", RiskOrders.Order(1_779_010, now, 60m, "198.51.100.77", "moved@example.com", null));

        var placed = await ScoreOfAsync(shopId, 1_779_010);

        Assert.Equal(0, placed.Features.GetProperty("email_orders_1d").GetDouble());
        Assert.Equal(0, placed.Features.GetProperty("email_orders_7d").GetDouble());
        Assert.True(placed.Features.GetProperty("customer_age_days").GetDouble() > 400, placed.Features.GetRawText());
    }

    /// <summary>
    /// The same store's import, seen from the shopper's home address and her card: her three imported orders from that
    /// address, paid with that card, are not orders of the last day or week. Until 7 Dec 2026 her first order after the
    /// import read as three orders from one browser address in 24 hours, and three with one card in 7 days.
    /// </summary>
    [Fact]
    public async Task ImportedOrdersFromTheSameAddressAndCard_AreNotRecentOrders()
    {
        const string shop = "risk-imported-address.myshopify.com";
        var shopId = await OrdinaryStoreAsync(shop, 1_960_000);
        var now = app.Clock.GetUtcNow();
        for (var i = 0; i < 3; i++)
        {
            var imported = RiskOrders.Order(1_969_001 + i, now.AddHours(-20).AddMinutes(i), 60m, "198.51.100.90", $"home{i}@example.com", null);
            imported["processed_at"] = now.AddDays(-900 + 200 * i).ToString("O", System.Globalization.CultureInfo.InvariantCulture);
            RiskOrders.PaidWithCard(imported, "424242", "4242", "Y", "M");
            await SendAsync(shop, "orders/create", imported);
        }
        var order = RiskOrders.Order(1_969_010, now, 60m, "198.51.100.90", "home@example.com", null);
        RiskOrders.PaidWithCard(order, "424242", "4242", "Y", "M");
        await SendAsync(shop, "orders/create", order);

        var placed = await ScoreOfAsync(shopId, 1_969_010);

        Assert.Equal((0d, 0d, 0d, 0d), (placed.Features.GetProperty("ip_orders_1d").GetDouble(), placed.Features.GetProperty("ip_orders_7d").GetDouble(),
            placed.Features.GetProperty("ip_emails_7d").GetDouble(), placed.Features.GetProperty("card_orders_7d").GetDouble()));
    }

    /// <summary>
    /// The same import, seen from the email's labels: an order of hers placed 200 days ago, imported yesterday, and since
    /// charged back as fraud, is outside the email's 90-day window of labelled orders. Until 7 Dec 2026 that window counted
    /// by creation, and her first order after the import read "100% of the labelled orders from this email in the last 90
    /// days were confirmed fraud" for an order of last spring.
    /// </summary>
    [Fact]
    public async Task AnImportedOrdersFraudLabel_PlacedBeforeTheEmailsWindow_DoesNotCount()
    {
        const string shop = "risk-imported-label.myshopify.com";
        var shopId = await OrdinaryStoreAsync(shop, 1_950_000);
        var now = app.Clock.GetUtcNow();
        var imported = RiskOrders.Order(1_959_001, now.AddHours(-20), 60m, "192.0.2.150", "spring@example.com", null);
        imported["processed_at"] = now.AddDays(-200).ToString("O", System.Globalization.CultureInfo.InvariantCulture);
        await SendAsync(shop, "orders/create", imported);
        await app.ScalarAsync("INSERT INTO risk_labels (shop_id, order_id, source, fraud, labelled_at) VALUES ($1, 1959001, 'dispute', true, $2)", shopId, now.AddHours(-2));
        await SendAsync(shop, "orders/create", RiskOrders.Order(1_959_010, now, 60m, "198.51.100.151", "spring@example.com", null));

        var placed = (await ScoreOfAsync(shopId, 1_959_010)).Features;

        Assert.Equal((0d, 0d), (placed.GetProperty("email_labelled_90d").GetDouble(), placed.GetProperty("email_fraud_share_90d").GetDouble()));
    }

    /// <summary>
    /// Orders Shopify sends with <c>"email": ""</c> (draft and point-of-sale orders of no customer) share no email: until 5 Dec
    /// 2026 the empty string was stored as one, and each such order read as a returning customer with the others' orders.
    /// </summary>
    [Fact]
    public async Task OrdersWithABlankEmail_AreNotTheSameShopper()
    {
        const string shop = "risk-blank-email.myshopify.com";
        var shopId = await OrdinaryStoreAsync(shop, 1_760_000);
        var now = app.Clock.GetUtcNow();
        for (var i = 0; i < 4; i++)
        {
            var order = RiskOrders.Order(1_769_001 + i, now.AddMinutes(-40 + 10 * i), 80m, $"198.51.100.{40 + i}", "", null);
            order["contact_email"] = "";
            await SendAsync(shop, "orders/create", order);
        }

        var last = await ScoreOfAsync(shopId, 1_769_004);

        Assert.Equal(0, last.Features.GetProperty("customer_orders_before").GetDouble());
        Assert.Equal(0, last.Features.GetProperty("email_orders_1d").GetDouble());
        Assert.DoesNotContain("Returning customer", last.Reasons.GetRawText());
        Assert.Equal(0, await app.CountAsync("SELECT count(*) FROM orders WHERE shop_id = $1 AND email = ''", shopId));
    }

    [Fact]
    public async Task ShopperWithAHighOrderAwaitingReview_GetsNoUpsells_UntilAReviewerClearsIt_AndAConfirmedFraudsterStaysWithout()
    {
        const string shop = "risk-sessions.myshopify.com";
        var shopId = await OrdinaryStoreAsync(shop, 740_000);
        const long customer = 74_999;
        var order = RiskOrders.Order(749_001, app.Clock.GetUtcNow(), 640m, "203.0.113.77", "risky@example.net", customer, billing: "US", shipping: "NG");
        await SendAsync(shop, "orders/create", order);
        Assert.Equal("HIGH", (await ScoreOfAsync(shopId, 749_001)).Level);
        var sessions = app.Factory.Services.GetRequiredService<RiskySessions>();
        sessions.Invalidate(shopId);

        // The shopper is told nothing answered, not why (until 5 Dec 2026 the answer said "risky_session"); the log says why.
        var refused = await RecommendAsync(shop, customer);
        Assert.Equal((PluginApp.Recommendations.RecommendationService.RefusedPath, 0), (refused.GetProperty("path").GetString(), refused.GetProperty("items").GetArrayLength()));
        Assert.DoesNotContain(RiskySessions.Path, refused.GetRawText(), StringComparison.OrdinalIgnoreCase);
        Assert.Equal(RiskySessions.Path, await LoggedPathAsync(refused));
        // A refusal is not the model failing to answer: not counted as a fallback (until 7 Dec 2026 it was).
        Assert.Equal(false, await app.ScalarAsync("SELECT fallback FROM decisions WHERE decision_id = $1", refused.GetProperty("request_id").GetString()!));
        var someoneElse = await RecommendAsync(shop, 74_998);
        Assert.NotEqual(RiskySessions.Path, await LoggedPathAsync(someoneElse));
        // Logged out, from the order's address as Shopify's proxy reports it (until 5 Dec 2026 the guard read the connection's
        // address, Shopify's, which no order ever came from); another address is served.
        Assert.Equal(RiskySessions.Path, await LoggedPathAsync(await RecommendAsync(shop, null, "203.0.113.77")));
        Assert.NotEqual(RiskySessions.Path, await LoggedPathAsync(await RecommendAsync(shop, null, "203.0.113.99")));
        // Asking as the theme editor does (np=2, which anyone can add) changes nothing of that: still refused.
        var asEditor = await RecommendAsync(shop, customer, "203.0.113.77", "&np=2");
        Assert.Equal((PluginApp.Recommendations.RecommendationService.RefusedPath, 0), (asEditor.GetProperty("path").GetString(), asEditor.GetProperty("items").GetArrayLength()));

        // A reviewer approves the order: the shopper is served again.
        Assert.NotNull(await app.Factory.Services.GetRequiredService<PluginApp.Risk.Review.ReviewStore>().DecideAsync(shopId, 749_001, "approve", null, "Ada", CancellationToken.None));
        sessions.Invalidate(shopId);
        Assert.Equal(someoneElse.GetProperty("path").GetString(), (await RecommendAsync(shop, customer)).GetProperty("path").GetString());

        // Another shopper's HIGH order is confirmed as fraud and cancelled: they stay without upsells.
        const long fraudster = 74_997;
        await SendAsync(shop, "orders/create", RiskOrders.Order(749_002, app.Clock.GetUtcNow(), 650m, "203.0.113.78", "ring@example.net", fraudster, billing: "US", shipping: "NG"));
        Assert.Equal("HIGH", (await ScoreOfAsync(shopId, 749_002)).Level);
        await app.ScalarAsync("INSERT INTO risk_labels (shop_id, order_id, source, fraud, labelled_at) VALUES ($1, 749002, 'review', true, $2)",
            shopId, app.Clock.GetUtcNow());
        await app.ScalarAsync("UPDATE orders SET cancelled_at = $2 WHERE shop_id = $1 AND id = 749002", shopId, app.Clock.GetUtcNow());
        sessions.Invalidate(shopId);
        Assert.Equal(RiskySessions.Path, await LoggedPathAsync(await RecommendAsync(shop, fraudster)));
        Assert.Equal(someoneElse.GetProperty("path").GetString(), (await RecommendAsync(shop, customer)).GetProperty("path").GetString());

        // A HIGH order that was rung up in the store (Shopify POS), scored before such orders stopped being scored: no
        // reviewer ever sees it, so it does not keep its buyer from upsells.
        const long counterBuyer = 74_996;
        await SendAsync(shop, "orders/create", RiskOrders.Order(749_003, app.Clock.GetUtcNow(), 660m, "203.0.113.79", "counter@example.net", counterBuyer, billing: "US", shipping: "NG"));
        Assert.Equal("HIGH", (await ScoreOfAsync(shopId, 749_003)).Level);
        sessions.Invalidate(shopId);
        Assert.Equal(RiskySessions.Path, await LoggedPathAsync(await RecommendAsync(shop, counterBuyer)));
        await app.ScalarAsync("UPDATE orders SET source_name = 'pos' WHERE shop_id = $1 AND id = 749003", shopId);
        sessions.Invalidate(shopId);
        Assert.Equal(someoneElse.GetProperty("path").GetString(), (await RecommendAsync(shop, counterBuyer)).GetProperty("path").GetString());
    }

    /// <summary>The path the decision log recorded for an answer (written behind the answer).</summary>
    private async Task<string> LoggedPathAsync(JsonElement answer)
    {
        var id = answer.GetProperty("request_id").GetString()!;
        for (var i = 0; i < 100; i++)
        {
            if (await app.ScalarAsync("SELECT path FROM decisions WHERE decision_id = $1", id) is string path) return path;
            await Task.Delay(50);
        }
        throw new Xunit.Sdk.XunitException($"the decision {id} was not logged within 5 s");
    }

    private async Task<JsonElement> RecommendAsync(string shop, long? customer, string? forwardedFor = null, string extra = "")
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, PluginApp.Tests.Recommendations.StoreSeed.Signed("/proxy/recommendations", shop,
            "placement=cart&limit=4&visitor_id=v1" + extra, app.Clock.GetUtcNow(), customer: customer?.ToString(CultureInfo.InvariantCulture) ?? ""));
        if (forwardedFor is not null) request.Headers.Add("X-Forwarded-For", forwardedFor);
        var response = await app.Client.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.Clone();
    }

    [Fact]
    public async Task CardChecksAndACardReusedUnderAnotherEmail_AreReasons_AndTheCardIsForgottenWithTheCustomer()
    {
        const string shop = "risk-card.myshopify.com";
        var shopId = await OrdinaryStoreAsync(shop, 850_000);
        var now = app.Clock.GetUtcNow();

        // A card on the order's payment details as the order webhook carries them, and on a sale transaction (the other place).
        var first = RiskOrders.Order(859_001, now.AddHours(-3), 40m, "192.0.2.90", "first.holder@example.org", 859_101);
        RiskOrders.PaidWithCard(first, bin: "414720", last4: "4242", avs: "Y", cvv: "M");
        await SendAsync(shop, "orders/create", first);
        var second = RiskOrders.Order(859_002, now, 40m, "192.0.2.91", "someone.else@example.net", null);
        RiskOrders.PaidWithCard(second, bin: "414720", last4: "4242", avs: "N", cvv: "N", onTransaction: true);
        await SendAsync(shop, "orders/create", second);

        var (_, _, reasons, features) = await ScoreOfAsync(shopId, 859_002);
        Assert.Equal(1f, features.GetProperty("avs_no_match").GetSingle());
        Assert.Equal(1f, features.GetProperty("cvv_no_match").GetSingle());
        Assert.Equal(1f, features.GetProperty("card_other_emails_30d").GetSingle());
        Assert.Equal(1f, features.GetProperty("card_orders_7d").GetSingle());
        var texts = reasons.EnumerateArray().Select(r => r.GetProperty("text").GetString()).ToList();
        Assert.Contains("The card's security code did not match", texts);
        Assert.Contains("The card's address check failed: the billing address does not match the card", texts);
        Assert.Contains("The same card paid under 1 other email address in 30 days", texts);
        var clean = await ScoreOfAsync(shopId, 859_001);
        Assert.DoesNotContain(Codes(clean.Reasons), c => c.StartsWith("avs", StringComparison.Ordinal) || c.StartsWith("cvv", StringComparison.Ordinal));

        // The card's digits are personal data: erasing the customer erases them from their orders.
        var redact = new JsonObject
        {
            ["shop_id"] = 1, ["shop_domain"] = shop, ["customer"] = new JsonObject { ["id"] = 859_101, ["email"] = "first.holder@example.org" },
            ["orders_to_redact"] = new JsonArray(859_001),
        };
        await SendAsync(shop, "customers/redact", redact);
        await WaitForAsync(shopId, "SELECT card_bin IS NULL AND card_last4 IS NULL FROM orders WHERE shop_id = $1 AND id = 859001");
        Assert.Equal("414720", await app.ScalarAsync("SELECT card_bin FROM orders WHERE shop_id = $1 AND id = 859002", shopId));
    }

    /// <summary>
    /// Order webhooks carry no payment details: the card comes with the order's transaction (order_transactions/create),
    /// after the order or before it. After it, the order is scored again with the card, and Shopify gets the new level; before
    /// it, the order is stored with the card and scored once, with it. A capture, a failed try or a payment without a card
    /// bring none, and a second authorization does not replace the first card.
    /// </summary>
    [Fact]
    public async Task TheCardOfAnOrdersTransaction_ScoresTheOrderWithItsChecks_WhicheverWebhookComesFirst()
    {
        const string shop = "risk-card-transaction.myshopify.com";
        var shopId = await OrdinaryStoreAsync(shop, 880_000);
        var now = app.Clock.GetUtcNow();

        // The order first, scored without a card: a guest's order of a usual total, shipped abroad.
        await SendAsync(shop, "orders/create", RiskOrders.Order(889_001, now, 30m, "203.0.113.81", "abroad@example.net", null, shipping: "CA"));
        var before = await ScoreOfAsync(shopId, 889_001);
        Assert.Equal("LOW", before.Level);
        Assert.Equal(0f, before.Features.GetProperty("avs_no_match").GetSingle());
        // Nothing a card could come from: a payment without a card, a failed try, a capture.
        await SendAsync(shop, "order_transactions/create", RiskOrders.Transaction(7_001, 889_001, "sale", "success", bin: null));
        await SendAsync(shop, "order_transactions/create", RiskOrders.Transaction(7_002, 889_001, "authorization", "failure", "400000", "0002", avs: "N", cvv: "N"));
        await SendAsync(shop, "order_transactions/create", RiskOrders.Transaction(7_003, 889_001, "capture", "success", "400000", "0003", avs: "N", cvv: "N"));
        Assert.Equal(0L, await app.ScalarAsync("SELECT count(*) FROM order_cards WHERE shop_id = $1", shopId));
        Assert.Null(await app.ScalarAsync("SELECT card_received_at FROM orders WHERE shop_id = $1 AND id = 889001", shopId));

        // Its authorization: the address and the security code did not match.
        await SendAsync(shop, "order_transactions/create", RiskOrders.Transaction(7_004, 889_001, "authorization", "success", "400000", "0004", avs: "N", cvv: "N"));
        await WaitForAsync(shopId, "SELECT (features->>'avs_no_match')::float8 = 1 FROM risk_scores WHERE shop_id = $1 AND order_id = $2", 889_001);
        var after = await ScoreOfAsync(shopId, 889_001);
        Assert.Equal("MEDIUM", after.Level);
        Assert.Equal(1f, after.Features.GetProperty("cvv_no_match").GetSingle());
        var texts = after.Reasons.EnumerateArray().Select(r => r.GetProperty("text").GetString()).ToList();
        Assert.Contains("The card's security code did not match", texts);
        Assert.Contains("The card's address check failed: the billing address does not match the card", texts);
        Assert.Equal(["400000", "0004"], [(string)(await app.ScalarAsync("SELECT card_bin FROM orders WHERE shop_id = $1 AND id = 889001", shopId))!,
            (string)(await app.ScalarAsync("SELECT card_last4 FROM orders WHERE shop_id = $1 AND id = 889001", shopId))!]);
        var gid = "gid://shopify/Order/889001";
        await WaitUntilAsync(() => app.Shopify.Admin.RiskAssessments(gid).Count == 2);
        Assert.Equal("MEDIUM", app.Shopify.Admin.RiskAssessments(gid).Last()["riskLevel"]!.GetValue<string>());

        // A second authorization (an edit paid again) keeps the first card, and scores nothing again; nor does the sweep.
        await SendAsync(shop, "order_transactions/create", RiskOrders.Transaction(7_005, 889_001, "authorization", "success", "511111", "0005", avs: "Y", cvv: "M"));
        Assert.Equal("0004", await app.ScalarAsync("SELECT card_last4 FROM orders WHERE shop_id = $1 AND id = 889001", shopId));
        Assert.Equal(0L, await app.ScalarAsync("SELECT count(*) FROM order_cards WHERE shop_id = $1", shopId));
        await app.Factory.Services.GetRequiredService<RiskScoringJob>().SweepAsync(CancellationToken.None);
        await Task.Delay(1500);
        Assert.Equal(2L, await app.ScalarAsync("SELECT count(*) FROM decisions WHERE shop_id = $1 AND order_id = 889001 AND kind = 'risk'", shopId));

        // The transaction first: the order takes its card when it comes, and is scored once, with it.
        await SendAsync(shop, "order_transactions/create", RiskOrders.Transaction(7_006, 889_002, "sale", "success", "400000", "0006", avs: "N", cvv: "M"));
        Assert.Equal(1L, await app.ScalarAsync("SELECT count(*) FROM order_cards WHERE shop_id = $1 AND order_id = 889002", shopId));
        await SendAsync(shop, "orders/create", RiskOrders.Order(889_002, now.AddMinutes(1), 30m, "203.0.113.82", "later@example.net", null));
        var first = await ScoreOfAsync(shopId, 889_002);
        Assert.Equal(1f, first.Features.GetProperty("avs_no_match").GetSingle());
        Assert.Contains("avs_no_match", Codes(first.Reasons));
        Assert.Equal("0006", await app.ScalarAsync("SELECT card_last4 FROM orders WHERE shop_id = $1 AND id = 889002", shopId));
        await Task.Delay(1500);
        Assert.Equal(1L, await app.ScalarAsync("SELECT count(*) FROM decisions WHERE shop_id = $1 AND order_id = 889002 AND kind = 'risk'", shopId));
    }

    /// <summary>
    /// An order and its transaction stored at the same moment in two transactions, neither seeing the other: the card waits,
    /// and the scorer gives it to the order before reading its features, so the order is scored once, with it. And an
    /// order whose score missed its card however it came (the card's queueing lost to the scorer's claim) is found by the
    /// sweep and scored again.
    /// </summary>
    [Fact]
    public async Task ACardStoredBesideItsOrder_IsScoredWithIt_AndTheSweepScoresAgainAnOrderWhoseScoreMissedItsCard()
    {
        const string shop = "risk-card-race.myshopify.com";
        var shopId = await OrdinaryStoreAsync(shop, 890_000);
        var now = app.Clock.GetUtcNow();

        // The order's writer: the order stored, its waiting card looked for (none yet), not committed.
        await using (var conn = await app.Db.OpenConnectionAsync())
        await using (var tx = await conn.BeginTransactionAsync())
        {
            await using (var order = new Npgsql.NpgsqlCommand("""
                INSERT INTO orders (shop_id, id, email, currency, total_price, browser_ip, billing_country, shipping_country, discount_codes, created_at, updated_at)
                VALUES ($1, 899001, 'side.by.side@example.net', 'USD', 30, '203.0.113.91', 'US', 'US', '', $2, $2)
                """, conn, tx))
            {
                order.Parameters.AddWithValue(shopId);
                order.Parameters.AddWithValue(now);
                await order.ExecuteNonQueryAsync();
            }
            await using (var none = new Npgsql.NpgsqlCommand(PluginApp.StoreData.StoreWriter.ApplyCardsSql(
                "SELECT shop_id, order_id FROM order_cards WHERE shop_id = $1 AND order_id = 899001"), conn, tx))
            {
                none.Parameters.AddWithValue(shopId);
                await none.ExecuteNonQueryAsync();
            }
            // Meanwhile its transaction's writer commits: it cannot see the order, so the card waits.
            await SendAsync(shop, "order_transactions/create", RiskOrders.Transaction(8_001, 899_001, "sale", "success", "400000", "0101", avs: "N", cvv: "N"));
            Assert.Equal(1L, await app.ScalarAsync("SELECT count(*) FROM order_cards WHERE shop_id = $1 AND order_id = 899001", shopId));
            foreach (var sql in new[] { "INSERT INTO risk_pending (shop_id, order_id, reason, queued_at) VALUES ($1, 899001, 'orders/create', now())",
                                        "SELECT pg_notify('risk_pending', $1::text)" })
            {
                await using var queue = new Npgsql.NpgsqlCommand(sql, conn, tx);
                queue.Parameters.AddWithValue(shopId);
                await queue.ExecuteNonQueryAsync();
            }
            await tx.CommitAsync();
        }
        var first = await ScoreOfAsync(shopId, 899_001);
        Assert.Equal(1f, first.Features.GetProperty("avs_no_match").GetSingle());
        Assert.Equal(1f, first.Features.GetProperty("cvv_no_match").GetSingle());
        Assert.Equal(0L, await app.ScalarAsync("SELECT count(*) FROM order_cards WHERE shop_id = $1", shopId));
        await Task.Delay(1500);
        Assert.Equal(1L, await app.ScalarAsync("SELECT count(*) FROM decisions WHERE shop_id = $1 AND order_id = 899001 AND kind = 'risk'", shopId));

        // A scored order whose card came while its score was being written, its queueing lost: the sweep finds it.
        await SendAsync(shop, "orders/create", RiskOrders.Order(899_002, now.AddMinutes(1), 30m, "203.0.113.92", "lost.queue@example.net", null));
        var before = await ScoreOfAsync(shopId, 899_002);
        Assert.Equal(0f, before.Features.GetProperty("cvv_no_match").GetSingle());
        await app.ScalarAsync("""
            UPDATE orders SET avs_result = 'Y', cvv_result = 'N', card_bin = '400000', card_last4 = '0102', card_received_at = $2
            WHERE shop_id = $1 AND id = 899002
            """, shopId, now.AddMinutes(-5)); // its transaction received before the score: the clock says nothing, the version does
        await app.Factory.Services.GetRequiredService<RiskScoringJob>().SweepAsync(CancellationToken.None);
        await WaitForAsync(shopId, "SELECT (features->>'cvv_no_match')::float8 = 1 FROM risk_scores WHERE shop_id = $1 AND order_id = $2", 899_002);
        Assert.Contains("cvv_no_match", Codes((await ScoreOfAsync(shopId, 899_002)).Reasons));
    }

    /// <summary>
    /// An edit whose transaction commits just after its order's scoring checked for edits: its queueing met the order's queue
    /// row still claimed and queued nothing, and until 5 Dec 2026 the order kept the score of what it no longer was. The
    /// minute's sweep finds the score no longer fits the order's version and scores it again; an order scored as it stands
    /// is left alone.
    /// </summary>
    [Fact]
    public async Task AnEditMissedByItsOrdersScoring_IsScoredAgainByTheSweep_AndAnOrderScoredAsItStandsIsLeftAlone()
    {
        const string shop = "risk-edit-race.myshopify.com";
        var shopId = await app.InstallShopAsync(shop);
        var now = app.Clock.GetUtcNow();
        await SendAsync(shop, "orders/create", RiskOrders.Order(909_001, now, 30m, "203.0.113.95", "edited.late@example.net", null));
        Assert.Equal(30f, (await ScoreOfAsync(shopId, 909_001)).Features.GetProperty("amount").GetSingle());
        // A total whose cents a score's figures cannot hold (they are single precision): its score never reads back as its total.
        await SendAsync(shop, "orders/create", RiskOrders.Order(909_002, now, 1_234_567.89m, "203.0.113.96", "large.order@example.net", null));
        await ScoreOfAsync(shopId, 909_002);
        var sweep = app.Factory.Services.GetRequiredService<RiskScoringJob>();
        // Scored as they stand: the sweep queues neither, whatever their figures round to.
        await sweep.SweepAsync(CancellationToken.None);
        await Task.Delay(1500);
        Assert.Equal(2L, await app.ScalarAsync("SELECT count(*) FROM decisions WHERE shop_id = $1 AND order_id IN (909001, 909002) AND kind = 'risk'", shopId));

        // Another order of the store scored at the total the edit will give (the edit must be matched with its own score).
        await SendAsync(shop, "orders/create", RiskOrders.Order(909_003, now, 950m, "203.0.113.97", "same.total@example.net", null));
        await ScoreOfAsync(shopId, 909_003);
        // The edit stored, its queueing lost as above.
        await app.ScalarAsync("""
            UPDATE orders SET total_price = 950, updated_at = updated_at + interval '1 minute' WHERE shop_id = $1 AND id = 909001
            """, shopId);
        await sweep.SweepAsync(CancellationToken.None);
        await WaitForAsync(shopId, "SELECT (features->>'amount')::float8 = 950 FROM risk_scores WHERE shop_id = $1 AND order_id = $2", 909_001);
        // And once scored again, left alone.
        await sweep.SweepAsync(CancellationToken.None);
        await Task.Delay(1500);
        Assert.Equal(2L, await app.ScalarAsync("SELECT count(*) FROM decisions WHERE shop_id = $1 AND order_id = 909001 AND kind = 'risk'", shopId));
        Assert.Equal(1L, await app.ScalarAsync("SELECT count(*) FROM decisions WHERE shop_id = $1 AND order_id = 909003 AND kind = 'risk'", shopId));
    }

    /// <summary>
    /// A chargeback whose label commits while its order is first scored: its queueing finds no score yet, and the scorer read
    /// the labels before it. The minute's sweep finds the score told Shopify otherwise than the labels say, and Shopify is
    /// told HIGH; until 6 Dec 2026 it never was.
    /// </summary>
    [Fact]
    public async Task AFraudLabelMissedByItsOrdersFirstScoring_IsToldToShopifyByTheSweep()
    {
        const string shop = "risk-label-race.myshopify.com";
        var shopId = await app.InstallShopAsync(shop);
        var now = app.Clock.GetUtcNow();
        const long id = 919_001;
        await SendAsync(shop, "orders/create", RiskOrders.Order(id, now, 30m, "203.0.113.99", "label.race@example.net", null));
        await WaitForAsync(shopId, "SELECT count(*) = 1 FROM decisions WHERE shop_id = $1 AND order_id = $2 AND kind = 'risk'", id);
        await app.DrainAsync(shopId);
        Assert.Equal("LOW", (await ScoreOfAsync(shopId, id)).Level);
        // The label as the dispute's delivery writes it, its queueing lost as above.
        await app.ScalarAsync("""
            INSERT INTO risk_labels (shop_id, order_id, source, fraud, labelled_at, detail)
            VALUES ($1, 919001, 'dispute', true, $2, 'Shopify Payments chargeback 91900: reason fraudulent, status needs_response')
            """, shopId, now);
        var sweep = app.Factory.Services.GetRequiredService<RiskScoringJob>();
        await sweep.SweepAsync(CancellationToken.None);
        await WaitForAsync(shopId, "SELECT count(*) = 2 FROM decisions WHERE shop_id = $1 AND order_id = $2 AND kind = 'risk'", id);
        await app.DrainAsync(shopId);

        var latest = app.Shopify.Admin.RiskAssessments($"gid://shopify/Order/{id}").Last();
        Assert.Equal("HIGH", latest["riskLevel"]!.GetValue<string>());
        Assert.StartsWith("Known fraud: Shopify Payments chargeback 91900", latest["facts"]!.AsArray()[0]!["description"]!.GetValue<string>());
        // Told, the sweep leaves it alone.
        await sweep.SweepAsync(CancellationToken.None);
        await Task.Delay(1500);
        Assert.Equal(2L, await app.ScalarAsync("SELECT count(*) FROM decisions WHERE shop_id = $1 AND order_id = 919001 AND kind = 'risk'", shopId));
    }

    [Fact]
    public async Task ActiveModelTrainedOnAnEarlierFeatureList_IsNotServed_AndOrdersAreScoredByThePrior()
    {
        const string shop = "risk-old-model.myshopify.com";
        var shopId = await OrdinaryStoreAsync(shop, 870_000);

        // A store model from before the builder's last feature was added, active as it would be after an upgrade.
        var schema = new TabularSchema(OrderFeatures.Names[..^1].Select(n => TabularFeature.Numeric(n, OrderFeatures.Describe(n))));
        var random = new Random(5);
        var examples = Enumerable.Range(0, 300)
            .Select(i => new TabularExample(schema.Row(Enumerable.Range(0, schema.Count).Select(_ => (object?)random.NextDouble()).ToArray()), i % 10 == 0))
            .ToList();
        using var model = new TabularTrainer(schema).Train(examples);
        using var artifact = new MemoryStream();
        model.Save(artifact);
        await using (var insert = app.Db.CreateCommand("""
            INSERT INTO models (shop_id, kind, version, status, status_reason, parameters, metrics, artifact, created_at, activated_at)
            VALUES ($1, 'risk', 1, 'active', 'first model', '{}', '{"TrainFraud": 200}', $2, now(), now())
            """))
        {
            insert.Parameters.AddWithValue(shopId);
            insert.Parameters.AddWithValue(artifact.ToArray());
            await insert.ExecuteNonQueryAsync();
        }

        await SendAsync(shop, "orders/create", RiskOrders.Order(879_001, app.Clock.GetUtcNow(), 640m, "203.0.113.61", "after.upgrade@example.net", null, shipping: "NG"));
        var (level, _, reasons, _) = await ScoreOfAsync(shopId, 879_001);

        Assert.Equal("HIGH", level);
        Assert.Null(await app.ScalarAsync("SELECT model_version FROM risk_scores WHERE shop_id = $1 AND order_id = 879001", shopId));
        Assert.DoesNotContain(Codes(reasons), c => c.StartsWith("model:", StringComparison.Ordinal));
    }

    private List<string> TagsAdded(string gid) => Tags("tagsAdd", gid);

    private List<string> TagsRemoved(string gid) => Tags("tagsRemove", gid);

    private List<string> Tags(string mutation, string gid) => app.Shopify.Admin.Mutations
        .Where(m => m.Mentions(mutation + "(") && m.Variables["id"]?.GetValue<string>() == gid)
        .SelectMany(m => m.Variables["tags"]!.AsArray().Select(t => t!.GetValue<string>())).ToList();

    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) Assert.Fail("Shopify did not receive the expected calls within 20 s");
            await Task.Delay(100);
        }
    }
}
