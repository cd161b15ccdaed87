using Npgsql;
using PluginApp.Data;
using PluginApp.Ml.Intent;

namespace PluginApp.Intent;

/// <summary>
/// Carts as the purchase-intent model reads them, from the store's own rows. The snapshot moment is the cart's last
/// stored state, the state the cart page shows the shopper: value, items and products from its lines, how long it had
/// been open then, the customer's orders and abandoned checkouts before it (when a checkout names the customer), the part
/// of day and weekday. Label: an order carries the cart's token. Why <see cref="CartSnapshot.ReachedCheckout"/> is always
/// false: the cart page is scored before any checkout exists, and a cart's checkout in training would mark nearly every
/// ordered cart. Carts changed in the last day are left out of training: they may still become orders.
/// </summary>
public static class IntentData
{
    public static readonly TimeSpan Settle = TimeSpan.FromDays(1);

    private const string CartsSql = """
        WITH lines AS (SELECT cart_token, sum(quantity)::int AS items, count(DISTINCT product_id)::int AS products,
                              sum(quantity * coalesce(price, 0))::float8 AS value
                       FROM cart_lines WHERE shop_id = $1 GROUP BY cart_token),
             who AS (SELECT DISTINCT ON (cart_token) cart_token, customer_id FROM checkouts
                     WHERE shop_id = $1 AND cart_token IS NOT NULL AND customer_id IS NOT NULL ORDER BY cart_token, created_at)
        SELECT c.token, coalesce(c.updated_at, c.created_at), c.created_at, coalesce(l.value, c.total_price::float8, 0), coalesce(l.items, 0), coalesce(l.products, 0),
               w.customer_id,
               (SELECT count(*)::int FROM orders o WHERE o.shop_id = $1 AND o.customer_id = w.customer_id AND o.created_at < coalesce(c.updated_at, c.created_at)),
               (SELECT count(*)::int FROM checkouts k WHERE k.shop_id = $1 AND k.customer_id = w.customer_id AND k.completed_at IS NULL
                  AND k.created_at < coalesce(c.updated_at, c.created_at) AND coalesce(k.cart_token, '') <> c.token
                  AND NOT EXISTS (SELECT 1 FROM orders o WHERE o.shop_id = $1 AND o.checkout_token = k.token)),
               EXISTS (SELECT 1 FROM orders o WHERE o.shop_id = $1 AND o.cart_token = c.token AND NOT o.test)
        FROM carts c LEFT JOIN lines l ON l.cart_token = c.token LEFT JOIN who w ON w.cart_token = c.token
        WHERE c.shop_id = $1 AND coalesce(c.updated_at, c.created_at) < $2 AND coalesce(l.items, 0) > 0
        """;

    /// <summary>Every settled cart before <paramref name="now"/> − 1 day, with its label.</summary>
    public static async Task<List<IntentExample>> LoadAsync(NpgsqlDataSource db, long shopId, DateTimeOffset now, CancellationToken ct)
    {
        var median = await MedianOrderValueAsync(db, shopId, now, ct);
        var list = new List<IntentExample>();
        await using var cmd = db.CreateCommand(CartsSql);
        cmd.Parameters.Add(Sql.Param(shopId));
        cmd.Parameters.Add(Sql.Param(now - Settle));
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
        {
            var at = r.GetFieldValue<DateTimeOffset>(1);
            var created = r.IsDBNull(2) ? at : r.GetFieldValue<DateTimeOffset>(2);
            long? customer = r.IsDBNull(6) ? null : r.GetInt64(6);
            var snapshot = Snapshot(r.GetDouble(3), r.GetInt32(4), r.GetInt32(5), created, at, customer is null ? null : r.GetInt32(7),
                customer is null ? null : r.GetInt32(8), median);
            list.Add(new IntentExample(snapshot, r.GetBoolean(9), at.UtcDateTime));
        }
        return list;
    }

    /// <summary>THE way a snapshot is filled, for training and for the live cart alike.</summary>
    public static CartSnapshot Snapshot(double value, int items, int products, DateTimeOffset created, DateTimeOffset at, int? customerOrders,
        int? pastAbandonments, double? median) => new()
    {
        CartValue = Math.Max(0, value),
        Items = Math.Max(0, items),
        DistinctProducts = Math.Max(0, products),
        MinutesSinceCreated = Math.Max(0, (at - created).TotalMinutes),
        MinutesSinceUpdated = 0,
        Updates = 0,
        ReachedCheckout = false,
        ReturningCustomer = customerOrders is { } n ? n > 0 : null,
        CustomerOrders = customerOrders,
        PastAbandonments = pastAbandonments,
        HourOfDay = at.UtcDateTime.Hour,
        DayOfWeek = (int)at.UtcDateTime.DayOfWeek,
        DiscountApplied = false,
        ShopMedianOrderValue = median,
    };

    public static async Task<double?> MedianOrderValueAsync(NpgsqlDataSource db, long shopId, DateTimeOffset before, CancellationToken ct)
    {
        await using var cmd = db.CreateCommand("""
            SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY total_price)::float8 FROM orders
            WHERE shop_id = $1 AND NOT test AND cancelled_at IS NULL AND total_price > 0 AND created_at < $2
            """);
        cmd.Parameters.Add(Sql.Param(shopId));
        cmd.Parameters.Add(Sql.Param(before));
        return await cmd.ExecuteScalarAsync(ct) is double d ? d : null;
    }

    /// <summary>
    /// $1 shop, $2 customer, $3 now: the customer's orders, and checkouts no order carries the token of. Asked for each cart
    /// of a known customer the cart offers answer; a checkout's order is found through orders_checkout_token_idx (without it,
    /// each of the customer's checkouts read all of the store's orders).
    /// </summary>
    internal const string CustomerSql = """
        SELECT (SELECT count(*)::int FROM orders WHERE shop_id = $1 AND customer_id = $2 AND created_at < $3),
               (SELECT count(*)::int FROM checkouts k WHERE k.shop_id = $1 AND k.customer_id = $2 AND k.completed_at IS NULL AND k.created_at < $3
                  AND NOT EXISTS (SELECT 1 FROM orders o WHERE o.shop_id = $1 AND o.checkout_token = k.token))
        """;

    /// <summary>The customer's orders and abandoned checkouts before now (null, null for a guest).</summary>
    public static async Task<(int? Orders, int? Abandoned)> CustomerAsync(NpgsqlDataSource db, long shopId, long? customerId, DateTimeOffset now, CancellationToken ct)
    {
        if (customerId is null) return (null, null);
        await using var cmd = db.CreateCommand(CustomerSql);
        cmd.Parameters.Add(Sql.Param(shopId));
        cmd.Parameters.Add(Sql.Param(customerId.Value));
        cmd.Parameters.Add(Sql.Param(now));
        await using var r = await cmd.ExecuteReaderAsync(ct);
        await r.ReadAsync(ct);
        return (r.GetInt32(0), r.GetInt32(1));
    }
}
