using System.Text.Json;
using PluginApp.Shopify;
using PluginApp.StoreData;

namespace PluginApp.Backfill;

/// <summary>A table the backfill stages rows into: run_id, seq, then <paramref name="Columns"/> (named as in the store table).</summary>
/// <param name="Parent">For a child table, the column holding its parent's id; null for the phase's parent table.</param>
internal sealed record StagedTable(string Name, string? Parent, params string[] Columns);

/// <summary>
/// One bulk query of the backfill: the tables its JSONL lines are staged into, how one line becomes staged rows (by the
/// same bulk-record mapping as before, one line at a time, so children need not follow their parent), and the set-based
/// statements that merge a chunk of staged parents, with their children, into the store (<see cref="StoreMerge"/>).
/// </summary>
internal sealed record BackfillPhase(string Name, string QueryPath, StagedTable[] Tables, Func<StagedRows, long, JsonElement, string?, ValueTask> Stage,
    string[] Merge)
{
    public const string Products = "products";
    public const string Customers = "customers";
    public const string Orders = "orders";

    /// <summary>The table of the phase's parent objects: chunks and the cursor count its lines.</summary>
    public StagedTable ParentTable => Tables[0];

    private static readonly StagedTable ProductRows = new("backfill_products", null,
        "id", "title", "handle", "product_type", "vendor", "status", "tags", "image_url", "created_at", "updated_at");
    private static readonly StagedTable VariantRows = new("backfill_variants", "product_id",
        "id", "product_id", "title", "sku", "price", "compare_at_price", "inventory_quantity", "inventory_policy", "inventory_item_id", "unit_cost", "updated_at");
    private static readonly StagedTable CollectionRows = new("backfill_product_collections", "product_id", "product_id", "collection_id");
    private static readonly StagedTable CustomerRows = new("backfill_customers", null,
        "id", "email", "first_name", "last_name", "phone", "state", "tags", "accepts_marketing", "created_at", "updated_at");
    private static readonly StagedTable OrderRows = new("backfill_orders", null,
        "id", "name", "customer_id", "email", "currency", "total_price", "subtotal_price", "total_discounts", "total_tax",
        "financial_status", "fulfillment_status", "cancelled_at", "cancel_reason", "cart_token", "checkout_token", "source_name",
        "browser_ip", "billing_country", "shipping_country", "discount_codes", "tags", "test", "created_at", "updated_at", "processed_at",
        "gateway", "avs_result", "cvv_result", "card_bin", "card_last4");
    private static readonly StagedTable OrderLineRows = new("backfill_order_lines", "order_id",
        "id", "order_id", "product_id", "variant_id", "title", "sku", "quantity", "price", "total_discount");
    // Why no parent column: refunds come inside their order's line and are staged with its seq, so a chunk reads them by seq.
    private static readonly StagedTable RefundRows = new("backfill_refunds", null, "id", "order_id", "note", "amount", "created_at");
    private static readonly StagedTable RefundLineRows = new("backfill_refund_lines", null,
        "id", "refund_id", "order_id", "line_item_id", "quantity", "subtotal", "restock_type");

    /// <summary>Every staging table, for cleanup, retention and erasure.</summary>
    public static IEnumerable<StagedTable> AllTables => All.SelectMany(p => p.Tables);

    /// <summary>In this order: orders refer to products and customers.</summary>
    public static readonly BackfillPhase[] All =
    [
        // A product's children are its variants and the collections it belongs to.
        new(Products, "Backfill/Queries/products.graphql", [ProductRows, VariantRows, CollectionRows], async (rows, seq, line, parent) =>
        {
            if (parent is null)
            {
                var p = BulkRecords.Product(line);
                await rows.WriteAsync(ProductRows, seq, p.Id, p.Title, p.Handle, p.ProductType, p.Vendor, p.Status, p.Tags, p.ImageUrl, p.CreatedAt, p.UpdatedAt);
            }
            else if (IsCollection(line))
                await rows.WriteAsync(CollectionRows, seq, Gid.Id(parent), Gid.Id(line.GetProperty("id").GetString()!));
            else
            {
                var v = BulkRecords.Variant(line, Gid.Id(parent));
                await rows.WriteAsync(VariantRows, seq, v.Id, v.ProductId, v.Title, v.Sku, v.Price, v.CompareAtPrice, v.InventoryQuantity,
                    v.InventoryPolicy, v.InventoryItemId, v.UnitCost, v.UpdatedAt);
            }
        }, StoreMerge.Products),
        new(Customers, "Backfill/Queries/customers.graphql", [CustomerRows], async (rows, seq, line, parent) =>
        {
            if (parent is not null) return; // the customers query asks for no children
            var c = BulkRecords.Customer(line);
            await rows.WriteAsync(CustomerRows, seq, c.Id, c.Email, c.FirstName, c.LastName, c.Phone, c.State, c.Tags, c.AcceptsMarketing, c.CreatedAt, c.UpdatedAt);
        }, StoreMerge.Customers),
        new(Orders, "Backfill/Queries/orders.graphql", [OrderRows, OrderLineRows, RefundRows, RefundLineRows], async (rows, seq, line, parent) =>
        {
            if (parent is not null)
            {
                var l = BulkRecords.OrderLine(line, Gid.Id(parent));
                await rows.WriteAsync(OrderLineRows, seq, l.Id, l.OrderId, l.ProductId, l.VariantId, l.Title, l.Sku, l.Quantity, l.Price, l.TotalDiscount);
                return;
            }
            var (o, refunds) = BulkRecords.Order(line);
            await rows.WriteAsync(OrderRows, seq, o.Id, o.Name, o.CustomerId, o.Email, o.Currency, o.TotalPrice, o.SubtotalPrice, o.TotalDiscounts,
                o.TotalTax, o.FinancialStatus, o.FulfillmentStatus, o.CancelledAt, o.CancelReason, o.CartToken, o.CheckoutToken, o.SourceName,
                o.BrowserIp, o.BillingCountry, o.ShippingCountry, o.DiscountCodes, o.Tags, o.Test, o.CreatedAt, o.UpdatedAt, o.ProcessedAt,
                o.Gateway, o.AvsResult, o.CvvResult, o.CardBin, o.CardLast4);
            // Within one order the last refund, and the last line of a refund, with the same key stands (as written one by one).
            foreach (var r in refunds.GroupBy(r => r.Refund.Id).Select(g => g.Last()))
            {
                await rows.WriteAsync(RefundRows, seq, r.Refund.Id, r.Refund.OrderId, r.Refund.Note, r.Refund.Amount, r.Refund.CreatedAt);
                foreach (var rl in r.Lines.GroupBy(x => x.LineItemId).Select(g => g.Last()))
                    await rows.WriteAsync(RefundLineRows, seq, rl.Id, rl.RefundId, rl.OrderId, rl.LineItemId, rl.Quantity, rl.Subtotal, rl.RestockType);
            }
        }, StoreMerge.Orders),
    ];

    private static bool IsCollection(JsonElement e) =>
        e.GetProperty("id").GetString()!.StartsWith("gid://shopify/Collection/", StringComparison.Ordinal);
}
