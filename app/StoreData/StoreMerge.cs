namespace PluginApp.StoreData;

/// <summary>
/// Bulk-operation JSONL lines staged by the backfill (backfill_lines: the line as json, or an order's line item as the
/// values the app read from it, Backfill.BulkLineItem; its parent's id) mapped to store rows and merged by the upserts of
/// <see cref="StoreWriter"/>, set-based: a chunk of parent objects with their children in a few INSERT ... SELECT ... ON
/// CONFLICT statements. The mapping is GraphQL's shape to the webhook rows' (enums in capitals
/// become the REST spellings, money is the shop currency's amount, tags a comma-separated string); the rules are the
/// webhook path's: last writer wins on updated_at, children are written only when their parent's version is the one
/// stored, a redacted customer gets no personal data back; and a row whose values would not change is not rewritten.
/// Every statement takes $1 the run, $2 the shop, and the chunk: the phase's parent lines numbered in ($3, $4].
/// </summary>
internal static class StoreMerge
{
    public const string Products = "products";
    public const string Customers = "customers";
    public const string Orders = "orders";

    /// <summary>The chunk's parents as s(seq, b, id, updated_at): each object once, its newest version (the later line when two tie).</summary>
    /// <remarks>Why OFFSET 0: it keeps the subquery whole, so each staged line (json) is converted to jsonb once, not once per use.</remarks>
    private static string Chunk(string phase) => $"""
        (SELECT DISTINCT ON (id) * FROM (
           SELECT l.seq, l.b, bulk_id(l.b ->> 'id') AS id, (l.b ->> 'updatedAt')::timestamptz AS updated_at FROM (
             SELECT l.line_no AS seq, l.body::jsonb AS b
             FROM backfill_lines l WHERE l.run_id = $1 AND l.phase = '{phase}' AND l.parent_id IS NULL AND l.line_no > $3 AND l.line_no <= $4 OFFSET 0) l) p
         ORDER BY id, updated_at DESC, seq DESC) s
        """;

    /// <summary>The ids of the chunk's parent objects, for a feature's merge step (<see cref="Backfill.BackfillMergeStep"/>).</summary>
    public static string ChunkIds(string phase) =>
        $"SELECT bulk_id(l.body ->> 'id') FROM backfill_lines l WHERE l.run_id = $1 AND l.phase = '{phase}' AND l.parent_id IS NULL AND l.line_no > $3 AND l.line_no <= $4";

    /// <summary>The staged lines <paramref name="alias"/> (as staged: body json, or a line item's values) that are children of the chunk's parent s.</summary>
    private static string ChildOf(string phase, string alias = "x") => $"{alias}.run_id = $1 AND {alias}.phase = '{phase}' AND {alias}.parent_id = s.id";

    /// <summary>The children of the chunk's parent s as x(line_no, parent_id, body), body converted to jsonb once per line.</summary>
    private static string Children(string phase) =>
        $"backfill_lines c ON {ChildOf(phase, "c")} CROSS JOIN LATERAL (SELECT c.line_no, c.parent_id, c.body::jsonb AS body OFFSET 0) x";

    private static string Money(string json, string set) => $"({json} -> '{set}' -> 'shopMoney' ->> 'amount')::numeric";
    private static string Time(string json, string field) => $"({json} ->> '{field}')::timestamptz";

    /// <summary>The SELECT list of <paramref name="upsert"/>'s columns, each by its expression (the shop is $2).</summary>
    private static string Values(UpsertStatement upsert, IReadOnlyDictionary<string, string> expressions) =>
        string.Join(", ", upsert.Columns.Select(c => c == "shop_id" ? "$2::int8" : $"{expressions[c]} AS {c}"));

