using NpgsqlTypes;
using PluginApp.Data;
using PluginApp.StoreData;

namespace PluginApp.Recommendations;

/// <summary>
/// Joins an order to the upsell experiment in the order's own transaction: when its shopper (the visitor id in the cart
/// attributes, or the customer) was served in the 30 days before the order, the order is an outcome of that exposure's
/// arm. The holdout comparison divides these by the shoppers exposed in each arm. A cancelled order counts no revenue;
/// a later delivery of the same order updates it.
/// </summary>
internal static class ExperimentOutcomes
{
    public static readonly TimeSpan Window = TimeSpan.FromDays(30);

    private const string Sql = """
        INSERT INTO experiment_outcomes (shop_id, experiment, order_id, arm, visitor_hash, customer_id, revenue, ordered_at)
        SELECT $1, $2, $3, d.experiment_arm, d.visitor_hash, d.customer_id, $4, $5
        FROM (SELECT experiment_arm, visitor_hash, customer_id, decided_at FROM recommendation_decisions
              WHERE shop_id = $1 AND visitor_hash = $6 AND decided_at <= $5 AND decided_at > $5 - $8::interval
              UNION ALL
              SELECT experiment_arm, visitor_hash, customer_id, decided_at FROM recommendation_decisions
              WHERE shop_id = $1 AND customer_id = $7 AND decided_at <= $5 AND decided_at > $5 - $8::interval
              ORDER BY decided_at DESC LIMIT 1) d
        ON CONFLICT (shop_id, experiment, order_id) DO UPDATE SET revenue = excluded.revenue
        """;

    public static void Add(StoreWriter store, OrderRows rows, string shop, DateTimeOffset now)
    {
        var order = rows.Order;
        var visitor = Experiments.VisitorHash(shop, rows.VisitorId);
        if (order.CustomerId is null && visitor is null) return;
        var revenue = order.CancelledAt is null ? order.TotalPrice ?? 0m : 0m;
        store.Add(Sql, store.ShopId, Experiments.Upsells, order.Id, revenue, order.CreatedAt ?? now,
            (object?)visitor ?? new TypedNull(NpgsqlDbType.Text), (object?)order.CustomerId ?? new TypedNull(NpgsqlDbType.Bigint), Window);
    }
}
