using Npgsql;
using PluginApp.CartOffers;
using PluginApp.Data;
using PluginApp.StoreData;
using PluginApp.Ml.Intent;

namespace PluginApp.Intent;

/// <summary>
/// Carts as the purchase-intent model reads them, from the store's own rows. The snapshot moment is the cart's last
/// stored state, the state the cart page shows the shopper: value, items and products from its lines, how long it had
/// been open then, the customer's orders and abandoned checkouts before it, the part of day and weekday. Label: an order
/// carries the cart's token. Carts changed in the last three days are left out of training: they may still become orders
/// (recovery emails go out for three days; until 5 Dec 2026 a cart was labelled "not ordered" after one, and the carts
/// recovered on the second or third day taught the calibrator, which learns from the latest carts, too low a rate).
/// Part of day and weekday are the store's (until 5 Dec 2026 they were UTC's, and a Los Angeles cart of Friday 17:30
/// read "in the night, on a weekend"). A customer's earlier orders are those that stood: no test orders, none cancelled
/// by then.
/// <para>
/// The customer of a cart is the one the live cart page knows: the logged-in customer our cart block saw with that cart
/// (the decision log, and cart_customers, where a nightly job keeps its links beyond its 90 days), never the customer a checkout names. Why: a checkout exists only for a cart that went on to
/// checkout, so "the customer is known" would have marked nearly every ordered cart in training, and a logged-in shopper's
/// cart live would have read as one about to order (until 4 Dec 2026). For the same reason
/// <see cref="CartSnapshot.ReachedCheckout"/> is always false, and the cart's own checkouts are never counted among its
/// customer's abandoned ones (<see cref="CustomerSql"/>, for training and live alike).
/// </para>
/// <para>
/// Carts the cart offers showed something (the nudging bar, an upsell, a code) are left out of training
/// (<see cref="ShownCarts"/>): the model is the chance a cart orders when shown nothing, which the policy weighs every action
/// against, and such a cart's outcome was partly the offer's. Until 6 Dec 2026 they trained it, a feedback loop: the more
/// the offers won, the likelier the carts they went to looked to order anyway, and the less the policy offered them. The
/// carts left are the control arm's, the policy's that it showed nothing, and those the block never answered. A policy
/// cart already over the free-shipping threshold that it showed nothing sees the full bar: that is what "nothing" is for
/// such a cart, so it stays in. The policy also reads figures the model does not (what is left to free shipping, the
/// caps, the day's budget), so the policy's "nothing" carts are not quite a random sample; the control arm's are.
/// </para>
/// </summary>
public static class IntentData
{
    public static readonly TimeSpan Settle = TimeSpan.FromDays(3);

    /// <summary>What a snapshot reads of its store besides the cart: the median order value and the time zone.</summary>
    public sealed record Store(double? MedianOrderValue, TimeZoneInfo Zone);

    /// <summary>
    /// $1 shop: every cart's storefront customers as the cart block saw them (cart_token, customer_id, seen_at), the first
    /// one being the cart's (erased ones left out by the reader). One definition for training's carts and the abandonment
    /// sweep's checkouts.
    /// </summary>
    internal const string CartLinks = """
        SELECT cart_token, customer_id, seen_at FROM cart_customers WHERE shop_id = $1
        UNION ALL
        SELECT cart_token, customer_id, decided_at FROM decisions WHERE shop_id = $1 AND cart_token IS NOT NULL AND customer_id IS NOT NULL
        """;

    /// <summary>A cart's figures from its lines (cart_lines) as items, products and value: one definition for training's
    /// carts and the abandonment sweep's checkouts.</summary>
    internal const string CartLineFigures =
        "sum(quantity)::int AS items, count(DISTINCT product_id)::int AS products, sum(quantity * coalesce(price, 0))::float8 AS value";