    private static readonly Dictionary<string, string> Product = new()
    {
        ["id"] = "s.id", ["title"] = "coalesce(s.b ->> 'title', '')", ["handle"] = "s.b ->> 'handle'", ["product_type"] = "s.b ->> 'productType'",
        ["vendor"] = "s.b ->> 'vendor'", ["status"] = "lower(s.b ->> 'status')",
        ["published"] = "NOT (s.b ? 'publishedAt' AND jsonb_typeof(s.b -> 'publishedAt') = 'null')", ["tags"] = "bulk_tags(s.b -> 'tags')",
        ["image_url"] = "s.b -> 'featuredMedia' -> 'preview' -> 'image' ->> 'url'", ["created_at"] = Time("s.b", "createdAt"), ["updated_at"] = "s.updated_at",
        ["deleted_at"] = "NULL::timestamptz",
    };

    private static readonly Dictionary<string, string> Variant = new()
    {
        ["id"] = "bulk_id(x.body ->> 'id')", ["product_id"] = "x.parent_id", ["title"] = "x.body ->> 'title'", ["sku"] = "x.body ->> 'sku'",
        ["price"] = "(x.body ->> 'price')::numeric", ["compare_at_price"] = "(x.body ->> 'compareAtPrice')::numeric",
        ["inventory_quantity"] = "(x.body ->> 'inventoryQuantity')::int4",
        ["inventory_tracked"] = "(x.body -> 'inventoryItem' ->> 'tracked')::boolean", ["inventory_policy"] = "lower(x.body ->> 'inventoryPolicy')",
        ["inventory_item_id"] = "bulk_id(x.body -> 'inventoryItem' ->> 'id')", ["unit_cost"] = "(x.body -> 'inventoryItem' -> 'unitCost' ->> 'amount')::numeric",
        ["updated_at"] = Time("x.body", "updatedAt"),
    };

    private static string ConsentSet(string column) => StoreWriter.ConsentSets[column];

    private const string IsCollection = "x.body ->> 'id' LIKE 'gid://shopify/Collection/%'";

    private static readonly Dictionary<string, string> Customer = new()
    {
        ["id"] = "s.id", ["email"] = "nullif(btrim(s.b -> 'defaultEmailAddress' ->> 'emailAddress'), '')", ["first_name"] = "s.b ->> 'firstName'", ["last_name"] = "s.b ->> 'lastName'",
        ["phone"] = "s.b -> 'defaultPhoneNumber' ->> 'phoneNumber'", ["state"] = "lower(s.b ->> 'state')", ["tags"] = "CASE WHEN s.b ? 'tags' THEN bulk_tags(s.b -> 'tags') END",
        ["accepts_marketing"] = "(s.b -> 'defaultEmailAddress' ->> 'marketingState') = 'SUBSCRIBED'",
        ["marketing_consent_at"] = Time("(s.b -> 'defaultEmailAddress')", "marketingUpdatedAt"),
        ["created_at"] = Time("s.b", "createdAt"), ["updated_at"] = "s.updated_at",
    };

    // Why the personal fields in the SELECT rather than a guard UPDATE after it (as StoreWriter does): a re-import then rewrites nothing.
    private static string UnlessRedacted(string expression) => $"CASE WHEN r.id IS NULL AND ro.id IS NULL AND eo.order_id IS NULL THEN {expression} END";

    // r: the order's customer if erased; ro: the order itself if erased (a guest's, found by email); eo: the order listed by
    // an erasure before we held it. As StoreWriter.OrderUpsert.
    private const string Redacted = """
        LEFT JOIN customers r ON r.shop_id = $2 AND r.id = bulk_id(s.b -> 'customer' ->> 'id') AND r.redacted_at IS NOT NULL
        LEFT JOIN orders ro ON ro.shop_id = $2 AND ro.id = s.id AND ro.redacted_at IS NOT NULL
        LEFT JOIN erased_orders eo ON eo.shop_id = $2 AND eo.order_id = s.id
        """;

    // An order Shopify deleted while the import ran (its snapshot still holds it) is not brought back; its lines follow the
    // order's row, which is not written.
    private static readonly string DeletedOrder = StoreWriter.OrderDeleted("$2", "s.id");

