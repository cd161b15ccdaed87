using NpgsqlTypes;
using PluginApp.Data;
using PluginApp.StoreData;

namespace PluginApp.Experiments;

/// <summary>
/// Joins an order to every experiment its shopper was exposed to, in the order's own transaction: when the unit (the
/// visitor id the cart attributes carry, or the customer) first saw an arm in the 30 days before the order, the order is
/// an outcome of that arm. Revenue is the order total (0 when cancelled; refunds are netted out when the results are
/// read); margin is the subtotal less the variants' unit costs, null when a line's cost is unknown; the cart offer
/// action comes from the cart attribute the block wrote. A later delivery of the same order updates the row.
/// </summary>
internal static class ExperimentOutcomes
{
    public static readonly TimeSpan Window = TimeSpan.FromDays(30);

    private const string Sql = """
        INSERT INTO experiment_outcomes (shop_id, experiment, order_id, arm, visitor_hash, customer_id, revenue, ordered_at, unit, margin, discount, action)
        SELECT DISTINCT ON (x.experiment) $1, x.experiment, $2, x.arm, $3, $4, $5, $6, x.unit,
          CASE WHEN $5 > 0 THEN (SELECT CASE WHEN count(*) > 0 AND count(*) = count(v.unit_cost) THEN $7 - sum(l.q * v.unit_cost) END
                                 FROM unnest($8::int8[], $9::int4[]) AS l(variant, q)
                                 LEFT JOIN variants v ON v.shop_id = $1 AND v.id = l.variant) ELSE 0 END,
          $10, $11
        FROM experiment_exposures x
        WHERE x.shop_id = $1 AND (x.unit = 'v:' || $3 OR x.customer_id = $4) AND x.first_at <= $6 AND x.first_at > $6 - $12::interval
        ORDER BY x.experiment, (x.unit = 'v:' || $3) DESC NULLS LAST, x.first_at DESC
        ON CONFLICT (shop_id, experiment, order_id) DO UPDATE SET revenue = excluded.revenue, margin = excluded.margin,
          discount = excluded.discount, action = coalesce(excluded.action, experiment_outcomes.action)
        """;

    public static void Add(StoreWriter store, OrderRows rows, string shop, DateTimeOffset now)
    {
        var order = rows.Order;
        var visitor = Assignment.VisitorHash(shop, rows.VisitorId);
        if (order.CustomerId is null && visitor is null) return;
        var cancelled = order.CancelledAt is not null;
        var lines = rows.Lines.GroupBy(l => l.Id).Select(g => g.Last()).ToList();
        var action = rows.AppAttributes?.GetValueOrDefault(OrderPayloads.ActionAttribute);
        store.Add(Sql, store.ShopId, order.Id, (object?)visitor ?? new TypedNull(NpgsqlDbType.Text), (object?)order.CustomerId ?? new TypedNull(NpgsqlDbType.Bigint),
            cancelled ? 0m : order.TotalPrice ?? 0m, order.CreatedAt ?? now, order.SubtotalPrice ?? order.TotalPrice ?? 0m,
            lines.Select(l => l.VariantId ?? 0L).ToArray(), lines.Select(l => l.Quantity).ToArray(),
            cancelled ? 0m : order.TotalDiscounts ?? 0m, (object?)(action is { Length: <= 32 } ? action : null) ?? new TypedNull(NpgsqlDbType.Text), Window);
    }
}
