using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using PluginApp.Risk;
using PluginApp.Tests.Infrastructure;
using PluginApp.Tests.Outbox;

namespace PluginApp.Tests.Risk;

/// <summary>Scoring in a database of its own, whose orders table PostgreSQL has never analyzed.</summary>
public sealed class RiskStatisticsTests(NoSchedulerAppFixture app) : IClassFixture<NoSchedulerAppFixture>
{
    /// <summary>
    /// A new deployment's first sale (or a restored database): thousands of orders in a table PostgreSQL has no statistics
    /// of. It then guessed "same email in the 30 days before" as cheap by the store's time index as by the email's, and each
    /// order's features walked every order of the store's month (400 orders: 2.5 s against 40 ms, 3,200,000 rows read).
    /// The scorer must bring the statistics in first, so each order's lookups read that email's and address's orders only.
    /// </summary>
    [Fact]
    public async Task Scoring_TheFirstOrdersOfATableNeverAnalyzed_LooksEachEmailUpByItsOwnOrders()
    {
        const int orders = 15_000, batch = 400;
        var shopId = await app.InstallShopAsync("risk-never-analyzed.myshopify.com");
        var now = app.Clock.GetUtcNow();
        await using var conn = await app.Db.OpenConnectionAsync();
        async Task<long> Exec(string sql, params object[] values)
        {
            await using var cmd = new NpgsqlCommand(sql, conn);
            foreach (var v in values) cmd.Parameters.AddWithValue(v);
            return await cmd.ExecuteNonQueryAsync();
        }
        // Why autovacuum off for this database's orders: it could analyze them before the scorer does, on its own schedule.
        await Exec("ALTER TABLE orders SET (autovacuum_enabled = off)");
        Assert.Equal(orders, await Exec("""
            INSERT INTO orders (shop_id, id, email, currency, total_price, browser_ip, created_at, updated_at)
            SELECT $1, 981000000 + i, 'shopper' || i || '@example.com', 'USD', 20 + i % 40, '10.0.' || (i % 2000 / 250) || '.' || (i % 250),
                   $2 - interval '2 minutes' * ($3 - i), $2
            FROM generate_series(1, $3) i
            """, shopId, now, orders));
        Assert.Equal(batch, await Exec("""
            INSERT INTO risk_pending (shop_id, order_id, reason, queued_at)
            SELECT $1, 981000000 + i, 'created', $2 FROM generate_series($3 - $4 + 1, $3) i
            """, shopId, now, orders, batch));
        // This connection's counts of the inserts published now, as a busy server has them within a second.
        await Exec("SELECT pg_stat_force_next_flush()");

        Assert.Equal(batch, await app.Factory.Services.GetRequiredService<RiskScorer>().ScoreShopAsync(shopId, CancellationToken.None));

        var ids = Enumerable.Range(orders - batch + 1, batch).Select(i => 981_000_000L + i).ToArray();
        await QueryPlans.AssertReadsAtMostAsync(conn, $"building the features of {batch} orders", 20 * batch, OrderFeatures.Query, [shopId, ids]);
    }

    /// <summary>
    /// A sale's burst: thousands of orders queued for scoring faster than they are scored. Each claim of a batch must read
    /// its batch, not the queue: until 5 Dec 2026 it joined every queued order to the shop's orders and sorted them all
    /// (100-175 ms a claim at 18,000 queued), so the scorer fell further behind the more it had to do.
    /// </summary>
    [Fact]
    public async Task Claim_OfABatchFromALongQueue_ReadsItsBatch_NotTheQueue()
    {
        const int queued = 6_000;
        var shopId = await app.InstallShopAsync("risk-long-queue.myshopify.com");
        var now = app.Clock.GetUtcNow();
        await using var conn = await app.Db.OpenConnectionAsync();
        await using var tx = await conn.BeginTransactionAsync(); // the queue and the claim are rolled back
        async Task Exec(string sql, params object[] values)
        {
            await using var cmd = new NpgsqlCommand(sql, conn, tx);
            foreach (var v in values) cmd.Parameters.AddWithValue(v);
            await cmd.ExecuteNonQueryAsync();
        }
        await Exec("""
            INSERT INTO orders (shop_id, id, email, currency, total_price, created_at, updated_at)
            SELECT $1, 982000000 + i, 'burst' || i || '@example.com', 'USD', 30, $2 - interval '1 second' * ($3 - i), $2
            FROM generate_series(1, $3) i
            """, shopId, now, queued);
        await Exec("""
            INSERT INTO risk_pending (shop_id, order_id, reason, queued_at)
            SELECT $1, 982000000 + i, 'created', $2 - interval '1 second' * ($3 - i) FROM generate_series(1, $3) i
            """, shopId, now, queued);
        await Exec("ANALYZE risk_pending");
        await Exec("ANALYZE orders");
        await QueryPlans.AssertReadsAtMostAsync(conn, $"a claim of {RiskScorer.BatchSize} from {queued} queued", 2 * RiskScorer.BatchSize,
            RiskScorer.ClaimSql, [shopId, RiskScorer.BatchSize], tx);
    }
}