    private static readonly Dictionary<string, string> Order = new()
    {
        ["id"] = "s.id", ["name"] = "s.b ->> 'name'", ["customer_id"] = "bulk_id(s.b -> 'customer' ->> 'id')",
        ["email"] = UnlessRedacted("nullif(btrim(s.b ->> 'email'), '')"), ["currency"] = "s.b ->> 'currencyCode'",
        ["total_price"] = Money("s.b", "totalPriceSet"), ["subtotal_price"] = Money("s.b", "subtotalPriceSet"),
        ["total_discounts"] = Money("s.b", "totalDiscountsSet"), ["total_tax"] = Money("s.b", "totalTaxSet"),
        ["financial_status"] = "lower(s.b ->> 'displayFinancialStatus')",
        // As orders webhooks say it (fulfilled, partial, restocked, or none): until 5 Dec 2026 the backfill stored the
        // GraphQL enum lower-cased (partially_fulfilled, in_progress, on_hold...), and the same order read one way or the
        // other by which path wrote it last.
        ["fulfillment_status"] = """
            CASE s.b ->> 'displayFulfillmentStatus' WHEN 'FULFILLED' THEN 'fulfilled' WHEN 'PARTIALLY_FULFILLED' THEN 'partial'
              WHEN 'RESTOCKED' THEN 'restocked' END
            """,
        ["cancelled_at"] = Time("s.b", "cancelledAt"), ["cancel_reason"] = "lower(s.b ->> 'cancelReason')",
        // GraphQL's Order has no cart or checkout token: the webhooks bring them.
        ["cart_token"] = "NULL::text", ["checkout_token"] = "NULL::text",
        ["source_name"] = "s.b ->> 'sourceName'", ["browser_ip"] = UnlessRedacted("s.b ->> 'clientIp'"),
        ["billing_country"] = "s.b -> 'billingAddress' ->> 'countryCodeV2'", ["shipping_country"] = "s.b -> 'shippingAddress' ->> 'countryCodeV2'",
        ["discount_codes"] = "coalesce((SELECT string_agg(d, ',' ORDER BY n) FROM jsonb_array_elements_text(s.b -> 'discountCodes') WITH ORDINALITY e(d, n)), '')",
        ["tags"] = "bulk_tags(s.b -> 'tags')", ["test"] = "coalesce((s.b ->> 'test')::boolean, false)",
        ["created_at"] = Time("s.b", "createdAt"), ["updated_at"] = "s.updated_at", ["processed_at"] = Time("s.b", "processedAt"),
        ["gateway"] = "(SELECT string_agg(g, ',' ORDER BY n) FROM jsonb_array_elements_text(s.b -> 'paymentGatewayNames') WITH ORDINALITY e(g, n))",
        ["avs_result"] = "card.d ->> 'avsResultCode'", ["cvv_result"] = "card.d ->> 'cvvResultCode'",
        ["card_bin"] = UnlessRedacted("card.d ->> 'bin'"), ["card_last4"] = UnlessRedacted("bulk_last4(card.d ->> 'number')"),
        // Nor does the backfill read its cart attributes, where our blocks' visitor id is: the webhook's stays.
        ["visitor_hash"] = "NULL::text",
        ["taxes_included"] = "(s.b ->> 'taxesIncluded')::boolean",
        // Marked as erased, as StoreWriter.OrderUpsert marks it: an erased order keeps its time, and one of an erased customer
        // or listed by an erasure before we held it is erased now.
        ["redacted_at"] = "coalesce(ro.redacted_at, CASE WHEN r.id IS NOT NULL OR eo.order_id IS NOT NULL THEN now() END)",
    };

    // The card of the first successful sale or authorization (paymentDetails is a union; only CardPaymentDetails has these).
    private const string Card = """
        LEFT JOIN LATERAL (
          SELECT t -> 'paymentDetails' AS d FROM jsonb_array_elements(CASE WHEN jsonb_typeof(s.b -> 'transactions') = 'array' THEN s.b -> 'transactions' ELSE '[]' END)
            WITH ORDINALITY e(t, n)
          WHERE t ->> 'kind' IN ('SALE', 'AUTHORIZATION') AND coalesce(t ->> 'status', 'SUCCESS') = 'SUCCESS' AND jsonb_typeof(t -> 'paymentDetails') = 'object'
          ORDER BY n LIMIT 1) card ON true
        """;

