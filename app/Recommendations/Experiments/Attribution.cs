using PluginApp.StoreData;

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
    // nearly every order webhook; reading orders and order_lines back cost a third of the ingest rate. One row per line of
    // the segment's orders. Why the customer's and the visitor's events as two lookups and not one join on the product with
    // either: PostgreSQL cannot use an index for an OR of two join conditions, and read every event of each line's product
    // in the 7 days, everyone's (a product with 15,000 impressions a week: 15,000 rows for each line of it, 0.1 s for a
    // segment of nine lines). Each lookup reads the shopper's own events (recommendation_events_customer_idx and _visitor_idx);
    // an event both find counts once, as DISTINCT ON keeps one row a line.
    private static readonly string Since = $"interval '{(long)Window.TotalSeconds} seconds'";

    internal static readonly RowsStatement Lines = new("l",
        ["shop_id int8", "line_id int8", "order_id int8", "product_id int8", "revenue numeric", "ordered_at timestamptz",
         "customer_id int8", "visitor_hash text", "attributed_at timestamptz"], $$"""
        INSERT INTO recommendation_attributions (shop_id, line_id, order_id, product_id, request_id, event_type, model_version, experiment_arm, revenue, attributed_at)
        SELECT DISTINCT ON (l.shop_id, l.line_id) l.shop_id, l.line_id, l.order_id, l.product_id, e.request_id, e.event_type, d.model_version,
          d.experiment_arm, l.revenue, l.attributed_at
        FROM {rows}
        CROSS JOIN LATERAL (
          SELECT e.request_id, e.event_type, e.occurred_at FROM recommendation_events e
          WHERE e.shop_id = l.shop_id AND e.customer_id = l.customer_id AND e.product_id = l.product_id
            AND e.occurred_at <= l.ordered_at AND e.occurred_at >= l.ordered_at - {{Since}}
          UNION ALL
          SELECT e.request_id, e.event_type, e.occurred_at FROM recommendation_events e
          WHERE e.shop_id = l.shop_id AND e.visitor_hash = l.visitor_hash AND e.product_id = l.product_id
            AND e.occurred_at <= l.ordered_at AND e.occurred_at >= l.ordered_at - {{Since}}) e
        LEFT JOIN recommendation_decisions d ON d.shop_id = l.shop_id AND d.request_id = e.request_id
        ORDER BY l.shop_id, l.line_id, CASE e.event_type WHEN 'add_to_cart' THEN 0 WHEN 'click' THEN 1 ELSE 2 END, e.occurred_at DESC
        ON CONFLICT (shop_id, line_id) DO NOTHING
        """);

    public static void Add(StoreWriter store, OrderRows rows, string shop, DateTimeOffset now)
    {
        var order = rows.Order;
        var visitor = PluginApp.Experiments.Assignment.VisitorHash(shop, rows.VisitorId);
        // A test order (the merchant trying the checkout) earned nothing: until 5 Dec 2026 it counted as recommended revenue.
        if (order.CancelledAt is not null || order.Test || (order.CustomerId is null && visitor is null)) return;
        foreach (var l in rows.Lines.Where(l => l.ProductId is not null).GroupBy(l => l.Id).Select(g => g.Last()))
            store.AddToSegment(Lines, [store.ShopId, l.Id, order.Id, l.ProductId, (l.Price ?? 0m) * l.Quantity - (l.TotalDiscount ?? 0m),
                order.PlacedAt ?? now, order.CustomerId, visitor, now]);
    }
}
