using Npgsql;
using PluginApp.Data;
using PluginApp.StoreData;

namespace PluginApp.StoreData;

/// <summary>
/// Adds the statements that write normalized store rows for one shop to the caller's batch, so a
/// delivery (or a backfill chunk) is written in one round trip and one transaction. Last writer wins
/// on updated_at, children follow their parent's version, and a redacted customer never gets personal data back.
/// </summary>
/// <param name="notified">The notifications already asked for in the transaction, when several writers share it (a batch of
/// webhook deliveries): PostgreSQL sends a channel's identical notifications of a transaction once, so each is asked for once.</param>
internal sealed class StoreWriter(NpgsqlBatch batch, long shopId, ISet<(string Channel, string Payload)>? notified = null,
    SegmentRows? segment = null)
{
    public long ShopId => shopId;

    /// <summary>Notifies the channel's listeners (every instance) when the transaction commits.</summary>
    public void Notify(string channel, string payload)
    {
        if (notified is null || notified.Add((channel, payload))) Add("SELECT pg_notify($1, $2)", channel, payload);
    }

    /// <summary>Notifies the channel's listeners that this shop changed, when the transaction commits.</summary>
    public void NotifyShop(string channel) => Notify(channel, shopId.ToString(System.Globalization.CultureInfo.InvariantCulture));

    /// <summary>
    /// How a customer's payload (stored row <c>customers</c>, incoming row <c>excluded</c>) changes her consent: one older than
    /// the stored dated one (the backfill's snapshot, read before a consent webhook came), or without a time, changes nothing,
    /// as in <see cref="AddMarketingConsent"/>; none at all (a webhook's customer carries none since 2025-01) keeps the stored
    /// consent; a time without a state does not move the consent's time. The backfill applies it again, beyond the upsert's
    /// newer-only rule (StoreMerge). A tie goes to a withdrawal: one stored without a time keeps the date of the consent it
    /// withdrew, and until 7 Dec 2026 the snapshot of that consent, read before the withdrawal came, subscribed her again.
    /// Declared before <see cref="CustomerUpsert"/>, whose initializer reads it.
    /// </summary>
    internal static readonly IReadOnlyDictionary<string, string> ConsentSets = new Dictionary<string, string>
    {
        ["accepts_marketing"] = """
            CASE WHEN customers.marketing_consent_at > COALESCE(excluded.marketing_consent_at, '-infinity') THEN customers.accepts_marketing
                 WHEN customers.marketing_consent_at = excluded.marketing_consent_at AND customers.accepts_marketing = false THEN false
                 ELSE COALESCE(excluded.accepts_marketing, customers.accepts_marketing) END
            """,
        ["marketing_consent_at"] = """
            CASE WHEN excluded.accepts_marketing IS NULL THEN customers.marketing_consent_at
                 ELSE GREATEST(customers.marketing_consent_at, excluded.marketing_consent_at) END
            """,
    };

    internal static readonly UpsertStatement CustomerUpsert = new("customers", ["shop_id", "id"],
        ["shop_id", "id", "email", "first_name", "last_name", "phone", "state", "tags", "accepts_marketing", "marketing_consent_at", "created_at", "updated_at"],
        keep: ["tags"], newerOnly: true, extraWhere: CustomerKept, sets: ConsentSets);

    internal static readonly UpsertStatement OrderUpsert = new("orders", ["shop_id", "id"],
        ["shop_id", "id", "name", "customer_id", "email", "currency", "total_price", "subtotal_price", "total_discounts", "total_tax",
         "financial_status", "fulfillment_status", "cancelled_at", "cancel_reason", "cart_token", "checkout_token", "source_name",
         "browser_ip", "billing_country", "shipping_country", "discount_codes", "tags", "test", "created_at", "updated_at", "processed_at",
         "gateway", "avs_result", "cvv_result", "card_bin", "card_last4", "visitor_hash", "taxes_included"],
        // Why the card's checks and number kept: the backfill reads them from the order's transactions, and most order
        // webhooks carry none; until 4 Dec 2026 the next orders/updated blanked them, and the card's other orders and
        // emails went uncounted in risk features. Why the cart and checkout tokens kept: GraphQL's Order has none, so the
        // backfill merges the order without them, and until 5 Dec 2026 it blanked the ones its webhook had brought; the
        // erasure and the export find a guest's carts, checkouts, cart-offer decisions and codes through them. The visitor
        // likewise (the backfill does not read the order's cart attributes): it leads to a guest's storefront events.
        keep: ["avs_result", "cvv_result", "card_bin", "card_last4", "cart_token", "checkout_token", "visitor_hash"],
        newerOnly: true, erasable: ["email", "browser_ip", "card_bin", "card_last4", "visitor_hash"],
        erasedIf: $"{CustomerErased} OR EXISTS (SELECT 1 FROM orders y WHERE y.shop_id = r.shop_id AND y.id = r.id AND y.redacted_at IS NOT NULL) OR {OrderErased("r.id")}",
        erasedAt: "redacted_at");

    /// <summary>The order was listed by a customers/redact before we held it (<c>erased_orders</c>).</summary>
    internal static string OrderErased(string orderId) =>
        $"EXISTS (SELECT 1 FROM erased_orders e WHERE e.shop_id = r.shop_id AND e.order_id = {orderId})";

    /// <summary>The incoming row r names a customer who was erased (a tombstone row when we never saw them).</summary>
    private const string CustomerErased =
        "EXISTS (SELECT 1 FROM customers x WHERE x.shop_id = r.shop_id AND x.id = r.customer_id AND x.redacted_at IS NOT NULL)";

    /// <summary>The same rules as a webhook's lines (<see cref="SegmentRows"/>), for the backfill's set-based merge (<see cref="StoreMerge"/>).</summary>
    internal static readonly UpsertStatement OrderLineUpsert = new("order_lines", ["shop_id", "id"],
        ["shop_id", "id", "order_id", "product_id", "variant_id", "title", "sku", "quantity", "price", "total_discount"]);

    // A refund's note is erased with its order: the order was redacted, or it belongs to an erased customer. A refund that
    // returned money (its transactions that succeeded) never goes back to none: an order's older version delivered late
    // carries it as it stood then, still pending, and until 7 Dec 2026 wrote it back to nothing. Any other amount is the
    // latest payload's, as the import's total and a webhook's successful transactions may differ.
    internal static readonly UpsertStatement RefundUpsert = new("refunds", ["shop_id", "id"],
        ["shop_id", "id", "order_id", "note", "amount", "created_at", "processed_at"], erasable: ["note"],
        sets: new Dictionary<string, string> { ["amount"] = "CASE WHEN excluded.amount = 0 AND refunds.amount > 0 THEN refunds.amount ELSE excluded.amount END" },
        erasedIf: $"""
            EXISTS (SELECT 1 FROM orders y LEFT JOIN customers x ON x.shop_id = y.shop_id AND x.id = y.customer_id
                    WHERE y.shop_id = r.shop_id AND y.id = r.order_id AND (y.redacted_at IS NOT NULL OR x.redacted_at IS NOT NULL))
            OR {OrderErased("r.order_id")}
            """);

    internal static readonly UpsertStatement RefundLineUpsert = new("refund_lines", ["shop_id", "refund_id", "line_item_id"],
        ["shop_id", "id", "refund_id", "order_id", "line_item_id", "quantity", "subtotal", "restock_type", "total_tax"]);

    internal static readonly UpsertStatement ProductUpsert = new("products", ["shop_id", "id"],
        ["shop_id", "id", "title", "handle", "product_type", "vendor", "status", "published", "tags", "image_url", "created_at", "updated_at", "deleted_at"],
        newerOnly: true);

    internal static readonly UpsertStatement VariantUpsert = new("variants", ["shop_id", "id"],
        ["shop_id", "id", "product_id", "title", "sku", "price", "compare_at_price", "inventory_quantity", "inventory_tracked", "inventory_policy",
         "inventory_item_id", "unit_cost", "updated_at"],
        keep: ["unit_cost", "inventory_item_id", "inventory_tracked"],
        guard: "EXISTS (SELECT 1 FROM products p WHERE p.shop_id = $1 AND p.id = $3 AND p.updated_at IS NOT DISTINCT FROM $14)");

    private static readonly UpsertStatement CartUpsert = new("carts", ["shop_id", "token"],
        ["shop_id", "token", "note", "total_price", "created_at", "updated_at"], newerOnly: true, erasable: ["note"],
        erasedIf: "EXISTS (SELECT 1 FROM carts y WHERE y.shop_id = r.shop_id AND y.token = r.token AND y.redacted_at IS NOT NULL)");

    private static readonly UpsertStatement CartLineUpsert = new("cart_lines", ["shop_id", "cart_token", "line_key"],
        ["shop_id", "cart_token", "line_key", "product_id", "variant_id", "quantity", "price"],
        guard: "EXISTS (SELECT 1 FROM carts c WHERE c.shop_id = $1 AND c.token = $2 AND c.updated_at IS NOT DISTINCT FROM $8)");

    private static readonly UpsertStatement CheckoutUpsert = new("checkouts", ["shop_id", "token"],
        ["shop_id", "token", "cart_token", "customer_id", "email", "currency", "total_price", "subtotal_price",
         "completed_at", "created_at", "updated_at"], newerOnly: true, erasable: ["email"],
        erasedIf: $"{CustomerErased} OR EXISTS (SELECT 1 FROM checkouts y WHERE y.shop_id = r.shop_id AND y.token = r.token AND y.redacted_at IS NOT NULL)");

    private static readonly UpsertStatement CheckoutLineUpsert = new("checkout_lines", ["shop_id", "checkout_token", "line_key"],
        ["shop_id", "checkout_token", "line_key", "product_id", "variant_id", "quantity", "price"],
        guard: "EXISTS (SELECT 1 FROM checkouts c WHERE c.shop_id = $1 AND c.token = $2 AND c.updated_at IS NOT DISTINCT FROM $8)");

    /// <summary>
    /// An order, its customer and its lines: gathered in the segment of deliveries the writer shares (written one statement
    /// per table, see <see cref="SegmentRows"/>), or, with none, written as a segment of one at once.
    /// </summary>
    /// <param name="visitorHash">The storefront visitor the order came from, hashed for the shop (<c>Assignment.VisitorHash</c>).</param>
    /// <param name="now">When the delivery came: the time of the erasure pass an erased order's late cart queues.</param>
    public void AddOrder(OrderRows rows, string? visitorHash, DateTimeOffset now)
    {
        var o = rows.Order;
        var rowsOf = segment ?? new SegmentRows();
        rowsOf.AddOrder(batch, rows.Customer is { } customer ? CustomerRow(customer) : null,
            [shopId, o.Id, o.Name, o.CustomerId, o.Email, o.Currency, o.TotalPrice, o.SubtotalPrice,
             o.TotalDiscounts, o.TotalTax, o.FinancialStatus, o.FulfillmentStatus, o.CancelledAt, o.CancelReason, o.CartToken,
             o.CheckoutToken, o.SourceName, o.BrowserIp, o.BillingCountry, o.ShippingCountry, o.DiscountCodes, o.Tags, o.Test,
             o.CreatedAt, o.UpdatedAt, o.ProcessedAt, o.Gateway, o.AvsResult, o.CvvResult, o.CardBin, o.CardLast4, visitorHash, o.TaxesIncluded],
            shopId, o, rows.Lines, now);
        if (segment is null) rowsOf.WriteTo(batch);
        foreach (var r in rows.Refunds) AddRefund(r);
    }

    /// <summary>
    /// The waiting cards (<c>order_cards</c>, rows <paramref name="waiting"/> selects as shop_id, order_id) whose order is
    /// held: an order stored without a card takes its card, with the time it came as the card's version
    /// (<c>card_received_at</c>); the waiting row goes either way, so a card that an order already has, or that an erased
    /// order or one of an erased customer refuses, is not kept. An order's webhooks carry no payment details, and its
    /// transaction's may come before or after it, or at the same moment in another transaction, where neither sees the
    /// other: the risk scorer and its sweep run this again for the cards still waiting (RiskScorer, RiskScoringJob).
    /// </summary>
    /// <param name="skipLocked">For a statement of its own (the scorer's, the sweep's): the card and its order are locked
    /// first, together, skipping any a webhook's transaction holds (it gives the card itself). Why: taking the card's row,
    /// then the order's, against a webhook's transaction that took the order's, then the card's, was a deadlock.</param>
    internal static string ApplyCardsSql(string waiting, bool skipLocked = false) => $"""
        WITH c AS MATERIALIZED (
            SELECT c.shop_id, c.order_id, c.avs_result, c.cvv_result, c.card_bin, c.card_last4, c.received_at
            FROM ({waiting}) w JOIN order_cards c ON c.shop_id = w.shop_id AND c.order_id = w.order_id
            {(skipLocked
                ? "JOIN orders o ON o.shop_id = c.shop_id AND o.id = c.order_id FOR UPDATE OF c, o SKIP LOCKED"
                : "WHERE EXISTS (SELECT 1 FROM orders o WHERE o.shop_id = c.shop_id AND o.id = c.order_id)")}),
        taken AS (
            UPDATE orders o SET avs_result = c.avs_result, cvv_result = c.cvv_result, card_bin = c.card_bin, card_last4 = c.card_last4,
                   card_received_at = c.received_at
            FROM c WHERE o.shop_id = c.shop_id AND o.id = c.order_id
              AND o.avs_result IS NULL AND o.cvv_result IS NULL AND o.card_bin IS NULL AND o.card_last4 IS NULL AND o.redacted_at IS NULL
              AND NOT EXISTS (SELECT 1 FROM erased_orders e WHERE e.shop_id = o.shop_id AND e.order_id = o.id)
              AND NOT EXISTS (SELECT 1 FROM customers x WHERE x.shop_id = o.shop_id AND x.id = o.customer_id AND x.redacted_at IS NOT NULL))
        DELETE FROM order_cards d USING c WHERE d.shop_id = c.shop_id AND d.order_id = c.order_id
        """;

    /// <summary>
    /// The card of an order_transactions/create (<see cref="OrderPayloads.Transaction"/>): given to its order if it is stored
    /// without one, else kept for it until it comes (the first card only: a capture or a second authorization names the
    /// same card). Nothing is kept for an order that was erased, or listed by an erasure before we held it.
    /// </summary>
    public void AddOrderCard(OrderTransactionRows rows, DateTimeOffset receivedAt)
    {
        if (rows.Card is not { } card) return;
        Add("""
            INSERT INTO order_cards (shop_id, order_id, transaction_id, avs_result, cvv_result, card_bin, card_last4, received_at)
            SELECT $1, $2, $3, $4, $5, $6, $7, $8
            WHERE NOT EXISTS (SELECT 1 FROM erased_orders e WHERE e.shop_id = $1 AND e.order_id = $2)
              AND NOT EXISTS (SELECT 1 FROM orders o WHERE o.shop_id = $1 AND o.id = $2 AND o.redacted_at IS NOT NULL)
            ON CONFLICT (shop_id, order_id) DO NOTHING
            """, shopId, rows.OrderId, rows.Id, Sql.Text(card.Avs), Sql.Text(card.Cvv), Sql.Text(card.Bin),
            Sql.Text(card.Last4), receivedAt);
        batch.BatchCommands.Add(SegmentRows.CardsFor([shopId], [rows.OrderId]));
    }

    public void AddProduct(ProductRows rows)
    {
        var p = rows.Product;
        ProductUpsert.AddTo(batch, [shopId, p.Id, p.Title, p.Handle, p.ProductType, p.Vendor, p.Status, p.Published, p.Tags, p.ImageUrl,
            p.CreatedAt, p.UpdatedAt, null]);
        foreach (var v in rows.Variants)
            VariantUpsert.AddTo(batch, [shopId, v.Id, v.ProductId, v.Title, v.Sku, v.Price, v.CompareAtPrice, v.InventoryQuantity, v.InventoryTracked,
                v.InventoryPolicy, v.InventoryItemId, v.UnitCost, v.UpdatedAt], TypedNull.Time(p.UpdatedAt));
        // A variant without a cost takes its inventory item's, when the item's webhook came first (products carry no cost).
        Add("""
            UPDATE variants v SET unit_cost = i.unit_cost FROM inventory_items i
            WHERE v.shop_id = $1 AND v.product_id = $2 AND v.unit_cost IS NULL AND i.shop_id = $1 AND i.id = v.inventory_item_id
              AND i.unit_cost IS NOT NULL
            """, shopId, p.Id);
        // Variants that left the product are gone from the catalog (only when this version stands).
        Add("""
            DELETE FROM variants v WHERE v.shop_id = $1 AND v.product_id = $2 AND NOT (v.id = ANY($3))
              AND EXISTS (SELECT 1 FROM products p WHERE p.shop_id = $1 AND p.id = $2 AND p.updated_at IS NOT DISTINCT FROM $4)
            """, shopId, p.Id, rows.VariantIds, TypedNull.Time(p.UpdatedAt));
    }

    /// <summary>The collections a product belongs to, replacing what was known before (from the backfill).</summary>
    public void AddProductCollections(long productId, long[] collectionIds)
    {
        Add("DELETE FROM product_collections WHERE shop_id = $1 AND product_id = $2 AND NOT (collection_id = ANY($3))", shopId, productId, collectionIds);
        if (collectionIds.Length > 0)
            Add("""
                INSERT INTO product_collections (shop_id, product_id, collection_id) SELECT $1, $2, unnest($3::int8[])
                ON CONFLICT DO NOTHING
                """, shopId, productId, collectionIds);
    }

    /// <summary>
    /// What an inventory item says: whether its stock is tracked and its unit cost, kept as the item's (newer only, whatever
    /// order it comes in: an item's webhook may come before its product's, whose variants then take the cost), and the cost
    /// given to the variants held; a cost the payload names as null (the merchant cleared it) clears theirs (until 5 Dec 2026
    /// it was kept, and margins went on using a cost the merchant had deleted). A payload without the field changes no cost.
    /// </summary>
    public void AddInventoryItem(InventoryItemRow item)
    {
        var cost = (object?)item.Cost ?? new TypedNull(NpgsqlTypes.NpgsqlDbType.Numeric);
        Add("""
            INSERT INTO inventory_items (shop_id, id, tracked, updated_at, unit_cost, cost_given) VALUES ($1, $2, $3, $4, $5, $6)
            ON CONFLICT (shop_id, id) DO UPDATE SET tracked = coalesce(excluded.tracked, inventory_items.tracked),
              updated_at = coalesce(excluded.updated_at, inventory_items.updated_at),
              unit_cost = CASE WHEN excluded.cost_given THEN excluded.unit_cost ELSE inventory_items.unit_cost END,
              cost_given = inventory_items.cost_given OR excluded.cost_given
            WHERE inventory_items.updated_at IS NULL OR excluded.updated_at IS NULL OR inventory_items.updated_at <= excluded.updated_at
            """, shopId, item.Id, (object?)item.Tracked ?? new TypedNull(NpgsqlTypes.NpgsqlDbType.Boolean), TypedNull.Time(item.UpdatedAt), cost, item.CostGiven);
        if (item.CostGiven)
            Add("""
                UPDATE variants v SET unit_cost = $3 WHERE v.shop_id = $1 AND v.inventory_item_id = $2 AND v.unit_cost IS DISTINCT FROM $3
                  AND EXISTS (SELECT 1 FROM inventory_items i WHERE i.shop_id = $1 AND i.id = $2 AND i.updated_at IS NOT DISTINCT FROM $4)
                """, shopId, item.Id, cost, TypedNull.Time(item.UpdatedAt));
    }

    /// <summary>
    /// customers/delete: Shopify deletes a customer who has no orders, or one merged into another (her orders move to the
    /// one kept). Her row is emptied and marked deleted (a tombstone row when we never saw her), so a late delivery does not
    /// bring her back, and no model scores, tags or signals her (<see cref="CustomerGone"/>). Not marked erased: an erasure's
    /// rules also empty the orders and refunds naming its customer, and a merged customer's orders, which may still name her
    /// until their update comes, belong to the customer kept. Until 6 Dec 2026 the topic was not subscribed, and a deleted
    /// customer was still scored and tagged, each call to Shopify failing.
    /// </summary>
    public void AddCustomerDeletion(long customerId, DateTimeOffset at) =>
        Add($"""
            INSERT INTO customers (shop_id, id, deleted_at) VALUES ($1, $2, $3)
            ON CONFLICT (shop_id, id) DO UPDATE SET {StorePersonalData.CustomerEmptied}, deleted_at = coalesce(customers.deleted_at, $3)
            """, shopId, customerId, at);

    /// <summary>The customer row <paramref name="c"/> is one no model may score, tag or signal: erased, or deleted in Shopify.</summary>
    internal static string CustomerGone(string c) => $"({c}.redacted_at IS NOT NULL OR {c}.deleted_at IS NOT NULL)";

    /// <summary>A customer row a delivery or an import may still write: neither erased nor deleted in Shopify.</summary>
    internal const string CustomerKept = "customers.redacted_at IS NULL AND customers.deleted_at IS NULL";

    /// <summary>
    /// orders/delete: Shopify deletes only a test order, or one cancelled or archived. It leaves the store with its lines,
    /// refunds and waiting card (features drop their own rows on <see cref="OrderDeletion"/>), and its id is kept
    /// (<c>deleted_orders</c>): a delivery of it that comes later is not written (WebhookIngestor), nor is it imported
    /// (StoreMerge). A delivery of it, or an import's chunk, whose statement began before this one committed can still write
    /// it back: DeletedOrdersRecheck deletes it again.
    /// </summary>
    public void AddOrderDeletion(long orderId, DateTimeOffset at)
    {
        Add("INSERT INTO deleted_orders (shop_id, order_id, deleted_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING", shopId, orderId, at);
        // The order first: an import's chunk writing it holds its row, and its lines and refunds are looked for once it commits.
        Add("DELETE FROM orders WHERE shop_id = $1 AND id = $2", shopId, orderId);
        foreach (var table in (ReadOnlySpan<string>)["order_lines", "refund_lines", "refunds", "order_cards"])
            Add($"DELETE FROM {table} WHERE shop_id = $1 AND order_id = $2", shopId, orderId);
    }

    /// <summary>The order <paramref name="orderId"/> of shop <paramref name="shopId"/> (SQL expressions) was deleted in Shopify.</summary>
    internal static string OrderDeleted(string shopId, string orderId) =>
        $"EXISTS (SELECT 1 FROM deleted_orders z WHERE z.shop_id = {shopId} AND z.order_id = {orderId})";

    /// <summary>A tombstone when the product is unknown: a create that arrives after its delete stays deleted.</summary>
    public void AddProductDeletion(long productId, DateTimeOffset at) =>
        Add("""
            INSERT INTO products (shop_id, id, status, deleted_at, updated_at) VALUES ($1, $2, 'deleted', $3, $3)
            ON CONFLICT (shop_id, id) DO UPDATE SET status = 'deleted', deleted_at = excluded.deleted_at,
              updated_at = GREATEST(products.updated_at, excluded.updated_at)
            """, shopId, productId, at);

    public void AddCart(CartRows rows)
    {
        var c = rows.Cart;
        CartUpsert.AddTo(batch, [shopId, c.Token, c.Note, c.TotalPrice, c.CreatedAt, c.UpdatedAt]);
        AddReplaceChildren("cart_lines", "cart_token", c.Token, "carts", "token", c.UpdatedAt,
            rows.Lines.Select(l => l.LineKey).ToArray());
        foreach (var l in rows.Lines)
            CartLineUpsert.AddTo(batch, [shopId, l.CartToken, l.LineKey, l.ProductId, l.VariantId, l.Quantity, l.Price],
                TypedNull.Time(c.UpdatedAt));
    }

    public void AddCheckout(CheckoutRows rows)
    {
        var c = rows.Checkout;
        if (rows.Customer is { } customer) AddCustomer(customer);
        CheckoutUpsert.AddTo(batch, [shopId, c.Token, c.CartToken, c.CustomerId, c.Email, c.Currency, c.TotalPrice,
            c.SubtotalPrice, c.CompletedAt, c.CreatedAt, c.UpdatedAt]);
        AddReplaceChildren("checkout_lines", "checkout_token", c.Token, "checkouts", "token", c.UpdatedAt,
            rows.Lines.Select(l => l.LineKey).ToArray());
        foreach (var l in rows.Lines)
            CheckoutLineUpsert.AddTo(batch, [shopId, l.CheckoutToken, l.LineKey, l.ProductId, l.VariantId, l.Quantity, l.Price],
                TypedNull.Time(c.UpdatedAt));
    }

    /// <summary>
    /// Gives a step's statement this delivery's row (and its children, e.g. the order's lines): written once for the segment
    /// of deliveries the writer shares, after all of their own statements; with no segment, at once.
    /// </summary>
    public void AddToSegment(RowsStatement statement, object?[] row, IEnumerable<object?[]>? children = null)
    {
        var rowsOf = segment ?? new SegmentRows();
        rowsOf.Add(statement, row, children);
        if (segment is null) rowsOf.WriteTo(batch);
    }

    public void AddCustomer(Customer c) => CustomerUpsert.AddTo(batch, CustomerRow(c));

    /// <summary>
    /// A customer's email consent (a row of its own when the customer is not held yet; customers/create fills the rest). Why
    /// ordered by the consent's own time: Shopify sends webhooks in no set order, and a withdrawal must not be undone by the
    /// consent before it. One without a time (Shopify may send none) counts only while no dated one is stored (neither the
    /// time it was received nor the unsigned header's can rank a body sent again), unless it withdraws: a withdrawal always
    /// stands, as sending a customer no marketing is the safe side, and is dated by when it was received (<paramref name="receivedAt"/>)
    /// where that is later than the consent stored, so a consent read or sent before it (the import's snapshot, a copy
    /// sent again) does not undo it; a tie goes to the withdrawal too. Until 7 Dec 2026 it kept the stored date, or none, and
    /// the import's snapshot of the consent it withdrew subscribed her again. An erased customer stays as erased.
    /// </summary>
    public void AddMarketingConsent(MarketingConsent c, DateTimeOffset receivedAt) => Add($"""
        INSERT INTO customers (shop_id, id, accepts_marketing, marketing_consent_at) VALUES ($1, $2, $3, coalesce($4, CASE WHEN NOT $3 THEN $5::timestamptz END))
        ON CONFLICT (shop_id, id) DO UPDATE SET accepts_marketing = excluded.accepts_marketing,
          marketing_consent_at = CASE WHEN $4::timestamptz IS NULL AND NOT excluded.accepts_marketing
                                      THEN greatest(customers.marketing_consent_at, $5::timestamptz)
                                      ELSE coalesce(excluded.marketing_consent_at, customers.marketing_consent_at) END
        WHERE {CustomerKept} AND (customers.marketing_consent_at IS NULL OR customers.marketing_consent_at < excluded.marketing_consent_at
          OR (customers.marketing_consent_at = excluded.marketing_consent_at AND (customers.accepts_marketing IS NOT FALSE OR NOT excluded.accepts_marketing))
          OR ($4::timestamptz IS NULL AND NOT excluded.accepts_marketing))
        """, shopId, c.CustomerId, c.Subscribed, TypedNull.Time(c.At), receivedAt);

    private object?[] CustomerRow(Customer c) =>
        [shopId, c.Id, c.Email, c.FirstName, c.LastName, c.Phone, c.State, c.Tags, c.AcceptsMarketing, c.MarketingConsentAt, c.CreatedAt, c.UpdatedAt];

    public void AddRefund(RefundRows rows)
    {
        var r = rows.Refund;
        RefundUpsert.AddTo(batch, [shopId, r.Id, r.OrderId, r.Note, r.Amount, r.CreatedAt, r.ProcessedAt]);
        foreach (var l in rows.Lines)
            RefundLineUpsert.AddTo(batch, [shopId, l.Id, l.RefundId, l.OrderId, l.LineItemId, l.Quantity, l.Subtotal, l.RestockType, l.TotalTax]);
    }

    /// <summary>Adds a statement with positional parameters $1..$n.</summary>
    public void Add(string sql, params object?[] args)
    {
        var cmd = new NpgsqlBatchCommand(sql);
        foreach (var a in args) cmd.Parameters.Add(Sql.Param(a));
        batch.BatchCommands.Add(cmd);
    }

    private void AddReplaceChildren(string childTable, string parentColumn, object parentKey,
        string parentTable, string parentKeyColumn, DateTimeOffset? version, string[] keepKeys) =>
        Add($"""
            DELETE FROM {childTable} x WHERE x.shop_id = $1 AND x.{parentColumn} = $2 AND NOT (x.line_key = ANY($3))
              AND EXISTS (SELECT 1 FROM {parentTable} p WHERE p.shop_id = $1 AND p.{parentKeyColumn} = $2 AND p.updated_at IS NOT DISTINCT FROM $4)
            """, shopId, parentKey, keepKeys, TypedNull.Time(version));
}

