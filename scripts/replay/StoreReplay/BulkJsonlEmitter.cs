using System.Text.Json;

namespace StoreReplay;

/// <summary>
/// A store as the JSONL files of Shopify GraphQL bulk operations (products, customers, orders): one object per
/// line, nested connections flattened into child lines after their parent with "__parentId" = the parent's GID.
/// Writes straight to the stream, one line at a time.
/// </summary>
public static class BulkJsonlEmitter
{
    public static void WriteProducts(ReplayStore store, Stream output) => WriteLines(output, store.Products, (w, p) =>
    {
        var updated = Formats.Time(p.CreatedAt);
        w.WriteStartObject();
        w.WriteString("id", Formats.Gid("Product", p.Id));
        w.WriteString("title", p.Title);
        w.WriteString("handle", p.Handle);
        w.WriteString("productType", p.ProductType);
        w.WriteString("vendor", p.Vendor);
        w.WriteString("status", "ACTIVE");
        w.EmptyArray("tags");
        w.WriteString("createdAt", updated);
        w.WriteString("updatedAt", updated);
        w.WriteNull("featuredMedia");
        w.WriteEndObject();
    }, (w, p) =>
    {
        w.WriteStartObject();
        w.WriteString("id", Formats.Gid("ProductVariant", p.VariantId));
        w.WriteString("title", "Default Title");
        w.WriteString("sku", p.Sku);
        w.Money("price", p.Price);
        w.WriteNull("compareAtPrice");
        w.WriteNumber("inventoryQuantity", p.InventoryQuantity);
        w.WriteString("inventoryPolicy", "DENY");
        w.Time("updatedAt", p.CreatedAt);
        w.WriteStartObject("inventoryItem");
        w.WriteString("id", Formats.Gid("InventoryItem", p.InventoryItemId));
        w.WriteBoolean("tracked", true);
        if (p.UnitCost is { } cost)
        {
            w.WriteStartObject("unitCost");
            w.Money("amount", cost);
            w.WriteString("currencyCode", store.Currency);
            w.WriteEndObject();
        }
        else w.WriteNull("unitCost");
        w.WriteEndObject();
        w.WriteString("__parentId", Formats.Gid("Product", p.Id));
        w.WriteEndObject();
    });

    public static void WriteCustomers(ReplayStore store, Stream output) => WriteLines(output, store.Customers, (w, c) =>
    {
        w.WriteStartObject();
        w.WriteString("id", Formats.Gid("Customer", c.Id));
        w.WriteNull("firstName");
        w.WriteNull("lastName");
        w.WriteString("state", "ENABLED");
        w.EmptyArray("tags");
        w.Time("createdAt", c.CreatedAt);
        w.Time("updatedAt", c.CreatedAt);
        w.WriteStartObject("defaultEmailAddress");
        w.WriteString("emailAddress", c.Email);
        if (store.Subscribed(c))
        {
            w.WriteString("marketingState", "SUBSCRIBED");
            w.Time("marketingUpdatedAt", c.CreatedAt);
        }
        else w.WriteString("marketingState", "NOT_SUBSCRIBED");
        w.WriteEndObject();
        w.WriteNull("defaultPhoneNumber");
        w.WriteEndObject();
    });

    public static void WriteOrders(ReplayStore store, Stream output)
    {
        var refunds = store.Refunds.ToLookup(r => r.Order.Id);
        var currency = store.Currency;
        using var w = new Utf8JsonWriter(output, Json.Options);
        foreach (var o in store.Orders)
        {
            WriteOrder(w, o, refunds[o.Id].ToList(), currency);
            EndLine(w, output);
            foreach (var l in o.Lines)
            {
                WriteLineItem(w, o, l, currency);
                EndLine(w, output);
            }
        }
    }

