using System.Globalization;
using Microsoft.Extensions.Options;
using Npgsql;
using PluginApp.Data;
using PluginApp.Jobs;
using PluginApp.Outbox;
using PluginApp.StoreData;
using PluginApp.Admin.Switches;

namespace PluginApp.Intent;

/// <summary>The abandonment signal ("Abandonment" section). Validated at start.</summary>
public sealed class AbandonmentOptions
{
    public const string Section = "Abandonment";

    /// <summary>Purchase intent from which an open checkout is worth a recovery message.</summary>
    public double MinScore { get; set; } = 0.5;

    /// <summary>A checkout untouched this long counts as abandoned (before that the shopper may still be paying).</summary>
    public TimeSpan After { get; set; } = TimeSpan.FromHours(1);

    /// <summary>Older than this, the signal is cleared: recovery flows act within a few days.</summary>
    public TimeSpan Until { get; set; } = TimeSpan.FromDays(3);

    /// <summary>The customer tag; it starts with the churn tags' prefix, so it is recognisably ours.</summary>
    public string Tag { get; set; } = "pluginapp:checkout-recoverable";

    public string MetafieldNamespace { get; set; } = "pluginapp";
}

internal sealed class AbandonmentOptionsValidator : IValidateOptions<AbandonmentOptions>
{
    public ValidateOptionsResult Validate(string? name, AbandonmentOptions o)
    {
        var f = new List<string>();
        if (o.MinScore is <= 0 or >= 1) f.Add($"Abandonment:MinScore {o.MinScore} must be between 0 and 1.");
        if (o.After < TimeSpan.FromMinutes(5) || o.After >= o.Until) f.Add($"Abandonment:After {o.After} must be at least 5 minutes and below Until {o.Until}.");
        if (o.Until > TimeSpan.FromDays(30)) f.Add($"Abandonment:Until {o.Until} must be at most 30 days.");
        if (string.IsNullOrWhiteSpace(o.Tag) || o.Tag.Contains(',') || !o.Tag.StartsWith("pluginapp:", StringComparison.Ordinal) || o.Tag.Length > 40)
            f.Add($"Abandonment:Tag '{o.Tag}' must start with 'pluginapp:', hold no comma and be at most 40 characters.");
        if (string.IsNullOrWhiteSpace(o.MetafieldNamespace) || o.MetafieldNamespace.Length is < 3 or > 255) f.Add("Abandonment:MetafieldNamespace must be 3 to 255 characters.");
        return f.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(f);
    }
}

