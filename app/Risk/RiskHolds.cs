using Hangfire;
using Npgsql;
using PluginApp.Data;
using PluginApp.Install;
using PluginApp.Jobs;
using PluginApp.Outbox;
using PluginApp.Shopify;
using PluginApp.StoreData;

namespace PluginApp.Risk;

/// <summary>The merchant's choice about holding HIGH orders' fulfillment, and who counts as a valued customer.</summary>
/// <param name="HoldHigh">Hold the fulfillment of orders the score puts at HIGH (off by default).</param>
/// <param name="ValuedMinOrders">A customer with at least this many earlier orders that stood (not cancelled, test, labelled fraud or
/// flagged and undecided, and placed at least <see cref="RiskScorer.ValuedAfterDays"/> days before) is valued (RiskScorer.Hold).</param>
/// <param name="ValuedMinSpend">Or with at least this much earlier spend, in the shop's currency.</param>
/// <param name="HoldValued">Hold a valued customer's HIGH order too (off by default: it goes to review, never to a hold).</param>
public sealed record RiskHoldSettings(bool HoldHigh, int ValuedMinOrders, decimal ValuedMinSpend, bool HoldValued)
{
    /// <summary>
    /// Off; valued from 5 earlier orders or 1,000 dollars' worth of earlier spend in the shop's currency (why: 0015_risk_actions.sql;
    /// the currency's round figure: <see cref="Shopify.Currency.RoundDefault"/>).
    /// </summary>
    public static RiskHoldSettings Default(string? currency) => new(false, 5, DefaultSpend(currency), false);

    /// <summary>The earlier spend that makes a customer valued when the merchant has not set one (a null <c>valued_min_spend</c>, migration 0083).</summary>
    public static decimal DefaultSpend(string? currency) => Shopify.Currency.RoundDefault(1000m, currency);

    /// <summary>The row's settings, or the defaults; a spend not set reads as the default in <paramref name="currency"/>.</summary>
    public static async Task<RiskHoldSettings> ReadAsync(NpgsqlDataSource db, long shopId, string? currency, CancellationToken ct)
    {
        await using var cmd = db.CreateCommand("SELECT hold_high, valued_min_orders, valued_min_spend, hold_valued FROM risk_settings WHERE shop_id = $1");
        cmd.Parameters.Add(Sql.Param(shopId));
        await using var r = await cmd.ExecuteReaderAsync(ct);
        return await r.ReadAsync(ct) ? Read(r, 0, currency) : Default(currency);
    }

    /// <summary>The four columns from <paramref name="i"/> on (hold_high, valued_min_orders, valued_min_spend, hold_valued).</summary>
    internal static RiskHoldSettings Read(NpgsqlDataReader r, int i, string? currency) =>
        new(r.GetBoolean(i), r.GetInt32(i + 1), r.IsDBNull(i + 2) ? DefaultSpend(currency) : r.GetDecimal(i + 2), r.GetBoolean(i + 3));
}