/// <summary>
/// The rows of a segment of webhook deliveries (<see cref="PluginApp.Webhooks.IngestBatcher"/>), written with one statement
/// per table instead of one per delivery. The order rows (customers, then orders, then their lines) go where the segment's
/// first order was added, so every statement a delivery adds after its rows still comes after them. The steps' statements
/// (<see cref="RowsStatement"/>) go after every statement of the segment: a step's row for an order may thus also see
/// what a later delivery of the same segment wrote, as it could when the two came a moment apart (Shopify sends webhooks
/// in no set order). Each key is at most once in a segment (the batcher ends a segment at a repeated id).
/// </summary>
internal sealed class SegmentRows
{
    private readonly List<object?[]> _customers = [], _orders = [], _lines = [];
    private DateTimeOffset _latest = DateTimeOffset.MinValue;

    /// <summary>Where an order's row (<see cref="StoreWriter.OrderUpsert"/>'s columns) holds its cart and checkout tokens and its visitor.</summary>
    private static readonly int CartTokenAt = OrderColumn("cart_token"), CheckoutTokenAt = OrderColumn("checkout_token"), VisitorAt = OrderColumn("visitor_hash");

    private static int OrderColumn(string name) => StoreWriter.OrderUpsert.Columns.ToList().IndexOf(name) is var i and >= 0
        ? i : throw new InvalidOperationException($"orders has no {name} column to write");
    private readonly List<(RowsStatement Statement, List<object?[]> Rows, List<object?[]> Children)> _steps = [];
    private int _at = -1;