/// <summary>
/// Scoring after thousands of scores PostgreSQL has never analyzed, in a database and an app of its own: the app looks at a
/// table's statistics at most every 10 s, so a test of the class above that scored first would have it skip the look.
/// </summary>
public sealed class RiskScoresStatisticsTests(NoSchedulerAppFixture app) : IClassFixture<NoSchedulerAppFixture>
{
    /// <summary>
    /// A deployment's first busy hour: thousands of orders scored since PostgreSQL last analyzed the scores (or never did).
    /// Each batch's look at its orders' earlier scores (to keep a reviewer's decision, to tell Shopify only a changed level)
    /// must look them up by key: on statistics from a nearly empty table it read every score of the store (30,000 read, 73
    /// ms a batch in the ingest benchmark of 5 Dec 2026, against 1.1 ms), so scoring got slower the more it had scored.
    /// </summary>
    [Fact]
    public async Task Scoring_AfterThousandsOfScoresNeverAnalyzed_LooksTheBatchsEarlierScoresUpByKey()
    {
        const int scored = 15_000, batch = 400;
        var shopId = await app.InstallShopAsync("risk-scores-never-analyzed.myshopify.com");
        var now = app.Clock.GetUtcNow();
        await using var conn = await app.Db.OpenConnectionAsync();
        async Task Exec(string sql, params object[] values)
        {
            await using var cmd = new NpgsqlCommand(sql, conn);
            foreach (var v in values) cmd.Parameters.AddWithValue(v);
            await cmd.ExecuteNonQueryAsync();
        }
        // Why autovacuum off for this database's scores: it could analyze them before the scorer does, on its own schedule.
        await Exec("ALTER TABLE risk_scores SET (autovacuum_enabled = off)");
        await Exec("""
            INSERT INTO orders (shop_id, id, email, currency, total_price, created_at, updated_at)
            SELECT $1, 983000000 + i, 'scored' || i || '@example.com', 'USD', 25, $2 - interval '1 minute' * ($3 - i), $2
            FROM generate_series(1, $3) i
            """, shopId, now, scored + batch);
        // Each score as wide as a real one: its features by name, and its reasons in words.
        await Exec("""
            INSERT INTO risk_scores (shop_id, order_id, score, level, prior_weight, reasons, features, queued_at, scored_at)
            SELECT $1, 983000000 + i, 0.01, 'LOW', 1,
                   jsonb_build_array(jsonb_build_object('text', 'Returning customer: ' || i % 7 || ' earlier orders', 'weight', -0.4)),
                   (SELECT jsonb_object_agg('feature_number_' || k, (i + k) * 0.37) FROM generate_series(1, 36) k), $2, $2
            FROM generate_series(1, $3) i
            """, shopId, now, scored);
        await Exec("""
            INSERT INTO risk_pending (shop_id, order_id, reason, queued_at)
            SELECT $1, 983000000 + i, 'created', $2 FROM generate_series($3 + 1, $3 + $4) i
            """, shopId, now, scored, batch);
        // This connection's counts of the inserts published now, as a busy server has them within a second.
        await Exec("SELECT pg_stat_force_next_flush()");

        Assert.Equal(batch, await app.Factory.Services.GetRequiredService<RiskScorer>().ScoreShopAsync(shopId, CancellationToken.None));

        var ids = Enumerable.Range(scored + 1, batch).Select(i => 983_000_000L + i).ToArray();
        await QueryPlans.AssertReadsAtMostAsync(conn, $"the earlier scores of {batch} orders", 2 * batch, RiskScorer.PreviousScoresSql, [shopId, ids]);
    }
}