    /// <summary>
    /// $1 shop: the carts the cart offers showed a bar, an upsell or a code, from the decision log, (beyond its 90 days)
    /// cart_offers_shown, which the nightly job keeps, and the codes handed out (a code's cart is on the code even when its
    /// decision could not be logged).
    /// </summary>
    internal const string ShownCarts = $"""
        SELECT cart_token FROM cart_offers_shown WHERE shop_id = $1
        UNION
        SELECT cart_token FROM decisions WHERE shop_id = $1 AND {ShownDecision}
        UNION
        SELECT cart_token FROM discount_codes WHERE shop_id = $1 AND cart_token IS NOT NULL
        """;

    /// <summary>A cart-offer decision that showed its cart something (one definition for training's reading and the nightly copy).</summary>
    private const string ShownDecision = "kind = 'offer' AND subject <> 'nothing' AND cart_token IS NOT NULL";

    private static readonly string CartsSql = $"""
        WITH shown AS ({ShownCarts}),
             lines AS (SELECT cart_token, {CartLineFigures}
                       FROM cart_lines WHERE shop_id = $1 GROUP BY cart_token),
             who AS (SELECT DISTINCT ON (w.cart_token) w.cart_token, w.customer_id
                     FROM ({CartLinks}) w
                     WHERE NOT EXISTS (SELECT 1 FROM customers u WHERE u.shop_id = $1 AND u.id = w.customer_id AND u.redacted_at IS NOT NULL)
                     ORDER BY w.cart_token, w.seen_at)
        SELECT c.token, coalesce(c.updated_at, c.created_at), c.created_at, coalesce(l.value, c.total_price::float8, 0), coalesce(l.items, 0), coalesce(l.products, 0),
               w.customer_id, {History("w.customer_id", "coalesce(c.updated_at, c.created_at)", "c.token", "NULL::text")},
               EXISTS (SELECT 1 FROM orders o WHERE o.shop_id = $1 AND o.cart_token = c.token AND NOT o.test),
               EXISTS (SELECT 1 FROM shown s WHERE s.cart_token = c.token)
        FROM carts c LEFT JOIN lines l ON l.cart_token = c.token LEFT JOIN who w ON w.cart_token = c.token
        WHERE c.shop_id = $1 AND coalesce(c.updated_at, c.created_at) < $2 AND coalesce(l.items, 0) > 0
        """;

    /// <summary>
    /// $1 since when: keeps each cart's storefront customer (the first the decision log saw with it) in cart_customers,
    /// which outlives the log's 90 days; an erased customer's never (their decisions are cleared too).
    /// </summary>
    internal const string RememberCustomersSql = """
        INSERT INTO cart_customers (shop_id, cart_token, customer_id, seen_at)
        SELECT DISTINCT ON (d.shop_id, d.cart_token) d.shop_id, d.cart_token, d.customer_id, d.decided_at FROM decisions d
        WHERE d.decided_at >= $1 AND d.cart_token IS NOT NULL AND d.customer_id IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM customers u WHERE u.shop_id = d.shop_id AND u.id = d.customer_id AND u.redacted_at IS NOT NULL)
        ORDER BY d.shop_id, d.cart_token, d.decided_at
        ON CONFLICT DO NOTHING
        """;

    /// <summary>$1 since when: keeps the carts the cart offers showed something in cart_offers_shown, beyond the log's 90 days.</summary>
    internal const string RememberShownSql = $"""
        INSERT INTO cart_offers_shown (shop_id, cart_token, shown_at)
        SELECT shop_id, cart_token, min(decided_at) FROM decisions
        WHERE decided_at >= $1 AND {ShownDecision}
        GROUP BY shop_id, cart_token
        ON CONFLICT DO NOTHING
        """;