    // The lines follow their order's version, as children do: a line is written only while its order stands at the version
    // the line came with. The same upsert as the backfill's lines.
    private static readonly RowsStatement Lines = new("l", UpsertStatement.Typed([.. StoreWriter.OrderLineUpsert.Columns, "order_updated_at"]),
        StoreWriter.OrderLineUpsert.SetBased($$"""
            SELECT {{string.Join(", ", StoreWriter.OrderLineUpsert.Columns.Select(c => "l." + c))}}
            FROM {rows}
            WHERE EXISTS (SELECT 1 FROM orders o WHERE o.shop_id = l.shop_id AND o.id = l.order_id AND o.updated_at IS NOT DISTINCT FROM l.order_updated_at)
            """).Sql);

    /// <param name="customer">The customer's row as <see cref="StoreWriter.CustomerUpsert"/> takes it, if the order names one.</param>
    /// <param name="order">The order's row as <see cref="StoreWriter.OrderUpsert"/> takes it.</param>
    /// <param name="now">When its delivery came.</param>
    public void AddOrder(NpgsqlBatch batch, object?[]? customer, object?[] order, long shopId, Order o, IEnumerable<OrderLine> lines, DateTimeOffset now)
    {
        if (_at < 0) _at = batch.BatchCommands.Count;
        if (now > _latest) _latest = now;
        if (customer is not null) _customers.Add(customer);
        _orders.Add(order);
        // One row may not be upserted twice in a statement: a line listed twice is written as its last listing.
        foreach (var l in lines.GroupBy(l => l.Id).Select(g => g.Last()))
            _lines.Add([shopId, l.Id, o.Id, l.ProductId, l.VariantId, l.Title, l.Sku, l.Quantity, l.Price, l.TotalDiscount, o.UpdatedAt]);
    }