    private static void WriteOrder(Utf8JsonWriter w, ReplayOrder o, List<ReplayRefund> refunds, string currency)
    {
        var refunded = refunds.Sum(r => r.Amount);
        var updated = refunds.Count > 0 ? refunds.Max(r => r.CreatedAt) : o.CreatedAt.AddSeconds(1);
        if (o.Cancelled is { } cancel && cancel.At > updated) updated = cancel.At;
        w.WriteStartObject();
        w.WriteString("id", Formats.Gid("Order", o.Id));
        w.WriteString("name", "#" + o.Number.ToString(System.Globalization.CultureInfo.InvariantCulture));
        w.StringOrNull("email", o.Customer?.Email);
        w.Time("createdAt", o.CreatedAt);
        w.Time("updatedAt", updated);
        w.Time("processedAt", o.CreatedAt);
        if (o.Cancelled is { } cancelled)
        {
            w.Time("cancelledAt", cancelled.At);
            w.WriteString("cancelReason", cancelled.Reason);
        }
        else
        {
            w.WriteNull("cancelledAt");
            w.WriteNull("cancelReason");
        }
        w.WriteString("displayFinancialStatus", refunded == 0 ? "PAID" : refunded >= o.Total ? "REFUNDED" : "PARTIALLY_REFUNDED");
        w.WriteString("displayFulfillmentStatus", "FULFILLED");
        w.WriteString("currencyCode", currency);
        // As OrderBodies says it: the Online Retail prices are what the buyer paid, tax included.
        w.WriteBoolean("taxesIncluded", true);
        w.WriteBoolean("test", false);
        w.EmptyArray("tags");
        w.WriteString("sourceName", "web");
        w.StringOrNull("clientIp", o.BrowserIp);
        w.EmptyArray("discountCodes");
        if (o.Customer is { } c)
        {
            w.WriteStartObject("customer");
            w.WriteString("id", Formats.Gid("Customer", c.Id));
            w.WriteEndObject();
        }
        else w.WriteNull("customer");
        w.MoneyBag("totalPriceSet", o.Total, currency);
        w.MoneyBag("subtotalPriceSet", o.Total, currency);
        w.MoneyBag("totalDiscountsSet", 0m, currency);
        w.MoneyBag("totalTaxSet", 0m, currency);
        CountryOnly(w, "billingAddress", o.CountryCode);
        CountryOnly(w, "shippingAddress", o.CountryCode);
        w.WriteStartArray("refunds");
        foreach (var r in refunds)
        {
            w.WriteStartObject();
            w.WriteString("id", Formats.Gid("Refund", r.Id));
            w.Time("createdAt", r.CreatedAt);
            w.Time("processedAt", r.CreatedAt); // as the webhooks' refunds say it
            w.WriteString("note", r.Note);
            w.MoneyBag("totalRefundedSet", r.Amount, currency);
            // Not what Shopify's bulk export gives (it refuses a connection inside a list): the stand-in's store data, from
            // which it answers the backfill's refund-lines query (DefaultAdminApi.RefundLines); the app's merge skips it.
            w.WriteStartObject("refundLineItems");
            w.WriteStartArray("nodes");
            foreach (var l in r.Lines)
            {
                w.WriteStartObject();
                w.WriteStartObject("lineItem");
                w.WriteString("id", Formats.Gid("LineItem", l.Line.Id));
                w.WriteEndObject();
                w.WriteNumber("quantity", l.Quantity);
                w.WriteString("restockType", "RETURN");
                w.MoneyBag("subtotalSet", l.Line.Price * l.Quantity, currency);
                w.MoneyBag("totalTaxSet", 0m, currency); // as the webhooks' refunds say it: the replay's orders carry no tax
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteEndObject();
    }

    private static void WriteLineItem(Utf8JsonWriter w, ReplayOrder o, ReplayLine l, string currency)
    {
        w.WriteStartObject();
        w.WriteString("id", Formats.Gid("LineItem", l.Id));
        w.WriteString("sku", l.Product.Sku);
        w.WriteString("title", l.Title);
        w.WriteNumber("quantity", l.Quantity);
        w.WriteStartObject("product");
        w.WriteString("id", Formats.Gid("Product", l.Product.Id));
        w.WriteEndObject();
        w.WriteStartObject("variant");
        w.WriteString("id", Formats.Gid("ProductVariant", l.Product.VariantId));
        w.WriteEndObject();
        w.MoneyBag("originalUnitPriceSet", l.Price, currency);
        w.MoneyBag("totalDiscountSet", 0m, currency);
        w.WriteString("__parentId", Formats.Gid("Order", o.Id));
        w.WriteEndObject();
    }

    private static void CountryOnly(Utf8JsonWriter w, string name, string? countryCode)
    {
        if (countryCode is null)
        {
            w.WriteNull(name);
            return;
        }
        w.WriteStartObject(name);
        w.WriteString("countryCodeV2", countryCode);
        w.WriteEndObject();
    }

    private static void WriteLines<T>(Stream output, IEnumerable<T> items, params Action<Utf8JsonWriter, T>[] perItem)
    {
        using var w = new Utf8JsonWriter(output, Json.Options);
        foreach (var item in items)
            foreach (var write in perItem)
            {
                write(w, item);
                EndLine(w, output);
            }
    }

    /// <summary>Ends one JSONL line; Reset lets the same writer start the next top-level object.</summary>
    private static void EndLine(Utf8JsonWriter w, Stream output)
    {
        w.Flush();
        output.WriteByte((byte)'\n');
        w.Reset(output);
    }
}