    /// <summary>
    /// Every shop's cart links and carts shown an offer of the last week, each night (<see cref="CartCustomersJob"/>), the one
    /// writer of cart_customers and cart_offers_shown: a week, so a few nights the job did not run lose nothing; training
    /// reads the log's newer rows itself.
    /// </summary>
    public static async Task RememberCustomersAsync(NpgsqlDataSource db, TimeProvider clock, CancellationToken ct)
    {
        var since = clock.GetUtcNow().AddDays(-7);
        foreach (var sql in new[] { RememberCustomersSql, RememberShownSql })
        {
            await using var cmd = db.CreateCommand(sql);
            cmd.Parameters.Add(Sql.Param(since));
            await cmd.ExecuteNonQueryAsync(ct);
        }
    }

    /// <summary>The settled carts training reads, and how many more were left out because the cart offers showed them something.</summary>
    public sealed record Carts(List<IntentExample> Examples, int ShownLeftOut);

    /// <summary>Every settled cart before <paramref name="now"/> − 3 days that the cart offers showed nothing, with its label.</summary>
    public static async Task<Carts> LoadAsync(NpgsqlDataSource db, long shopId, DateTimeOffset now, CancellationToken ct)
    {
        var store = await StoreAsync(db, shopId, now, ct);
        var list = new List<IntentExample>();
        var shown = 0;
        await using var cmd = db.CreateCommand(CartsSql);
        cmd.Parameters.Add(Sql.Param(shopId));
        cmd.Parameters.Add(Sql.Param(now - Settle));
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
        {
            if (r.GetBoolean(10)) { shown++; continue; }
            var at = r.GetFieldValue<DateTimeOffset>(1);
            var created = r.IsDBNull(2) ? at : r.GetFieldValue<DateTimeOffset>(2);
            long? customer = r.IsDBNull(6) ? null : r.GetInt64(6);
            var snapshot = Snapshot(r.GetDouble(3), r.GetInt32(4), r.GetInt32(5), created, at, customer is null ? null : r.GetInt32(7),
                customer is null ? null : r.GetInt32(8), store);
            list.Add(new IntentExample(snapshot, r.GetBoolean(9), at.UtcDateTime));
        }
        return new Carts(list, shown);
    }