    /// <summary>
    /// The orders (shop and id, pairwise) stored without a card take the one their transaction brought (<see cref="StoreWriter.ApplyCardsSql"/>).
    /// </summary>
    internal static NpgsqlBatchCommand CardsFor(long[] shops, long[] orders) =>
        new(StoreWriter.ApplyCardsSql("SELECT * FROM unnest($1::bigint[], $2::bigint[]) v(shop_id, order_id)")) { Parameters = { Sql.Param(shops), Sql.Param(orders) } };

    /// <summary>
    /// The cart and checkout of each order (shop and id, pairwise) stored as erased (its customer erased, or listed by an
    /// erasure before we held it) are held as erased by their tokens: emptied if held, else a row that keeps their late
    /// deliveries empty (StoreWriter's CartUpsert and CheckoutUpsert). Why here: the erasure could not know the tokens of an
    /// order it did not hold, and until 7 Dec 2026 that order's cart kept its note, and a guest's checkout her email. The
    /// tokens are Shopify's, from the order's signed body (or the row's, where a newer version of it was stored without them,
    /// as an import stores it), never one a storefront request named. A cart or checkout already held as erased is left
    /// alone, so the order's later deliveries take no lock on it.
    /// A cart erased here also queues a pass of her erasure (<c>erasure_second_passes</c>, run by ErasureSecondPassJob after
    /// its delay) with the cart, the order and the visitor id the delivery names: the cart offers' answers and codes on that
    /// cart, and the storefront rows of the visitors they lead to, are hers, and her erasure could not find them (until 7 Dec
    /// 2026 they stayed). Hers: the customer whose erasure listed or found the order (<c>erased_orders</c>), else the
    /// order's customer if erased. Queues nothing: a guest's order erased before migration 0094 (its erasure kept no
    /// customer id), and an order whose cart was already erased or that names none (the visitor its delivery names is then
    /// tied to her by nothing the app keeps: the order's row holds no visitor once erased). Concurrent deliveries of one
    /// order may each queue a pass; each is a whole erasure of hers again, no harm but its cost.
    /// </summary>
    internal static NpgsqlBatchCommand ErasedTokensFor(long[] shops, long[] orders, string?[] carts, string?[] checkouts, string?[] visitors,
        DateTimeOffset now) => new("""
        WITH e AS MATERIALIZED (
            SELECT o.shop_id, o.id AS order_id, coalesce(o.cart_token, v.cart_token) AS cart_token, coalesce(o.checkout_token, v.checkout_token) AS checkout_token,
                   o.redacted_at, v.visitor_hash,
                   coalesce((SELECT eo.customer_id FROM erased_orders eo WHERE eo.shop_id = o.shop_id AND eo.order_id = o.id),
                            (SELECT x.id FROM customers x WHERE x.shop_id = o.shop_id AND x.id = o.customer_id AND x.redacted_at IS NOT NULL)) AS customer_id
            FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[]) v(shop_id, order_id, cart_token, checkout_token, visitor_hash)
            JOIN orders o ON o.shop_id = v.shop_id AND o.id = v.order_id
            WHERE o.redacted_at IS NOT NULL AND coalesce(o.cart_token, v.cart_token, o.checkout_token, v.checkout_token) IS NOT NULL),
        carts_erased AS (
            INSERT INTO carts (shop_id, token, redacted_at)
            SELECT DISTINCT ON (shop_id, cart_token) shop_id, cart_token, redacted_at FROM e WHERE cart_token IS NOT NULL
              AND NOT EXISTS (SELECT 1 FROM carts c WHERE c.shop_id = e.shop_id AND c.token = e.cart_token AND c.redacted_at IS NOT NULL AND c.note IS NULL)
            ON CONFLICT (shop_id, token) DO UPDATE SET note = NULL, redacted_at = coalesce(carts.redacted_at, excluded.redacted_at)
            RETURNING shop_id, token),
        passes AS (
            INSERT INTO erasure_second_passes (shop_id, customer_id, request, requested_at, orders, visitors, carts)
            SELECT e.shop_id, e.customer_id,
                   jsonb_build_object('customer', jsonb_build_object('id', e.customer_id), 'orders_to_redact', jsonb_agg(DISTINCT e.order_id)),
                   $6, array_agg(DISTINCT e.order_id), coalesce(array_agg(DISTINCT e.visitor_hash) FILTER (WHERE e.visitor_hash IS NOT NULL), '{}'),
                   array_agg(DISTINCT e.cart_token)
            FROM e JOIN carts_erased c ON c.shop_id = e.shop_id AND c.token = e.cart_token
            WHERE e.customer_id IS NOT NULL
            GROUP BY e.shop_id, e.customer_id
            ON CONFLICT (shop_id, customer_id, requested_at) DO UPDATE SET
              orders = ARRAY(SELECT DISTINCT unnest(erasure_second_passes.orders || excluded.orders)),
              visitors = ARRAY(SELECT DISTINCT unnest(erasure_second_passes.visitors || excluded.visitors)),
              carts = ARRAY(SELECT DISTINCT unnest(erasure_second_passes.carts || excluded.carts)))
        INSERT INTO checkouts (shop_id, token, redacted_at)
        SELECT DISTINCT ON (shop_id, checkout_token) shop_id, checkout_token, redacted_at FROM e WHERE checkout_token IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM checkouts k WHERE k.shop_id = e.shop_id AND k.token = e.checkout_token AND k.redacted_at IS NOT NULL AND k.email IS NULL)
        ON CONFLICT (shop_id, token) DO UPDATE SET email = NULL, redacted_at = coalesce(checkouts.redacted_at, excluded.redacted_at)
        """) { Parameters = { Sql.Param(shops), Sql.Param(orders), Sql.Array(carts, NpgsqlTypes.NpgsqlDbType.Text), Sql.Array(checkouts, NpgsqlTypes.NpgsqlDbType.Text),
            Sql.Array(visitors, NpgsqlTypes.NpgsqlDbType.Text), Sql.Param(now) } };