/// <summary>
/// Open checkouts scored for the merchant's recovery flows (Shopify Email, Klaviyo, Flow): every half hour, each shop with
/// an active purchase-intent model scores its checkouts left untouched for an hour (and at most three days old) whose
/// customer accepts marketing; one scoring at least <see cref="AbandonmentOptions.MinScore"/> gets the customer the tag
/// and the metafield <c>pluginapp.checkout_intent</c> (the score) through the outbox, once per checkout. When no open
/// signal is left for the customer (the checkout completed, became an order, or aged out) the tag is removed and the
/// metafield set to 0. Without a model nothing is signalled: no guess stands in for the score.
/// </summary>
public sealed class AbandonmentSignal(NpgsqlDataSource db, IntentScorer scorer, AiFeatureSwitches switches, OutboxScheduler outbox, JobLocks locks, IOptions<AbandonmentOptions> options,
    TimeProvider clock, ILogger<AbandonmentSignal> logger)
{
    /// <param name="Linked">The customer the cart block saw with the checkout's cart (the one training reads its history by), if any.</param>
    internal sealed record Open(string Token, long CustomerId, double Value, int Items, int Products, DateTimeOffset Created, DateTimeOffset At,
        string? CartToken, long? Linked);

    /// <summary>
    /// Whether an order came of a checkout: one carries its token, or its customer ordered since it was created. Two
    /// lookups, each through its index (orders_checkout_token_idx, orders_customer_time_idx): as one condition with an OR,
    /// each checkout read all of the store's orders (10,000,000 rows and 0.48 s for 200 open checkouts in a store of
    /// 50,000 orders, every half hour; 1.3 ms now).
    /// </summary>
    private const string Ordered = """
        (EXISTS (SELECT 1 FROM orders x WHERE x.shop_id = k.shop_id AND x.checkout_token = k.token)
         OR EXISTS (SELECT 1 FROM orders x WHERE x.shop_id = k.shop_id AND x.customer_id = k.customer_id AND x.created_at >= k.created_at))
        """;

    /// <summary>
    /// $1 shop, $2 and $3 the window of last updates: the open checkouts of customers who accept marketing, not yet
    /// signalled. Each is read as its cart where the cart is stored, as training reads carts: the cart's lines (value,
    /// items, products), open from the cart's creation to its last update. Until 6 Dec 2026 the checkout's own figures
    /// were read (its subtotal, open since the checkout began), a cart the model never saw in training. A checkout whose
    /// cart is not stored (no cart webhook came) is read from its own lines.
    /// </summary>
    internal static readonly string OpenSql = $"""
        SELECT k.token, k.customer_id, coalesce(cl.value, k.subtotal_price, k.total_price, 0)::float8,
               coalesce(cl.items, (SELECT sum(quantity) FROM checkout_lines l WHERE l.shop_id = k.shop_id AND l.checkout_token = k.token), 0)::int,
               coalesce(cl.products, (SELECT count(DISTINCT product_id) FROM checkout_lines l WHERE l.shop_id = k.shop_id AND l.checkout_token = k.token), 0)::int,
               coalesce(cl.created_at, k.created_at, k.updated_at), coalesce(cl.at, k.updated_at, k.created_at), k.cart_token,
               (SELECT w.customer_id FROM ({IntentData.CartLinks}) w WHERE w.cart_token = k.cart_token
                  AND NOT EXISTS (SELECT 1 FROM customers u WHERE u.shop_id = $1 AND u.id = w.customer_id AND u.redacted_at IS NOT NULL)
                ORDER BY w.seen_at LIMIT 1)
        FROM checkouts k JOIN customers c ON c.shop_id = k.shop_id AND c.id = k.customer_id
        LEFT JOIN LATERAL (
          SELECT coalesce(t.created_at, t.updated_at) AS created_at, coalesce(t.updated_at, t.created_at) AS at, l.items, l.products, l.value
          FROM carts t CROSS JOIN LATERAL (SELECT {IntentData.CartLineFigures} FROM cart_lines x WHERE x.shop_id = t.shop_id AND x.cart_token = t.token) l
          WHERE t.shop_id = k.shop_id AND t.token = k.cart_token AND l.items > 0) cl ON true
        WHERE k.shop_id = $1 AND k.completed_at IS NULL AND c.accepts_marketing AND NOT {StoreWriter.CustomerGone("c")}
          AND coalesce(k.updated_at, k.created_at) BETWEEN $2 AND $3
          AND NOT {Ordered}
          AND NOT EXISTS (SELECT 1 FROM checkout_signals s WHERE s.shop_id = k.shop_id AND s.checkout_token = k.token)
        """;

    /// <summary>$1 shop, $2 now, $3 the oldest last update still open: clears the signals that are over, returning them.</summary>
    internal const string ClearSql = $"""
        UPDATE checkout_signals s SET cleared_at = $2
        FROM checkouts k
        WHERE s.shop_id = $1 AND s.cleared_at IS NULL AND k.shop_id = s.shop_id AND k.token = s.checkout_token
          AND (k.completed_at IS NOT NULL OR coalesce(k.updated_at, k.created_at) < $3 OR {Ordered})
        RETURNING s.checkout_token, s.customer_id
        """;

    /// <summary>
    /// The open checkouts of customers who accept marketing, each read as training reads its cart (<see cref="IntentData"/>):
    /// its history through the customer the cart block saw with the cart (<see cref="Open.Linked"/>), a guest's otherwise.
    /// </summary>
    internal async Task<List<(Open Checkout, Ml.Intent.CartSnapshot Snapshot)>> OpenSnapshotsAsync(long shopId, DateTimeOffset now, CancellationToken ct)
    {
        var o = options.Value;
        var open = new List<Open>();
        await using (var cmd = db.CreateCommand(OpenSql))
        {
            cmd.Parameters.Add(Sql.Param(shopId));
            cmd.Parameters.Add(Sql.Param(now - o.Until));
            cmd.Parameters.Add(Sql.Param(now - o.After));
            await using var r = await cmd.ExecuteReaderAsync(ct);
            while (await r.ReadAsync(ct))
                open.Add(new Open(r.GetString(0), r.GetInt64(1), r.GetDouble(2), r.GetInt32(3), r.GetInt32(4), r.GetFieldValue<DateTimeOffset>(5), r.GetFieldValue<DateTimeOffset>(6),
                    r.IsDBNull(7) ? null : r.GetString(7), r.IsDBNull(8) ? null : r.GetInt64(8)));
        }
        var shop = await IntentData.StoreAsync(db, shopId, now, ct);
        var snapshots = new List<(Open Checkout, Ml.Intent.CartSnapshot Snapshot)>();
        foreach (var c in open)
        {
            // Why the storefront's customer, not the checkout's: training reads a cart's history through the customer the cart
            // block saw with it, and a guest's cart as a guest's; until 6 Dec 2026 the sweep read every checkout's customer,
            // a place in the features the model never learnt from (the checkout's customer is still the one tagged).
            var (orders, abandoned) = await IntentData.CustomerAsync(db, shopId, c.Linked, c.At, c.CartToken, c.Token, ct);
            snapshots.Add((c, IntentData.Snapshot(c.Value, c.Items, c.Products, c.Created, c.At, orders, abandoned, shop)));
        }
        return snapshots;
    }

    public async Task SweepAsync(CancellationToken ct)
    {
        await using var held = await locks.TryAcquireAsync("abandonment-sweep", ct);
        if (held is null) return;
        var shops = new List<long>();
        await using (var cmd = db.CreateCommand("""
            SELECT DISTINCT m.shop_id FROM models m JOIN shops s ON s.id = m.shop_id
            WHERE m.kind = $1 AND m.status = 'active' AND s.uninstalled_at IS NULL
            UNION SELECT shop_id FROM checkout_signals WHERE cleared_at IS NULL
            """))
        {
            cmd.Parameters.Add(Sql.Param(IntentModelTrainer.Kind));
            await using var r = await cmd.ExecuteReaderAsync(ct);
            while (await r.ReadAsync(ct)) shops.Add(r.GetInt64(0));
        }
        foreach (var shop in shops)
        {
            try { await ShopAsync(shop, ct); }
            catch (Exception e) when (e is NpgsqlException or InvalidOperationException)
            {
                logger.LogWarning("Shop {Shop}: the abandonment signal failed this round: {Message}", shop, e.Message);
            }
        }
    }

    /// <returns>Checkouts signalled and signals cleared.</returns>
    public async Task<(int Signalled, int Cleared)> ShopAsync(long shopId, CancellationToken ct)
    {
        var o = options.Value;
        // Switched off: no new signals, but those written are still cleared when the checkout completes, the order comes or
        // they age out (until 4 Dec the switch stopped the clearing too, and a shopper who had bought kept the tag that recovery
        // emails are sent on).
        var on = await switches.IsOnAsync(shopId, IntentFeature.Name, ct);
        var now = clock.GetUtcNow();
        var signalled = 0;
        var snapshots = on ? await OpenSnapshotsAsync(shopId, now, ct) : [];
        await using var conn = await db.OpenConnectionAsync(ct);
        await using var tx = await conn.BeginTransactionAsync(ct);
        await using var batch = new NpgsqlBatch(conn, tx);
        var store = new StoreWriter(batch, shopId);
        if (snapshots.Count > 0 && await scorer.ScoreAllAsync(shopId, snapshots.Select(s => s.Snapshot).ToList(), ct) is { } scored)
        {
            for (var i = 0; i < snapshots.Count; i++)
            {
                var (c, _) = snapshots[i];
                var p = scored.Probabilities[i];
                if (!(p >= o.MinScore)) continue; // a NaN is not above the minimum either
                // Her erasure read again as the row is written: the checkouts were read, then scored, before this (the
                // outbox's calls on her are checked the same way, OutboxWriter.Enqueue).
                store.Add($"""
                    INSERT INTO checkout_signals (shop_id, checkout_token, customer_id, score, model_version, signalled_at)
                    SELECT $1, $2, $3, $4, $5, $6 WHERE NOT EXISTS (SELECT 1 FROM customers c WHERE c.shop_id = $1 AND c.id = $3 AND {StoreWriter.CustomerGone("c")})
                    ON CONFLICT (shop_id, checkout_token) DO NOTHING
                    """, shopId, c.Token, c.CustomerId, p, scored.Version, now);
                var gid = Gid.Of("Customer", c.CustomerId);
                OutboxWriter.Enqueue(store, new OutboxCall(OutboxOperation.TagsAdd, gid, new { id = gid, tags = new[] { o.Tag } }, $"abandon:{c.Token}:add"), now);
                OutboxWriter.Enqueue(store, new OutboxCall(OutboxOperation.MetafieldsSet, gid, new
                {
                    metafields = new[] { new { ownerId = gid, @namespace = o.MetafieldNamespace, key = "checkout_intent", type = "number_decimal", value = p.ToString("0.0000", CultureInfo.InvariantCulture) } },
                }, $"abandon:{c.Token}:score"), now);
                signalled++;
            }
        }
        if (batch.BatchCommands.Count > 0) await batch.ExecuteNonQueryAsync(ct);
        // Signals that are over: the checkout completed or became an order, or aged out.
        var cleared = new List<(string Checkout, long Customer)>();
        await using (var cmd = new NpgsqlCommand(ClearSql, conn, tx))
        {
            cmd.Parameters.Add(Sql.Param(shopId));
            cmd.Parameters.Add(Sql.Param(now));
            cmd.Parameters.Add(Sql.Param(now - o.Until));
            await using var r = await cmd.ExecuteReaderAsync(ct);
            while (await r.ReadAsync(ct)) cleared.Add((r.GetString(0), r.GetInt64(1)));
        }
        await using var removals = new NpgsqlBatch(conn, tx);
        var removing = new StoreWriter(removals, shopId);
        foreach (var (checkout, customer) in cleared)
        {
            // The tag stays while another checkout of the customer still carries a signal (one signalled this round included).
            if (await StillOpenAsync(conn, tx, shopId, customer, ct)) continue;
            var gid = Gid.Of("Customer", customer);
            OutboxWriter.Enqueue(removing, new OutboxCall(OutboxOperation.TagsRemove, gid, new { id = gid, tags = new[] { o.Tag } }, $"abandon:{checkout}:remove"), now);
            OutboxWriter.Enqueue(removing, new OutboxCall(OutboxOperation.MetafieldsSet, gid, new
            {
                metafields = new[] { new { ownerId = gid, @namespace = o.MetafieldNamespace, key = "checkout_intent", type = "number_decimal", value = "0.0000" } },
            }, $"abandon:{checkout}:zero"), now);
        }
        // A removal (the tag, the metafield's 0) that failed for good without Shopify refusing it (an outage longer than the
        // outbox's attempts) is sent again, once for each failed call, unless the customer has a signal open again. Why: she
        // kept the tag recovery emails go by after she had bought (until 7 Dec 2026). Found from the shop's failed calls.
        var again = new List<(long Id, string Operation, string Resource, string Variables, string Key)>();
        await using (var cmd = new NpgsqlCommand("""
            SELECT m.id, m.operation, m.resource_key, m.variables::text, m.idempotency_key FROM outbox_messages m
            WHERE m.shop_id = $1 AND m.failed_at IS NOT NULL AND m.outcome = 'unknown' AND m.operation IN ('tagsRemove', 'metafieldsSet')
              AND m.idempotency_key LIKE 'abandon:%' AND (m.idempotency_key LIKE '%:remove' OR m.idempotency_key LIKE '%:zero' OR m.idempotency_key LIKE '%:again:%')
              AND NOT EXISTS (SELECT 1 FROM outbox_messages a WHERE a.shop_id = m.shop_id AND a.idempotency_key = m.idempotency_key || ':again:' || m.id)
            ORDER BY m.id
            """, conn, tx))
        {
            cmd.Parameters.Add(Sql.Param(shopId));
            await using var r = await cmd.ExecuteReaderAsync(ct);
            while (await r.ReadAsync(ct)) again.Add((r.GetInt64(0), r.GetString(1), r.GetString(2), r.GetString(3), r.GetString(4)));
        }
        foreach (var (id, operation, resource, variables, key) in again)
        {
            if (await StillOpenAsync(conn, tx, shopId, Gid.Id(resource), ct)) continue;
            OutboxWriter.Enqueue(removing, new OutboxCall(operation == OutboxOperation.TagsRemove.Name ? OutboxOperation.TagsRemove : OutboxOperation.MetafieldsSet,
                resource, System.Text.Json.Nodes.JsonNode.Parse(variables)!, $"{key}:again:{id}"), now);
        }
        if (removals.BatchCommands.Count > 0) await removals.ExecuteNonQueryAsync(ct);
        await tx.CommitAsync(ct);
        if (signalled > 0 || cleared.Count > 0 || again.Count > 0) outbox.Kick(shopId);
        return (signalled, cleared.Count);
    }

    private static async Task<bool> StillOpenAsync(NpgsqlConnection conn, NpgsqlTransaction tx, long shopId, long customer, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand("SELECT EXISTS (SELECT 1 FROM checkout_signals WHERE shop_id = $1 AND customer_id = $2 AND cleared_at IS NULL)", conn, tx);
        cmd.Parameters.Add(Sql.Param(shopId));
        cmd.Parameters.Add(Sql.Param(customer));
        return (bool)(await cmd.ExecuteScalarAsync(ct))!;
    }
}
