using Npgsql;
using PluginApp.Data;
using PluginApp.Ml.Churn;

namespace PluginApp.Churn;

/// <summary>
/// Each customer's orders as the churn model reads them, from the store's own rows: one entry per order (its total,
/// discount, when it was cancelled, its lines' product types) and one per refund on the day it was issued, naming its order
/// (so neither a refund nor a cancellation after a cutoff is known at it). Test orders, orders without a customer and
/// customers erased by customers/redact are left out.
/// Every time is on the store's clock (its time zone's wall time, <see cref="ChurnData.Now"/> too): the model counts
/// distinct purchase days, and a store's day is its own. Why: read in UTC, a store in New York had its evening orders on
/// the next day, so a customer's orders at 6 and 8 pm counted as two purchase days, and gaps moved by a day (until 5 Dec 2026).
/// An order is dated by when it was placed (<see cref="StoreData.OrderTime"/>). Why: dated by its creation, a migrated
/// store's years of history read as one purchase day per customer, each a first order placed on the import day (until 7 Dec 2026).
/// </summary>
public static class ChurnHistories
{
    /// <summary>The store's customers and the moment they were read, both on the store's clock (Kind Unspecified).</summary>
    public sealed record ChurnData(IReadOnlyList<CustomerHistory> Customers, DateTime Now, TimeZoneInfo Zone)
    {
        /// <summary>A time on the store's clock back as an instant.</summary>
        public DateTimeOffset Instant(DateTime storeTime) => new(TimeZoneInfo.ConvertTimeToUtc(DateTime.SpecifyKind(storeTime, DateTimeKind.Unspecified), Zone), TimeSpan.Zero);
    }

    public static async Task<ChurnData> LoadAsync(NpgsqlDataSource db, long shopId, DateTimeOffset before, CancellationToken ct)
    {
        TimeZoneInfo zone;
        await using (var conn = await db.OpenConnectionAsync(ct)) zone = await StoreData.ShopDays.ZoneAsync(conn, shopId, ct);
        DateTime At(NpgsqlDataReader r, int i) => StoreData.ShopDays.WallTime(r.GetFieldValue<DateTimeOffset>(i), zone);
        var orders = new Dictionary<long, List<ChurnOrder>>();
        // Why the product types by one join over the store's lines, not a subquery per order: PostgreSQL ran that subquery
        // as a hash join that read every product again for each order (15.5 s for Online Retail's 18,532 orders and 3,920
        // products, growing with orders times catalog size); grouped once, 0.6 s.
        await using (var cmd = db.CreateCommand($$"""
            SELECT o.customer_id, {{StoreData.OrderTime.Placed("o")}}, coalesce(o.total_price, 0)::float8, coalesce(o.total_discounts, 0)::float8, o.cancelled_at,
                   coalesce(t.types, '{}'), o.id
            FROM orders o
            LEFT JOIN (SELECT l.order_id, array_agg(DISTINCT p.product_type) AS types
                       FROM order_lines l JOIN products p ON p.shop_id = l.shop_id AND p.id = l.product_id
                       WHERE l.shop_id = $1 AND coalesce(p.product_type, '') <> ''
                       GROUP BY l.order_id) t ON t.order_id = o.id
            WHERE o.shop_id = $1 AND o.customer_id IS NOT NULL AND NOT o.test AND {{StoreData.OrderTime.Placed("o")}} < $2
              AND NOT EXISTS (SELECT 1 FROM customers c WHERE c.shop_id = o.shop_id AND c.id = o.customer_id AND c.redacted_at IS NOT NULL)
            """))
        {
            cmd.Parameters.Add(Sql.Param(shopId));
            cmd.Parameters.Add(Sql.Param(before));
            await using var r = await cmd.ExecuteReaderAsync(ct);
            while (await r.ReadAsync(ct))
            {
                var categories = r.GetFieldValue<string[]>(5);
                var cancelledAt = r.IsDBNull(4) ? (DateTime?)null : At(r, 4);
                Add(orders, r.GetInt64(0), new ChurnOrder(At(r, 1), r.GetDouble(2), r.GetDouble(3),
                    Cancelled: cancelledAt is not null, Categories: categories.Length == 0 ? null : categories, CancelledAt: cancelledAt,
                    Order: Id(r.GetInt64(6))));
            }
        }
        await using (var cmd = db.CreateCommand("""
            SELECT o.customer_id, coalesce(r.processed_at, r.created_at), r.amount::float8, o.cancelled_at, o.id
            FROM refunds r JOIN orders o ON o.shop_id = r.shop_id AND o.id = r.order_id
            WHERE r.shop_id = $1 AND o.customer_id IS NOT NULL AND NOT o.test AND r.amount > 0 AND coalesce(r.processed_at, r.created_at) < $2
            """))
        {
            cmd.Parameters.Add(Sql.Param(shopId));
            cmd.Parameters.Add(Sql.Param(before));
            await using var r = await cmd.ExecuteReaderAsync(ct);
            while (await r.ReadAsync(ct))
                if (orders.ContainsKey(r.GetInt64(0))) // only customers with an order kept above (not erased)
                {
                    var cancelledAt = r.IsDBNull(3) ? (DateTime?)null : At(r, 3);
                    Add(orders, r.GetInt64(0), new ChurnOrder(At(r, 1), 0, Refunded: r.GetDouble(2),
                        Cancelled: cancelledAt is not null, CancelledAt: cancelledAt, Order: Id(r.GetInt64(4))));
                }
        }
        return new ChurnData(orders.OrderBy(kv => kv.Key).Select(kv => new CustomerHistory(Id(kv.Key), kv.Value)).ToList(), StoreData.ShopDays.WallTime(before, zone), zone);
    }

    private static string Id(long id) => id.ToString(System.Globalization.CultureInfo.InvariantCulture);

    private static void Add(Dictionary<long, List<ChurnOrder>> orders, long customer, ChurnOrder o)
    {
        if (!orders.TryGetValue(customer, out var list)) orders[customer] = list = [];
        list.Add(o);
    }
}
