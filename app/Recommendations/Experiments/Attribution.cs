using PluginApp.StoreData;
using PluginApp.Data;

namespace PluginApp.Recommendations;

/// <summary>
/// An order line whose product was recommended to the same customer or visitor in the 7 days before the
/// order is credited to that recommendation (the strongest signal wins: add to cart, then click, then
/// impression), with the model version and experiment arm that served it. Written in the order's transaction.
/// </summary>
internal static class Attribution
{
    public static readonly TimeSpan Window = TimeSpan.FromDays(7);

    // Why the payload's lines and not the stored rows: the delivery already holds them, and this statement runs for
    // nearly every order webhook; reading orders and order_lines back cost a third of the ingest rate.
    private const string Sql = """
        INSERT INTO recommendation_attributions (shop_id, line_id, order_id, product_id, request_id, event_type, model_version, experiment_arm, revenue, attributed_at)
        SELECT DISTINCT ON (l.line_id) $1, l.line_id, $2, l.product_id, e.request_id, e.event_type, d.model_version, d.experiment_arm, l.revenue, $9
        FROM unnest($3::int8[], $4::int8[], $5::numeric[]) AS l(line_id, product_id, revenue)
        JOIN recommendation_events e ON e.shop_id = $1 AND e.product_id = l.product_id
         AND e.occurred_at <= $6 AND e.occurred_at >= $6 - $10::interval
         AND (e.customer_id = $7 OR e.visitor_hash = $8)
        LEFT JOIN recommendation_decisions d ON d.shop_id = $1 AND d.request_id = e.request_id
        ORDER BY l.line_id, CASE e.event_type WHEN 'add_to_cart' THEN 0 WHEN 'click' THEN 1 ELSE 2 END, e.occurred_at DESC
        ON CONFLICT (shop_id, line_id) DO NOTHING
        """;

    public static void Add(StoreWriter store, OrderRows rows, string shop, DateTimeOffset now)
    {
        var order = rows.Order;
        var visitor = PluginApp.Experiments.Assignment.VisitorHash(shop, rows.VisitorId);
        if (order.CancelledAt is not null || (order.CustomerId is null && visitor is null)) return;
        var lines = rows.Lines.Where(l => l.ProductId is not null).GroupBy(l => l.Id).Select(g => g.Last()).ToList();
        if (lines.Count == 0) return;
        store.Add(Sql, store.ShopId, order.Id, lines.Select(l => l.Id).ToArray(), lines.Select(l => l.ProductId!.Value).ToArray(),
            lines.Select(l => (l.Price ?? 0m) * l.Quantity - (l.TotalDiscount ?? 0m)).ToArray(), order.CreatedAt ?? now,
            (object?)order.CustomerId ?? new TypedNull(NpgsqlTypes.NpgsqlDbType.Bigint), (object?)visitor ?? new TypedNull(NpgsqlTypes.NpgsqlDbType.Text),
            now, Window);
    }
}
