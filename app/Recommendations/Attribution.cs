using PluginApp.Store;
using PluginApp.Webhooks.Payloads;

namespace PluginApp.Recommendations;

/// <summary>
/// An order line whose product was recommended to the same customer or visitor in the 7 days before the
/// order is credited to that recommendation (the strongest signal wins: add to cart, then click, then
/// impression), with the model version and experiment arm that served it. Written in the order's transaction.
/// </summary>
internal static class Attribution
{
    public static readonly TimeSpan Window = TimeSpan.FromDays(7);

    public static void Add(StoreWriter store, OrderRows rows, string shop, DateTimeOffset now)
    {
        if (rows.Order.CustomerId is null && rows.VisitorId is null) return;
        store.Add("""
            INSERT INTO recommendation_attributions (shop_id, line_id, order_id, product_id, request_id, event_type, model_version, experiment_arm, revenue, attributed_at)
            SELECT DISTINCT ON (l.id) l.shop_id, l.id, l.order_id, l.product_id, e.request_id, e.event_type, d.model_version, d.experiment_arm,
                   l.price * l.quantity - coalesce(l.total_discount, 0), $5
            FROM order_lines l
            JOIN orders o ON o.shop_id = l.shop_id AND o.id = l.order_id
            JOIN recommendation_events e ON e.shop_id = l.shop_id AND e.product_id = l.product_id
             AND e.occurred_at <= coalesce(o.created_at, $5) AND e.occurred_at >= coalesce(o.created_at, $5) - $4::interval
             AND ((o.customer_id IS NOT NULL AND e.customer_id = o.customer_id) OR ($3::text IS NOT NULL AND e.visitor_hash = $3::text))
            LEFT JOIN recommendation_decisions d ON d.request_id = e.request_id
            WHERE l.shop_id = $1 AND l.order_id = $2 AND o.cancelled_at IS NULL
            ORDER BY l.id, CASE e.event_type WHEN 'add_to_cart' THEN 0 WHEN 'click' THEN 1 ELSE 2 END, e.occurred_at DESC
            ON CONFLICT (shop_id, line_id) DO NOTHING
            """, store.ShopId, rows.Order.Id, (object?)Experiments.VisitorHash(shop, rows.VisitorId) ?? new TypedNull(NpgsqlTypes.NpgsqlDbType.Text),
            Window, now);
    }
}