/// <summary>
/// Fulfillment holds on HIGH orders, after the score commits. The scorer records <c>to_hold</c> in the score's own
/// transaction; this reads the order's fulfillment orders from Shopify (a read, safe to repeat) and then, in one
/// transaction that re-checks the row, queues one <see cref="RiskActions.FulfillmentOrderHold"/> per open fulfillment
/// order (an idempotency key per fulfillment order, and the outbox's check before any resend, so each lands once).
/// A reviewer's approval records <c>to_release</c>; this reads our holds' ids and queues their release. Either waits until
/// the order's earlier hold and release calls have gone out: a release queued before its hold landed would find nothing to
/// release, and a hold read while a release is on its way finds ours still there (until 5 Dec 2026 it then queued nothing,
/// said "nothing open to hold", and the release that went out next left a HIGH order unheld).
/// </summary>
public sealed class RiskHolds(NpgsqlDataSource db, ShopLookup shops, AdminGraphQLClient shopify, OutboxScheduler outbox, TimeProvider clock,
    ILogger<RiskHolds> logger)
{
    public const string ToHold = "to_hold", Held = "held", NotHeldValued = "not_held_valued", NotHeldNoneOpen = "not_held_none_open", ToRelease = "to_release",
        Released = "released";

    /// <summary>Why a hold is going or gone (<c>release_reason</c>): a reviewer approved the order, or a score took it down to LOW.</summary>
    public const string Approved = "approved", LowScore = "low_score";

    /// <summary>
    /// $1 shop, $2 order, $3 now: our hold on the order is to go, when a reviewer approves it or a new score takes it down to
    /// LOW (out of the queue, where nobody would approve it). A hold not placed yet has nothing in Shopify to release; a
    /// placed one is released by the hold job (it needs our hold's id).
    /// </summary>
    private const string Release = """
        UPDATE risk_holds SET state = CASE state WHEN 'held' THEN 'to_release' ELSE 'released' END, updated_at = $3,
        """;

    /// <summary><see cref="Release"/> on a reviewer's approval, whatever labels say: it replaces their label.</summary>
    internal const string ReleaseApprovedSql = Release + """
          release_reason = 'approved'
        WHERE shop_id = $1 AND order_id = $2 AND state IN ('to_hold', 'held')
        """;

    /// <summary>
    /// <see cref="Release"/> for a new score at LOW: not when any source labels the order as fraud (a reviewer marked it,
    /// a chargeback came), whose goods must not ship.
    /// </summary>
    internal const string ReleaseUnlessFraudSql = Release + """
          release_reason = 'low_score'
        WHERE shop_id = $1 AND order_id = $2 AND state IN ('to_hold', 'held')
          AND NOT EXISTS (SELECT 1 FROM risk_labels l WHERE l.shop_id = $1 AND l.order_id = $2 AND l.fraud)
        """;

    /// <summary>
    /// $1 shop, $2 order, $3 now: a reviewer marked the order as fraud, whose goods must not ship. A release still waiting is
    /// called off (our hold stays); one already gone holds the order anew (a new decision, so new calls' keys). Until 5 Dec
    /// 2026 an approval followed by a fraud verdict still released the hold. A valued customer's HIGH order, left unheld by
    /// the merchant's rule, is held now: the rule spares good customers a wait, not orders a reviewer found to be fraud
    /// (until 6 Dec 2026 it stayed unheld and could ship).
    /// </summary>
    internal const string HoldOnFraudSql = """
        UPDATE risk_holds SET state = CASE state WHEN 'to_release' THEN 'held' ELSE 'to_hold' END,
          decided_at = CASE state WHEN 'to_release' THEN decided_at ELSE $3 END, release_reason = NULL, updated_at = $3
        WHERE shop_id = $1 AND order_id = $2 AND state IN ('to_release', 'released', 'not_held_valued')
        """;

    /// <summary>Works through the shop's holds and releases waiting for a read. Returns how many outbox calls were queued.</summary>
    public async Task<int> RunShopAsync(long shopId, CancellationToken ct)
    {
        var due = new List<(long OrderId, string State)>();
        await using (var cmd = db.CreateCommand("""
            SELECT h.order_id, h.state FROM risk_holds h
            WHERE h.shop_id = $1 AND h.state IN ('to_hold', 'to_release') AND NOT EXISTS (
                SELECT 1 FROM outbox_messages m WHERE m.shop_id = h.shop_id
                  AND (m.idempotency_key LIKE 'risk-hold:' || h.order_id || ':%' OR m.idempotency_key LIKE 'risk-release:' || h.order_id || ':%')
                  AND m.completed_at IS NULL AND m.failed_at IS NULL)
            ORDER BY h.decided_at
            """))
        {
            cmd.Parameters.Add(Sql.Param(shopId));
            await using var r = await cmd.ExecuteReaderAsync(ct);
            while (await r.ReadAsync(ct)) due.Add((r.GetInt64(0), r.GetString(1)));
        }
        if (due.Count == 0) return 0;
        var shop = await shops.ReachableDomainAsync(shopId, ct);
        if (shop is null) return 0; // uninstalled or revoked: the rows wait
        var calls = 0;
        foreach (var (orderId, state) in due)
        {
            try
            {
                var data = await shopify.ExecuteAsync(shop, RiskActions.FulfillmentOrdersQuery, new { id = Gid.Of("Order", orderId) }, ct, expectedCost: 25);
                calls += await ApplyAsync(shopId, orderId, state, RiskActions.FulfillmentOrders(data), ct);
            }
            catch (Exception e) when (e is ShopifyGraphQLException or HttpRequestException or TaskCanceledException or TokenEndpointException
                                          or ShopTokenRevokedException or ShopNotConnectedException or System.Text.Json.JsonException
                                          or KeyNotFoundException or InvalidOperationException && !ct.IsCancellationRequested)
            {
                // The read failed: nothing was queued, and the sweep reads again within a minute.
                logger.LogInformation("Shop {Shop}: reading order {Order}'s fulfillment orders failed ({Error}); the sweep tries again", shop, orderId, e.Message);
            }
        }
        if (calls > 0) outbox.Kick(shopId);
        return calls;
    }

    private async Task<int> ApplyAsync(long shopId, long orderId, string state, IReadOnlyList<RiskActions.FulfillmentOrder> fulfillmentOrders,
        CancellationToken ct)
    {
        await using var conn = await db.OpenConnectionAsync(ct);
        await using var tx = await conn.BeginTransactionAsync(ct);
        // Why lock the row: a reviewer's approval may change it while Shopify answered; the later writer sees the earlier's state.
        // Why the hold decision's time in the calls' keys: an order released at LOW and raised to HIGH again is held anew, and
        // keys of the order and fulfillment order alone would take the second hold (and its release) for the first.
        long round;
        await using (var check = new NpgsqlCommand("SELECT state, decided_at FROM risk_holds WHERE shop_id = $1 AND order_id = $2 FOR UPDATE", conn, tx))
        {
            check.Parameters.Add(Sql.Param(shopId));
            check.Parameters.Add(Sql.Param(orderId));
            await using var r = await check.ExecuteReaderAsync(ct);
            if (!await r.ReadAsync(ct) || r.GetString(0) != state) return 0;
            round = r.GetFieldValue<DateTimeOffset>(1).UtcTicks;
        }
        var now = clock.GetUtcNow();
        await using var batch = new NpgsqlBatch(conn, tx);
        var store = new StoreWriter(batch, shopId);
        var calls = new List<OutboxCall>();
        string next;
        var ids = fulfillmentOrders.Select(f => f.Id).ToArray();
        if (state == ToHold)
        {
            // Open, scheduled, or already on someone else's hold: each takes ours too (closed or cancelled ones have nothing to ship).
            var open = fulfillmentOrders.Where(f => f.Status is "OPEN" or "SCHEDULED" or "ON_HOLD").ToList();
            foreach (var fo in open.Where(f => !f.Holds.Any(h => h.IsOurs)))
                calls.Add(new OutboxCall(RiskActions.FulfillmentOrderHold, fo.Id, new
                {
                    id = fo.Id,
                    fulfillmentHold = new
                    {
                        reason = "HIGH_RISK_OF_FRAUD", handle = RiskActions.HoldHandle, notifyMerchant = false,
                        reasonNotes = "Held by PluginApp order risk: the order scored HIGH. Approving it in the review queue releases this hold.",
                    },
                }, $"risk-hold:{orderId}:{fo.Id}:{round}"));
            // Ours already on a fulfillment order (a release that failed for good left it): held, and released on approval.
            // Nothing the app may hold (fulfilled or closed, or with a service the app's permission does not cover): said so, not "held".
            var kept = open.Where(f => f.Holds.Any(h => h.IsOurs)).Select(f => f.Id).ToHashSet();
            next = calls.Count > 0 || kept.Count > 0 ? Held : NotHeldNoneOpen;
            ids = fulfillmentOrders.Where(f => kept.Contains(f.Id) || calls.Any(c => c.ResourceKey == f.Id)).Select(f => f.Id).ToArray();
        }
        else
        {
            foreach (var fo in fulfillmentOrders)
            {
                var ours = fo.Holds.Where(h => h.IsOurs).Select(h => h.Id).ToArray();
                if (ours.Length > 0)
                    calls.Add(new OutboxCall(RiskActions.FulfillmentOrderReleaseHold, fo.Id, new { id = fo.Id, holdIds = ours },
                        $"risk-release:{orderId}:{fo.Id}:{round}"));
            }
            next = Released;
        }
        foreach (var call in calls) OutboxWriter.Enqueue(store, call, now);
        store.Add("UPDATE risk_holds SET state = $3, fulfillment_orders = CASE WHEN $3 = 'held' THEN $4 ELSE fulfillment_orders END, updated_at = $5 WHERE shop_id = $1 AND order_id = $2",
            shopId, orderId, next, ids, now);
        await batch.ExecuteNonQueryAsync(ct);
        await tx.CommitAsync(ct);
        return calls.Count;
    }
}

/// <summary>Runs a shop's holds on Hangfire after a score or an approval; a sweep every minute finds what a kick missed or a failed read left.</summary>
public sealed class RiskHoldJob(RiskHolds holds, JobLocks locks, NpgsqlDataSource db, RiskHoldScheduler scheduler)
{
    [AutomaticRetry(Attempts = 0)]
    public async Task RunShopAsync(long shopId, CancellationToken ct)
    {
        await using var lease = await locks.TryAcquireAsync($"risk-holds:{shopId}", ct);
        if (lease is null) return; // running elsewhere; what it misses, the sweep finds
        await holds.RunShopAsync(shopId, ct);
    }

    [AutomaticRetry(Attempts = 0)]
    public async Task SweepAsync(CancellationToken ct)
    {
        await using var cmd = db.CreateCommand("SELECT DISTINCT shop_id FROM risk_holds WHERE state IN ('to_hold', 'to_release')");
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct)) scheduler.Kick(r.GetInt64(0));
    }
}

public sealed class RiskHoldScheduler(IBackgroundJobClient jobs)
{
    public void Kick(long shopId) => jobs.Enqueue<RiskHoldJob>(j => j.RunShopAsync(shopId, CancellationToken.None));
}
