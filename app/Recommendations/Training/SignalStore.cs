using Npgsql;

namespace PluginApp.Recommendations;

/// <summary>Reads one shop's signals: order lines (with what was refunded of them, and when), cart lines and storefront events.</summary>
public sealed class SignalStore(NpgsqlDataSource db)
{
    /// <summary>
    /// Signals within <paramref name="history"/> of the shop's newest order. Why the newest order and not the
    /// clock: a store that was quiet for a while, or a replayed one, still learns from what it has. An order's signal is
    /// dated by when it was placed (<see cref="StoreData.OrderTime"/>): a migrated store's imported history, dated by its
    /// creation, all fell on the import's day, and the held-out time split had no time to split (until 7 Dec 2026).
    /// </summary>
    public async Task<List<Signal>> LoadAsync(long shopId, TimeSpan history, CancellationToken ct)
    {
        var since = DateTimeOffset.MinValue; // no orders yet: carts and events of any age
        await using (var newest = db.CreateCommand($"SELECT max({StoreData.OrderTime.Placed("o")}) FROM orders o WHERE o.shop_id = $1"))
        {
            newest.Parameters.AddWithValue(shopId);
            if (await newest.ExecuteScalarAsync(ct) is DateTime t) since = new DateTimeOffset(t, TimeSpan.Zero) - history;
        }
        var signals = new List<Signal>();
        await using var batch = new NpgsqlBatch(await db.OpenConnectionAsync(ct))
        {
            BatchCommands =
            {
                // Orders of known customers (guests count as one-off baskets), each line with its refunds and when each was
                // processed (a refund not dated reads as refunded from the start), so training takes them off as known at its
                // cutoff (Signal.AsOf). Until 7 Dec 2026 every refund was taken off at load, and a held-out evaluation trained
                // with the returns of the weeks it was measured on already known.
                Command($"""
                    WITH refunded AS (
                      SELECT rl.line_item_id, array_agg(coalesce(f.processed_at, f.created_at, timestamptz '1970-01-01Z') ORDER BY rl.refund_id) AS ats,
                             array_agg(rl.quantity::real ORDER BY rl.refund_id) AS quantities
                      FROM refund_lines rl LEFT JOIN refunds f ON f.shop_id = rl.shop_id AND f.id = rl.refund_id
                      WHERE rl.shop_id = $1 AND rl.quantity > 0 GROUP BY rl.line_item_id)
                    SELECT coalesce('c:' || o.customer_id, 'o:' || o.id), l.product_id, {StoreData.OrderTime.Placed("o")}, l.quantity::real, r.ats, r.quantities
                    FROM orders o JOIN order_lines l ON l.shop_id = o.shop_id AND l.order_id = o.id
                    LEFT JOIN refunded r ON r.line_item_id = l.id
                    WHERE o.shop_id = $1 AND {StoreData.OrderTime.Placed("o")} >= $2 AND o.cancelled_at IS NULL AND NOT o.test AND l.product_id IS NOT NULL
                    """, shopId, since),
                // A cart that became a known customer's order is hers (her key), as her events are: a held-out evaluation
                // that leaves her order out leaves out its cart too (RecommenderTraining.Split).
                Command("""
                    SELECT coalesce('c:' || o.customer_id, 'k:' || c.token), l.product_id, coalesce(c.updated_at, c.created_at), l.quantity::real
                    FROM carts c JOIN cart_lines l ON l.shop_id = c.shop_id AND l.cart_token = c.token
                    LEFT JOIN (SELECT DISTINCT ON (cart_token) cart_token, customer_id FROM orders
                               WHERE shop_id = $1 AND cart_token IS NOT NULL AND customer_id IS NOT NULL ORDER BY cart_token, created_at) o
                      ON o.cart_token = c.token
                    WHERE c.shop_id = $1 AND coalesce(c.updated_at, c.created_at) >= $2 AND l.product_id IS NOT NULL
                    """, shopId, since),
                Command("""
                    SELECT coalesce('c:' || customer_id, 'v:' || visitor_hash), product_id, occurred_at,
                           CASE WHEN event_type = 'add_to_cart' THEN 2 ELSE 1 END::real
                    FROM recommendation_events
                    WHERE shop_id = $1 AND occurred_at >= $2 AND event_type IN ('click', 'add_to_cart') AND (customer_id IS NOT NULL OR visitor_hash IS NOT NULL)
                    """, shopId, since),
            },
        };
        await using var conn = batch.Connection!;
        await using var r = await batch.ExecuteReaderAsync(ct);
        var kinds = new[] { SignalKind.Order, SignalKind.AddToCart, SignalKind.View };
        var set = 0;
        do
        {
            while (await r.ReadAsync(ct))
            {
                var quantity = r.GetFloat(3);
                if (quantity <= 0) continue;
                var kind = set == 2 && quantity >= 2 ? SignalKind.AddToCart : kinds[set];
                (DateTimeOffset, float)[]? refunds = null;
                if (set == 0 && !r.IsDBNull(4))
                {
                    var ats = r.GetFieldValue<DateTime[]>(4);
                    var quantities = r.GetFieldValue<float[]>(5);
                    refunds = new (DateTimeOffset, float)[ats.Length];
                    for (var i = 0; i < ats.Length; i++)
                        refunds[i] = (new DateTimeOffset(DateTime.SpecifyKind(ats[i], DateTimeKind.Utc)), quantities[i]);
                }
                signals.Add(new Signal(r.GetString(0), r.GetInt64(1), kind, r.GetFieldValue<DateTimeOffset>(2), set == 2 ? 1 : quantity, refunds));
            }
            set++;
        } while (await r.NextResultAsync(ct));
        // One fixed order: floating-point sums and the trained model must not depend on how the rows arrived.
        signals.Sort((a, b) =>
        {
            var c = string.CompareOrdinal(a.UserKey, b.UserKey);
            if (c == 0) c = a.ProductId.CompareTo(b.ProductId);
            if (c == 0) c = a.At.CompareTo(b.At);
            if (c == 0) c = a.Kind.CompareTo(b.Kind);
            if (c == 0) c = a.Quantity.CompareTo(b.Quantity);
            return c != 0 ? c : a.Net.Quantity.CompareTo(b.Net.Quantity);
        });
        return signals;
    }

    private static NpgsqlBatchCommand Command(string sql, params object[] args)
    {
        var c = new NpgsqlBatchCommand(sql);
        foreach (var a in args) c.Parameters.Add(new NpgsqlParameter { Value = a });
        return c;
    }
}
