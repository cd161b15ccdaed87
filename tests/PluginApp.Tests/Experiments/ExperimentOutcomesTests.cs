using System.Net;
using System.Text.Json.Nodes;
using PluginApp.Experiments;
using PluginApp.Tests.Infrastructure;
using PluginApp.Webhooks;

namespace PluginApp.Tests.Experiments;

/// <summary>An order becomes an outcome of each arm its shopper saw, found from the shopper alone.</summary>
public sealed class ExperimentOutcomesTests(AppFixture app) : IClassFixture<AppFixture>
{
    /// <summary>
    /// A store whose experiments have seen 20,000 other visitors: an order is an outcome of its visitor's arm where the
    /// visitor was exposed, else of its customer's, and writing it reads the shopper's exposures, not the store's.
    /// </summary>
    [Fact]
    public async Task AnOrder_IsAnOutcomeOfItsVisitorsAndItsCustomersArms_FoundWithoutReadingTheStoresOtherVisitors()
    {
        const string shop = "experiment-outcomes.myshopify.com";
        const long customer = 7_700_001, order = 7_700_101;
        var shopId = await app.InstallShopAsync(shop);
        await app.CountAsync("""
            INSERT INTO experiment_exposures (shop_id, experiment, unit, arm, customer_id, first_at)
            SELECT $1, e, 'v:' || md5(i::text), CASE WHEN i % 2 = 0 THEN 'control' ELSE 'treatment' END, NULL,
                   timestamptz '2026-07-01T12:00:00Z' - interval '1 minute' * (i % 40000)
            FROM generate_series(1, 10000) i, unnest(ARRAY['upsell_holdout', 'cart_offers']) e
            """, shopId);
        var visitor = Assignment.VisitorHash(shop, "outcome-shopper")!;
        // Seen as a visitor in the holdout's treatment, and as the customer in its control (an earlier visit) and in the cart
        // offers' policy arm: the visitor's arm wins where both were seen.
        await app.CountAsync("""
            INSERT INTO experiment_exposures (shop_id, experiment, unit, arm, customer_id, first_at) VALUES
              ($1, 'upsell_holdout', 'v:' || $2, 'treatment', NULL, '2026-07-01T12:00:00Z'),
              ($1, 'upsell_holdout', 'c:' || $3::text, 'control', $3, '2026-06-20T12:00:00Z'),
              ($1, 'cart_offers', 'c:' || $3::text, 'policy', $3, '2026-06-20T12:00:00Z')
            """, shopId, visitor, customer);
        await app.CountAsync("ANALYZE experiment_exposures");

        var body = ShopifyPayloads.Order(order, customerId: customer);
        body["note_attributes"] = new JsonArray(new JsonObject { ["name"] = "_pluginapp_visitor", ["value"] = "outcome-shopper" });
        Assert.Equal(HttpStatusCode.OK, (await app.SendWebhookAsync("orders/create", shop, body.ToJsonString())).StatusCode);

        Assert.Equal(2, await app.CountAsync("SELECT count(*) FROM experiment_outcomes WHERE shop_id = $1 AND order_id = $2", shopId, order));
        Assert.Equal("treatment", await app.ScalarAsync(
            "SELECT arm FROM experiment_outcomes WHERE shop_id = $1 AND order_id = $2 AND experiment = 'upsell_holdout'", shopId, order));
        Assert.Equal("policy", await app.ScalarAsync(
            "SELECT arm FROM experiment_outcomes WHERE shop_id = $1 AND order_id = $2 AND experiment = 'cart_offers'", shopId, order));

        // A segment of nine orders of other shoppers, planned as a webhook batch plans it: each order's lookups read its own rows.
        var rows = Enumerable.Range(1, 9).Select(i => new object?[]
        {
            shopId, order + i, Assignment.VisitorHash(shop, $"other-{i}"), customer + i, 30m,
            new DateTimeOffset(2026, 7, 2, 16, 0, 0, TimeSpan.Zero), 30m, 0m, null,
        }).ToList();
        var statement = ExperimentOutcomes.Outcomes.Command(rows, rows.Select((_, i) => new object?[] { (long)i + 1, 19000L, 1 }).ToList());
        await using var conn = await app.Db.OpenConnectionAsync();
        await using var tx = await conn.BeginTransactionAsync();
        foreach (var setting in IngestBatcher.PlanSettings)
            await using (var set = new Npgsql.NpgsqlCommand(setting, conn, tx)) await set.ExecuteNonQueryAsync();
        var (read, plan) = await QueryPlans.MostRowsReadAsync(conn, statement.CommandText,
            statement.Parameters.Select(p => p.Value!).ToArray(), tx);
        Assert.False(double.IsNaN(read), plan);
        Assert.True(read <= 100, $"the outcomes of nine orders read {read} rows in a step:\n{plan}");
    }

    /// <summary>
    /// The Experiments page nets each outcome's refunds out: in a store of 3,000 refunds, an outcome's are found by its
    /// order, not by reading every refund of the store for each of the experiment's 300 outcomes.
    /// </summary>
    [Fact]
    public async Task AnExperimentsResults_NetOutEachOrdersRefunds_FoundByTheOrder()
    {
        var shopId = await app.InstallShopAsync("experiment-refunds.myshopify.com");
        var at = new DateTimeOffset(2026, 7, 1, 12, 0, 0, TimeSpan.Zero);
        await app.CountAsync("""
            INSERT INTO experiment_outcomes (shop_id, experiment, order_id, arm, unit, revenue, ordered_at)
            SELECT $1, 'upsell_holdout', 7710000 + i, CASE WHEN i % 2 = 0 THEN 'holdout' ELSE 'model' END, 'v:refund-' || i, 40, $2 + interval '1 minute' * i
            FROM generate_series(1, 300) i
            """, shopId, at);
        await app.CountAsync("""
            INSERT INTO refunds (shop_id, id, order_id, amount, created_at)
            SELECT $1, 7720000 + i, 7730000 + i, 5, $2 FROM generate_series(1, 3000) i
            UNION ALL SELECT $1, 7719998, 7710001, 10, $2 UNION ALL SELECT $1, 7719999, 7710001, 5, $2
            """, shopId, at);
        await app.CountAsync("ANALYZE experiment_outcomes; ANALYZE refunds");
        object[] window = [shopId, "upsell_holdout", at, at.AddDays(1)];

        await using var conn = await app.Db.OpenConnectionAsync();
        var refunded = new Dictionary<string, double>();
        await using (var cmd = new Npgsql.NpgsqlCommand(ExperimentResults.OutcomesSql, conn))
        {
            foreach (var p in window) cmd.Parameters.AddWithValue(p);
            await using var r = await cmd.ExecuteReaderAsync();
            while (await r.ReadAsync()) refunded[r.GetString(0)] = r.GetDouble(5);
        }
        Assert.Equal(300, refunded.Count);
        Assert.Equal(15, refunded["v:refund-1"]);
        Assert.Equal(0, refunded["v:refund-2"]);

        var (read, plan) = await QueryPlans.MostRowsReadAsync(conn, ExperimentResults.OutcomesSql, window);
        Assert.False(double.IsNaN(read), plan);
        // Every refund of the store for each outcome: 900,000.
        Assert.True(read <= 1000, $"the outcomes read {read} rows in a step:\n{plan}");
    }
}