    /// <summary>THE way a snapshot is filled, for training and for the live cart alike.</summary>
    public static CartSnapshot Snapshot(double value, int items, int products, DateTimeOffset created, DateTimeOffset at, int? customerOrders,
        int? pastAbandonments, Store store)
    {
        var wall = ShopDays.WallTime(at, store.Zone);
        return new()
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
        HourOfDay = wall.Hour,
        DayOfWeek = (int)wall.DayOfWeek,
        DiscountApplied = false,
        ShopMedianOrderValue = store.MedianOrderValue,
        };
    }

    /// <summary>
    /// A live cart as training reads a settled one: its lines as the cart page holds them, open since the cart was first
    /// stored (now for a cart we have not stored yet), and the history of the customer logged in on the storefront.
    /// </summary>
    public static async Task<CartSnapshot> LiveAsync(NpgsqlDataSource db, long shopId, string? cartToken, CartFacts cart, long? customerId,
        DateTimeOffset now, Store store, CancellationToken ct)
    {
        var created = now;
        if (cartToken is not null)
        {
            await using var cmd = db.CreateCommand("SELECT created_at FROM carts WHERE shop_id = $1 AND token = $2");
            cmd.Parameters.Add(Sql.Param(shopId));
            cmd.Parameters.Add(Sql.Param(cartToken));
            if (await cmd.ExecuteScalarAsync(ct) is DateTime c) created = new DateTimeOffset(DateTime.SpecifyKind(c, DateTimeKind.Utc));
        }
        var (orders, abandoned) = await CustomerAsync(db, shopId, customerId, now, cartToken, null, ct);
        return Snapshot((double)cart.Value, cart.Items, cart.Products, created, now, orders, abandoned, store);
    }

    /// <summary>The store's median order value before <paramref name="before"/> and its time zone.</summary>
    public static async Task<Store> StoreAsync(NpgsqlDataSource db, long shopId, DateTimeOffset before, CancellationToken ct)
    {
        await using var cmd = db.CreateCommand("""
            SELECT (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY total_price)::float8 FROM orders
                    WHERE shop_id = $1 AND NOT test AND cancelled_at IS NULL AND total_price > 0 AND created_at < $2),
                   (SELECT iana_timezone FROM shops WHERE id = $1)
            """);
        cmd.Parameters.Add(Sql.Param(shopId));
        cmd.Parameters.Add(Sql.Param(before));
        await using var r = await cmd.ExecuteReaderAsync(ct);
        await r.ReadAsync(ct);
        return new Store(r.IsDBNull(0) ? null : r.GetDouble(0), ShopDays.Zone(r.IsDBNull(1) ? null : r.GetString(1)));
    }

    /// <summary>
    /// A customer's orders and abandoned checkouts (no order carries their token) before a moment, leaving out the checkouts
    /// of the cart being read (by its token, or the checkout itself): the one definition training and live read, each as it
    /// stood at that moment (a checkout completed or ordered later was abandoned then; until 6 Dec 2026 training read it as
    /// it stands now, and learnt that shoppers whose checkouts were recovered abandon less than live scoring saw them). A
    /// checkout's order is found through orders_checkout_token_idx (without it, each of the customer's checkouts read all of
    /// the store's orders).
    /// </summary>
    private static string History(string customer, string at, string cart, string checkout) => $"""
        (SELECT count(*)::int FROM orders o WHERE o.shop_id = $1 AND o.customer_id = {customer} AND o.created_at < {at}
           AND NOT o.test AND (o.cancelled_at IS NULL OR o.cancelled_at >= {at})),
        (SELECT count(*)::int FROM checkouts k WHERE k.shop_id = $1 AND k.customer_id = {customer} AND (k.completed_at IS NULL OR k.completed_at >= {at})
           AND k.created_at < {at} AND (k.cart_token = {cart}) IS NOT TRUE AND (k.token = {checkout}) IS NOT TRUE
           AND NOT EXISTS (SELECT 1 FROM orders o WHERE o.shop_id = $1 AND o.checkout_token = k.token AND o.created_at < {at}))
        """;

    /// <summary>$1 shop, $2 customer, $3 now, $4 the cart's token, $5 the checkout's (either may be null): asked for each
    /// cart of a known customer the cart offers answer, and each checkout the abandonment signal scores.</summary>
    internal static readonly string CustomerSql = "SELECT " + History("$2", "$3", "$4::text", "$5::text");

    /// <summary>The customer's orders and abandoned checkouts before <paramref name="now"/>, those of this cart (or checkout)
    /// left out; (null, null) for a guest.</summary>
    public static async Task<(int? Orders, int? Abandoned)> CustomerAsync(NpgsqlDataSource db, long shopId, long? customerId, DateTimeOffset now,
        string? cartToken, string? checkoutToken, CancellationToken ct)
    {
        if (customerId is null) return (null, null);
        await using var cmd = db.CreateCommand(CustomerSql);
        cmd.Parameters.Add(Sql.Param(shopId));
        cmd.Parameters.Add(Sql.Param(customerId.Value));
        cmd.Parameters.Add(Sql.Param(now));
        cmd.Parameters.Add(Sql.Text(cartToken));
        cmd.Parameters.Add(Sql.Text(checkoutToken));
        await using var r = await cmd.ExecuteReaderAsync(ct);
        await r.ReadAsync(ct);
        return (r.GetInt32(0), r.GetInt32(1));
    }
}

/// <summary>The nightly copy of every shop's cart links and carts shown an offer (<see cref="IntentData.RememberCustomersAsync"/>).</summary>
public sealed class CartCustomersJob(NpgsqlDataSource db, TimeProvider clock)
{
    public Task RunAsync(CancellationToken ct) => IntentData.RememberCustomersAsync(db, clock, ct);
}