    /// <summary>A step's row for one delivery of the segment, and its children (each given its row's n).</summary>
    public void Add(RowsStatement statement, object?[] row, IEnumerable<object?[]>? children)
    {
        var at = _steps.FindIndex(s => s.Statement == statement);
        if (at < 0)
        {
            at = _steps.Count;
            _steps.Add((statement, [], []));
        }
        var (_, rows, kids) = _steps[at];
        rows.Add(row);
        if (children is null) return;
        if (!statement.HasChildren) throw new ArgumentException("the statement takes no children", nameof(children));
        foreach (var c in children) kids.Add([(long)rows.Count, .. c]);
    }

    /// <summary>
    /// Puts the segment's statements in their place in the batch: the order rows where its first order was added, the steps'
    /// statements at the end. Returns where the order rows went and how many statements they are.
    /// </summary>
    public (int At, int Count) WriteTo(NpgsqlBatch batch)
    {
        foreach (var (statement, rows, children) in _steps) batch.BatchCommands.Add(statement.Command(rows, children));
        _steps.Clear();
        if (_at < 0) return (0, 0);
        var commands = new List<NpgsqlBatchCommand>(5);
        if (_customers.Count > 0) commands.Add(StoreWriter.CustomerUpsert.ForRows(_customers));
        commands.Add(StoreWriter.OrderUpsert.ForRows(_orders));
        long[] shops = [.. _orders.Select(o => (long)o[0]!)], ids = [.. _orders.Select(o => (long)o[1]!)];
        commands.Add(CardsFor(shops, ids));
        commands.Add(ErasedTokensFor(shops, ids, [.. _orders.Select(o => (string?)o[CartTokenAt])], [.. _orders.Select(o => (string?)o[CheckoutTokenAt])],
            [.. _orders.Select(o => (string?)o[VisitorAt])], _latest));
        if (_lines.Count > 0) commands.Add(Lines.Command(_lines));
        for (var i = 0; i < commands.Count; i++) batch.BatchCommands.Insert(_at + i, commands[i]);
        var at = _at;
        _at = -1;
        _customers.Clear();
        _orders.Clear();
        _lines.Clear();
        _latest = DateTimeOffset.MinValue;
        return (at, commands.Count);
    }
}
