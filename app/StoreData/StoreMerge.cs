namespace PluginApp.StoreData;

/// <summary>
/// The store upserts of <see cref="StoreWriter"/>, set-based: a chunk of parent objects staged by the backfill (tables
/// backfill_products, backfill_customers, backfill_orders and their children's tables, columns named as in the store tables)
/// merged with a few INSERT ... SELECT ... ON CONFLICT statements instead of a few statements per object. Same rules as
/// the webhook path: last writer wins on updated_at, children are written only when their parent's version is the one
/// stored, a redacted customer gets no personal data back; and a row whose values would not change is not rewritten.
/// Every statement takes $1 the run, $2 the shop, and the chunk: parents staged at seq in ($3, $4].
/// </summary>
internal static class StoreMerge
{
    /// <summary>The chunk's parents, each object once (its newest version; the later line when two versions tie).</summary>
    private static string Chunk(string staged) =>
        $"(SELECT DISTINCT ON (s.id) s.* FROM {staged} s WHERE s.run_id = $1 AND s.seq > $3 AND s.seq <= $4 ORDER BY s.id, s.updated_at DESC, s.seq DESC) s";

    private const string InChunk = "x.run_id = $1 AND x.seq > $3 AND x.seq <= $4";

    /// <summary>The SELECT list of <paramref name="upsert"/>'s columns read from alias <paramref name="from"/>, with the shop and any override.</summary>
    private static string Values(UpsertStatement upsert, string from, IReadOnlyDictionary<string, string>? overrides = null) =>
        string.Join(", ", upsert.Columns.Select(c => c == "shop_id" ? "$2::int8" : overrides?.GetValueOrDefault(c) ?? $"{from}.{c}"));

    public static readonly string[] Customers =
    [
        StoreWriter.CustomerUpsert.SetBased($"SELECT {Values(StoreWriter.CustomerUpsert, "s")} FROM {Chunk("backfill_customers")} ORDER BY s.id"),
    ];

    public static readonly string[] Products =
    [
        StoreWriter.ProductUpsert.SetBased($"SELECT {Values(StoreWriter.ProductUpsert, "s", new Dictionary<string, string> { ["deleted_at"] = "NULL::timestamptz" })} FROM {Chunk("backfill_products")} ORDER BY s.id"),
        // Variants follow their product's version, as in StoreWriter.AddProduct.
        StoreWriter.VariantUpsert.SetBased($"""
            SELECT DISTINCT ON (x.id) {Values(StoreWriter.VariantUpsert, "x")}
            FROM backfill_variants x JOIN {Chunk("backfill_products")} ON s.id = x.product_id
            JOIN products p ON p.shop_id = $2 AND p.id = s.id AND p.updated_at IS NOT DISTINCT FROM s.updated_at
            WHERE x.run_id = $1 ORDER BY x.id, x.seq DESC
            """),
        // Variants that left the product are gone from the catalog (only when this version stands).
        $"""
        DELETE FROM variants v USING {Chunk("backfill_products")}
        JOIN products p ON p.shop_id = $2 AND p.id = s.id AND p.updated_at IS NOT DISTINCT FROM s.updated_at
        WHERE v.shop_id = $2 AND v.product_id = s.id
          AND NOT EXISTS (SELECT 1 FROM backfill_variants x WHERE x.run_id = $1 AND x.product_id = s.id AND x.id = v.id)
        """,
        // The collections a product belongs to replace what was known before, as in StoreWriter.AddProductCollections.
        $"""
        DELETE FROM product_collections c USING {Chunk("backfill_products")}
        WHERE c.shop_id = $2 AND c.product_id = s.id
          AND NOT EXISTS (SELECT 1 FROM backfill_product_collections x WHERE x.run_id = $1 AND x.product_id = s.id AND x.collection_id = c.collection_id)
        """,
        $"""
        INSERT INTO product_collections (shop_id, product_id, collection_id)
        SELECT DISTINCT $2::int8, x.product_id, x.collection_id FROM backfill_product_collections x JOIN {Chunk("backfill_products")} ON s.id = x.product_id
        WHERE x.run_id = $1
        ON CONFLICT DO NOTHING
        """,
    ];

    // Why in the SELECT rather than a guard UPDATE after it (as StoreWriter does): a re-import then rewrites nothing.
    private static readonly Dictionary<string, string> ErasedWhenRedacted = new[] { "email", "browser_ip", "card_bin", "card_last4" }
        .ToDictionary(c => c, c => $"CASE WHEN r.id IS NULL THEN s.{c} END");

    public static readonly string[] Orders =
    [
        StoreWriter.OrderUpsert.SetBased($"""
            SELECT {Values(StoreWriter.OrderUpsert, "s", ErasedWhenRedacted)} FROM {Chunk("backfill_orders")}
            LEFT JOIN customers r ON r.shop_id = $2 AND r.id = s.customer_id AND r.redacted_at IS NOT NULL
            ORDER BY s.id
            """),
        // Lines follow their order's version, as in StoreWriter.AddOrder.
        StoreWriter.OrderLineUpsert.SetBased($"""
            SELECT DISTINCT ON (x.id) {Values(StoreWriter.OrderLineUpsert, "x")}
            FROM backfill_order_lines x JOIN {Chunk("backfill_orders")} ON s.id = x.order_id
            JOIN orders o ON o.shop_id = $2 AND o.id = s.id AND o.updated_at IS NOT DISTINCT FROM s.updated_at
            WHERE x.run_id = $1 ORDER BY x.id, x.seq DESC
            """),
        // Refunds came inside their order's line (same seq); written whatever the order's version, as in StoreWriter.AddRefund.
        StoreWriter.RefundUpsert.SetBased($"""
            SELECT DISTINCT ON (x.id) {Values(StoreWriter.RefundUpsert, "x", new Dictionary<string, string> { ["note"] = "CASE WHEN r.id IS NULL THEN x.note END" })}
            FROM backfill_refunds x
            LEFT JOIN orders o ON o.shop_id = $2 AND o.id = x.order_id
            LEFT JOIN customers r ON r.shop_id = $2 AND r.id = o.customer_id AND r.redacted_at IS NOT NULL
            WHERE {InChunk} ORDER BY x.id, x.seq DESC
            """),
        StoreWriter.RefundLineUpsert.SetBased($"""
            SELECT DISTINCT ON (x.refund_id, x.line_item_id) {Values(StoreWriter.RefundLineUpsert, "x")}
            FROM backfill_refund_lines x WHERE {InChunk} ORDER BY x.refund_id, x.line_item_id, x.seq DESC
            """),
    ];
}
