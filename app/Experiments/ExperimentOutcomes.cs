using PluginApp.StoreData;

namespace PluginApp.Experiments;

/// <summary>
/// Joins an order to every experiment its shopper was exposed to, in the order's own transaction: when the unit (the
/// visitor id the cart attributes carry, or the customer) first saw an arm before the order, however long before, the
/// order is an outcome of that arm. Why no window: the results count every unit exposed since the experiment started, so
/// an order they leave out counts its visitor as one who did not order; until 7 Dec 2026 only exposures of the 30 days
/// before the order joined, and a visitor first seen 40 days before she came back and ordered counted as not ordering.
/// Revenue is the order total (0 when cancelled; refunds are netted out when the results are read); margin is the
/// subtotal without the tax it holds (<see cref="OrderRows.Merchandise"/>) less the variants' unit costs, null when a
/// line's cost is unknown; the cart offer action comes from the cart attribute the block wrote. A later version of the
/// same order updates the row; an older one delivered late writes nothing.
/// </summary>
internal static class ExperimentOutcomes
{
    // Each order of the segment, joined to the experiments its unit saw; its margin from its own lines' unit costs.
    // Why the visitor's and the customer's exposures as two lookups and not one join on either: PostgreSQL cannot use an
    // index for an OR of two join conditions, and read all of the store's exposures for every segment (400,000 rows and
    // 0.29 s for a segment of nine orders, in a store with 200,000 visitors in two experiments). Each lookup has its index
    // (migration 0043); an exposure both find counts once, as DISTINCT ON keeps one row an experiment.
    internal static readonly RowsStatement Outcomes = new("o",
        ["shop_id int8", "order_id int8", "visitor_hash text", "customer_id int8", "revenue numeric", "ordered_at timestamptz",
         "subtotal numeric", "discount numeric", "action text", "order_updated_at timestamptz"], $$"""
        INSERT INTO experiment_outcomes (shop_id, experiment, order_id, arm, visitor_hash, customer_id, revenue, ordered_at, unit, margin, discount, action)
        SELECT DISTINCT ON (o.n, x.experiment) o.shop_id, x.experiment, o.order_id, x.arm, o.visitor_hash, o.customer_id, o.revenue, o.ordered_at, x.unit,
          CASE WHEN o.revenue > 0 THEN (SELECT CASE WHEN count(*) > 0 AND count(*) = count(v.unit_cost) THEN o.subtotal - sum(l.quantity * v.unit_cost) END
                                       FROM {children} LEFT JOIN variants v ON v.shop_id = o.shop_id AND v.id = l.variant_id
                                       WHERE l.n = o.n) ELSE 0 END,
          o.discount, o.action
        FROM {rows}
        CROSS JOIN LATERAL (
          SELECT x.experiment, x.arm, x.unit, x.first_at FROM experiment_exposures x
          WHERE x.shop_id = o.shop_id AND x.unit = 'v:' || o.visitor_hash AND x.first_at <= o.ordered_at
          UNION ALL
          SELECT x.experiment, x.arm, x.unit, x.first_at FROM experiment_exposures x
          WHERE x.shop_id = o.shop_id AND x.customer_id = o.customer_id AND x.first_at <= o.ordered_at) x
        -- An order a customers/redact listed before we held it is hers, erased: it joins no experiment with her visitor id
        -- (until 5 Dec 2026 its outcome kept it; the visitor's own exposures and events, unknown to the erasure, stay).
        WHERE NOT EXISTS (SELECT 1 FROM erased_orders e WHERE e.shop_id = o.shop_id AND e.order_id = o.order_id)
          -- Only while the order stands at this delivery's version, as its lines: Shopify's retry of an older delivery (the
          -- order's creation, after its cancellation) wrote its revenue back until 5 Dec 2026, counting a cancelled order.
          AND EXISTS (SELECT 1 FROM orders s WHERE s.shop_id = o.shop_id AND s.id = o.order_id AND s.updated_at IS NOT DISTINCT FROM o.order_updated_at
                        -- Nor an order stored erased (its customer was, before it came): its outcome would tie her customer id to
                        -- the visitor id its cart attributes carry, the link the erasure cut (until 7 Dec 2026 it did).
                        AND s.redacted_at IS NULL)
        ORDER BY o.n, x.experiment, (x.unit = 'v:' || o.visitor_hash) DESC NULLS LAST, x.first_at DESC
        ON CONFLICT (shop_id, experiment, order_id) DO UPDATE SET revenue = excluded.revenue, margin = excluded.margin,
          discount = excluded.discount, action = coalesce(excluded.action, experiment_outcomes.action)
        """, "l", ["variant_id int8", "quantity int4"]);

    public static void Add(StoreWriter store, OrderRows rows, string shop, DateTimeOffset now)
    {
        var order = rows.Order;
        // A test order (the merchant trying the checkout) earns nothing: until 5 Dec 2026 it counted as an arm's revenue.
        if (order.Test) return;
        var visitor = Assignment.VisitorHash(shop, rows.VisitorId);
        if (order.CustomerId is null && visitor is null) return;
        var cancelled = order.CancelledAt is not null;
        var action = rows.AppAttributes?.GetValueOrDefault(OrderPayloads.ActionAttribute);
        store.AddToSegment(Outcomes,
            [store.ShopId, order.Id, visitor, order.CustomerId, cancelled ? 0m : order.TotalPrice ?? 0m, order.PlacedAt ?? now,
             rows.Merchandise, cancelled ? 0m : order.TotalDiscounts ?? 0m, action is { Length: <= 32 } ? action : null,
             order.UpdatedAt],
            rows.Lines.GroupBy(l => l.Id).Select(g => g.Last()).Select(l => new object?[] { l.VariantId ?? 0L, l.Quantity }));
    }
}