    // Line items are staged as these values, read from their lines by the app (Backfill.BulkLineItem), not as JSON.
    private static readonly Dictionary<string, string> OrderLine = new()
    {
        ["id"] = "x.item_id", ["order_id"] = "x.parent_id", ["product_id"] = "x.item_product_id", ["variant_id"] = "x.item_variant_id",
        ["title"] = "x.item_title", ["sku"] = "x.item_sku", ["quantity"] = "x.item_quantity",
        ["price"] = "x.item_price::numeric", ["total_discount"] = "x.item_total_discount::numeric",
    };

    // Refunds come inside their order's line as rf(refund, n); their lines are asked for after the phases (BackfillService).
    private const string RefundsOfChunk = """
        CROSS JOIN LATERAL jsonb_array_elements(CASE WHEN jsonb_typeof(s.b -> 'refunds') = 'array' THEN s.b -> 'refunds' ELSE '[]' END) WITH ORDINALITY rf(refund, n)
        """;

    private static readonly Dictionary<string, string> Refund = new()
    {
        ["id"] = "bulk_id(rf.refund ->> 'id')", ["order_id"] = "s.id", ["note"] = UnlessRedacted("rf.refund ->> 'note'"),
        ["amount"] = Money("rf.refund", "totalRefundedSet"), ["created_at"] = Time("rf.refund", "createdAt"),
        ["processed_at"] = Time("rf.refund", "processedAt"),
    };

    /// <summary>The tables each phase's merge writes.</summary>
    public static readonly IReadOnlyDictionary<string, string[]> Tables = new Dictionary<string, string[]>
    {
        [Products] = ["products", "variants", "product_collections"],
        [Customers] = ["customers"],
        [Orders] = ["orders", "order_lines", "refunds", "refund_lines"],
    };

    /// <summary>The merge of a chunk of each phase, in order.</summary>
    public static readonly IReadOnlyDictionary<string, MergeStatement[]> Phases = new Dictionary<string, MergeStatement[]>
    {
        [Products] =
        [
            StoreWriter.ProductUpsert.SetBased($"SELECT {Values(StoreWriter.ProductUpsert, Product)} FROM {Chunk(Products)} ORDER BY s.id"),
            // Variants follow their product's version, as in StoreWriter.AddProduct.
            StoreWriter.VariantUpsert.SetBased($"""
                SELECT DISTINCT ON (bulk_id(x.body ->> 'id')) {Values(StoreWriter.VariantUpsert, Variant)}
                FROM {Chunk(Products)} JOIN {Children(Products)}
                JOIN products p ON p.shop_id = $2 AND p.id = s.id AND p.updated_at IS NOT DISTINCT FROM s.updated_at
                WHERE NOT ({IsCollection})
                ORDER BY bulk_id(x.body ->> 'id'), x.line_no DESC
                """),
            // A product a webhook brought at a newer version than the snapshot keeps its variants as the webhook wrote them,
            // but product webhooks carry no inventory item nor whether stock is tracked, which only the import reads: the
            // snapshot's fill what its variants lack, unless their inventory item's own webhook came (it set them). Their cost
            // comes from the item, below. Until 7 Dec 2026 a product sold while the import ran kept no cost (the cart offers'
            // margin unknown) and read as tracked (out of stock at 0, a digital product never recommended) until its item's
            // webhook came.
            $"""
            UPDATE variants v SET inventory_tracked = coalesce(v.inventory_tracked, x.inventory_tracked),
              inventory_item_id = coalesce(v.inventory_item_id, x.inventory_item_id)
            FROM (SELECT DISTINCT ON (bulk_id(x.body ->> 'id')) bulk_id(x.body ->> 'id') AS id, s.id AS product_id,
                         {Variant["inventory_tracked"]} AS inventory_tracked, {Variant["inventory_item_id"]} AS inventory_item_id
                  FROM {Chunk(Products)} JOIN {Children(Products)}
                  JOIN products p ON p.shop_id = $2 AND p.id = s.id AND p.updated_at IS DISTINCT FROM s.updated_at
                  WHERE NOT ({IsCollection})
                  ORDER BY bulk_id(x.body ->> 'id'), x.line_no DESC) x
            WHERE v.shop_id = $2 AND v.id = x.id AND v.product_id = x.product_id
              AND ((v.inventory_tracked IS NULL AND x.inventory_tracked IS NOT NULL) OR (v.inventory_item_id IS NULL AND x.inventory_item_id IS NOT NULL))
              AND NOT EXISTS (SELECT 1 FROM inventory_items i WHERE i.shop_id = $2 AND i.id = coalesce(v.inventory_item_id, x.inventory_item_id))
            """,
            // The snapshot's inventory items, under the newer-only rule of their own webhook (StoreWriter.AddInventoryItem): the
            // item is where a variant's cost is versioned. Then each variant of the chunk takes its item's cost. Why: the
            // variant's upsert writes the snapshot's cost whatever its age, and until 7 Dec 2026 a cost the merchant changed
            // while the import ran (its webhook already applied) was written back to the snapshot's, and an item's older
            // webhook retried after the import wrote its older cost over the snapshot's. An item without its time (an import
            // of before this field was asked) writes no item row, as before.
            $"""
            INSERT INTO inventory_items (shop_id, id, tracked, updated_at, unit_cost, cost_given)
            SELECT DISTINCT ON (bulk_id(x.body -> 'inventoryItem' ->> 'id')) $2::int8, bulk_id(x.body -> 'inventoryItem' ->> 'id'),
                   {Variant["inventory_tracked"]}, (x.body -> 'inventoryItem' ->> 'updatedAt')::timestamptz, {Variant["unit_cost"]}, true
            FROM {Chunk(Products)} JOIN {Children(Products)}
            WHERE NOT ({IsCollection}) AND x.body -> 'inventoryItem' ->> 'id' IS NOT NULL AND x.body -> 'inventoryItem' ->> 'updatedAt' IS NOT NULL
            ORDER BY bulk_id(x.body -> 'inventoryItem' ->> 'id'), x.line_no DESC
            ON CONFLICT (shop_id, id) DO UPDATE SET tracked = coalesce(excluded.tracked, inventory_items.tracked), updated_at = excluded.updated_at,
              unit_cost = excluded.unit_cost, cost_given = true
            WHERE inventory_items.updated_at IS NULL OR inventory_items.updated_at < excluded.updated_at
            """,
            $"""
            UPDATE variants v SET unit_cost = i.unit_cost FROM inventory_items i
            WHERE v.shop_id = $2 AND v.product_id IN (SELECT s.id FROM {Chunk(Products)}) AND i.shop_id = $2 AND i.id = v.inventory_item_id
              AND i.cost_given AND v.unit_cost IS DISTINCT FROM i.unit_cost
            """,
            // Variants that left the product are gone from the catalog (only when this version stands).
            $"""
            DELETE FROM variants v USING {Chunk(Products)}
            JOIN products p ON p.shop_id = $2 AND p.id = s.id AND p.updated_at IS NOT DISTINCT FROM s.updated_at
            WHERE v.shop_id = $2 AND v.product_id = s.id
              AND NOT EXISTS (SELECT 1 FROM backfill_lines x WHERE {ChildOf(Products)} AND bulk_id(x.body ->> 'id') = v.id AND NOT ({IsCollection}))
            """,
            // The collections a product belongs to replace what was known before, as in StoreWriter.AddProductCollections.
            $"""
            DELETE FROM product_collections c USING {Chunk(Products)}
            WHERE c.shop_id = $2 AND c.product_id = s.id
              AND NOT EXISTS (SELECT 1 FROM backfill_lines x WHERE {ChildOf(Products)} AND bulk_id(x.body ->> 'id') = c.collection_id AND {IsCollection})
            """,
            $"""
            INSERT INTO product_collections (shop_id, product_id, collection_id)
            SELECT DISTINCT $2::int8, s.id, bulk_id(x.body ->> 'id') FROM {Chunk(Products)} JOIN {Children(Products)} WHERE {IsCollection}
            ON CONFLICT DO NOTHING
            """,
        ],
        [Customers] =
        [
            StoreWriter.CustomerUpsert.SetBased($"SELECT {Values(StoreWriter.CustomerUpsert, Customer)} FROM {Chunk(Customers)} ORDER BY s.id"),
            // The snapshot's consent, under the upsert's own consent rule, where a webhook newer than the snapshot (an order
            // during the import) kept the upsert above off the row: webhooks carry no consent since API version 2025-01.
            $"""
            UPDATE customers SET accepts_marketing = {ConsentSet("accepts_marketing")}, marketing_consent_at = {ConsentSet("marketing_consent_at")}
            FROM (SELECT s.id, {Customer["accepts_marketing"]} AS accepts_marketing, {Customer["marketing_consent_at"]} AS marketing_consent_at
                  FROM {Chunk(Customers)}) excluded
            WHERE customers.shop_id = $2 AND customers.id = excluded.id AND {StoreWriter.CustomerKept}
              AND (customers.accepts_marketing, customers.marketing_consent_at)
                  IS DISTINCT FROM ({ConsentSet("accepts_marketing")}, {ConsentSet("marketing_consent_at")})
            """,
        ],
        [Orders] =
        [
            StoreWriter.OrderUpsert.SetBased($"""
                SELECT {Values(StoreWriter.OrderUpsert, Order)} FROM {Chunk(Orders)}
                {Redacted}
                {Card}
                WHERE NOT {DeletedOrder}
                ORDER BY s.id
                """),
            // An order whose deletion (orders/delete) committed while the upsert above waited on its row was written again by
            // it, whose snapshot came before the deletion: taken out again here, before its lines and refunds are merged. Why any
            // of the shop's deleted orders and not the chunk's: they are few (usually none), each found by its key; joined to the
            // chunk's ids, the statement was planned as a scan of the store's orders, and an import of 20,000 orders into a
            // database holding two others took 48 s instead of 10 (one chunk ran past its time limit).
            "DELETE FROM orders o WHERE o.shop_id = $2 AND o.id = ANY (ARRAY(SELECT z.order_id FROM deleted_orders z WHERE z.shop_id = $2))",
            // Lines follow their order's version, as in StoreWriter.AddOrder.
            StoreWriter.OrderLineUpsert.SetBased($"""
                SELECT DISTINCT ON (x.item_id) {Values(StoreWriter.OrderLineUpsert, OrderLine)}
                FROM {Chunk(Orders)} JOIN backfill_lines x ON {ChildOf(Orders)}
                JOIN orders o ON o.shop_id = $2 AND o.id = s.id AND o.updated_at IS NOT DISTINCT FROM s.updated_at
                ORDER BY x.item_id, x.line_no DESC
                """),
            // Refunds are written whatever the order's version, as in StoreWriter.AddRefund; the last one with an id stands.
            StoreWriter.RefundUpsert.SetBased($"""
                SELECT DISTINCT ON (bulk_id(rf.refund ->> 'id')) {Values(StoreWriter.RefundUpsert, Refund)}
                FROM {Chunk(Orders)} {RefundsOfChunk}
                {Redacted}
                WHERE NOT {DeletedOrder}
                ORDER BY bulk_id(rf.refund ->> 'id'), rf.n DESC
                """),
        ],
    };
}

/// <summary>
/// A statement of a phase's merge (<see cref="StoreMerge.Phases"/>), and its form for a store that holds none of the phase's
/// rows yet, as a store's first import does: where the statement is an upsert, a plain INSERT of the same rows, which skips
/// the conflict check and the confirmation every row of an upsert costs (a fifth to a quarter of the order lines' merge). A
/// row stored in the meantime (a webhook's, or an object the file names in two chunks) makes it fail with a unique violation
/// instead of being merged under the rules; the backfill then merges the chunk again with <see cref="Sql"/>.
/// </summary>
internal sealed record MergeStatement(string Sql, string IntoEmpty)
{
    public static implicit operator MergeStatement(string sql) => new(sql, sql);
}
