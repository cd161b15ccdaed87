using System.Text.Json;

namespace StoreReplay;

/// <summary>orders/*, refunds/create, carts/* and checkouts/* bodies, shaped like Shopify's REST webhook payloads.</summary>
internal static class OrderBodies
{
    public static byte[] Order(ReplayOrder o, string currency, int seed, DateTimeOffset updatedAt) => Json.Build(w =>
    {
        var total = o.Total;
        w.WriteStartObject();
        w.WriteNumber("id", o.Id);
        w.WriteString("admin_graphql_api_id", Formats.Gid("Order", o.Id));
        w.WriteString("name", "#" + o.Number.ToString(System.Globalization.CultureInfo.InvariantCulture));
        w.WriteNumber("order_number", o.Number);
        w.WriteNumber("number", o.Number);
        w.WriteString("token", Determinism.Hex(Determinism.RngFor(seed, o.Id, purpose: 4), 16));
        w.StringOrNull("cart_token", o.Session?.CartToken);
        w.StringOrNull("checkout_token", o.Session?.CheckoutToken);
        if (o.Session is { } s) w.WriteNumber("checkout_id", s.CheckoutId);
        else w.WriteNull("checkout_id");
        w.StringOrNull("email", o.Customer?.Email);
        w.StringOrNull("contact_email", o.Customer?.Email);
        w.WriteNull("phone");
        w.Time("created_at", o.CreatedAt);
        w.Time("updated_at", updatedAt);
        w.Time("processed_at", o.CreatedAt);
        w.WriteNull("cancelled_at");
        w.WriteNull("cancel_reason");
        w.WriteNull("closed_at");
        w.WriteString("financial_status", "paid");
        w.WriteNull("fulfillment_status");
        w.WriteBoolean("confirmed", true);
        w.WriteBoolean("test", false);
        w.WriteString("currency", currency);
        w.WriteString("presentment_currency", currency);
        foreach (var name in (string[])["total_price", "subtotal_price", "total_line_items_price", "current_total_price"])
            w.Money(name, total);
        w.Money("total_tax", 0m);
        w.Money("total_discounts", 0m);
        w.Money("total_outstanding", 0m);
        w.MoneySet("total_price_set", total, currency);
        w.MoneySet("subtotal_price_set", total, currency);
        w.MoneySet("total_tax_set", 0m, currency);
        w.MoneySet("total_discounts_set", 0m, currency);
        w.WriteBoolean("taxes_included", true);
        w.WriteString("tags", "");
        w.WriteNull("note");
        w.EmptyArray("note_attributes");
        w.WriteString("source_name", "web");
        w.StringOrNull("browser_ip", o.BrowserIp);
        if (o.BrowserIp is not null)
        {
            w.WriteStartObject("client_details");
            w.WriteString("browser_ip", o.BrowserIp);
            w.WriteString("accept_language", "en");
            w.WriteString("user_agent", "Mozilla/5.0 (replay)");
            w.StringOrNull("session_hash", o.SessionHash);
            w.WriteEndObject();
        }
        else w.WriteNull("client_details");
        if (o.Customer is { } c)
        {
            w.WriteStartObject("customer");
            CatalogBodies.CustomerFields(w, c, currency);
            w.WriteEndObject();
        }
        else w.WriteNull("customer");
        CatalogBodies.Address(w, "billing_address", o.CountryCode);
        CatalogBodies.Address(w, "shipping_address", o.CountryCode);
        w.EmptyArray("discount_codes");
        w.EmptyArray("shipping_lines");
        w.WriteStartArray("payment_gateway_names");
        w.WriteStringValue("shopify_payments");
        w.WriteEndArray();
        w.WriteStartArray("line_items");
        foreach (var l in o.Lines) LineItem(w, l, currency);
        w.WriteEndArray();
        w.EmptyArray("refunds");
        w.EmptyArray("fulfillments");
        w.WriteEndObject();
    });

    private static void LineItem(Utf8JsonWriter w, ReplayLine l, string currency)
    {
        w.WriteStartObject();
        w.WriteNumber("id", l.Id);
        w.WriteString("admin_graphql_api_id", Formats.Gid("LineItem", l.Id));
        w.WriteNumber("product_id", l.Product.Id);
        w.WriteNumber("variant_id", l.Product.VariantId);
        w.WriteString("title", l.Title);
        w.WriteNull("variant_title");
        w.WriteString("name", l.Title);
        w.WriteString("sku", l.Product.Sku);
        w.WriteString("vendor", l.Product.Vendor);
        w.WriteNumber("quantity", l.Quantity);
        w.WriteNumber("current_quantity", l.Quantity);
        w.WriteNumber("fulfillable_quantity", l.Quantity);
        w.Money("price", l.Price);
        w.MoneySet("price_set", l.Price, currency);
        w.Money("total_discount", 0m);
        w.MoneySet("total_discount_set", 0m, currency);
        w.EmptyArray("discount_allocations");
        w.EmptyArray("properties");
        w.WriteBoolean("gift_card", false);
        w.WriteBoolean("taxable", true);
        w.WriteBoolean("requires_shipping", true);
        w.WriteNumber("grams", 0);
        w.WriteBoolean("product_exists", true);
        w.WriteString("fulfillment_service", "manual");
        w.WriteNull("fulfillment_status");
        w.EmptyArray("tax_lines");
        w.WriteEndObject();
    }

    public static byte[] Refund(ReplayRefund r, string currency) => Json.Build(w =>
    {
        w.WriteStartObject();
        w.WriteNumber("id", r.Id);
        w.WriteString("admin_graphql_api_id", Formats.Gid("Refund", r.Id));
        w.WriteNumber("order_id", r.Order.Id);
        w.Time("created_at", r.CreatedAt);
        w.Time("processed_at", r.CreatedAt);
        w.WriteString("note", r.Note);
        w.WriteNull("user_id");
        w.WriteBoolean("restock", true);
        w.EmptyArray("duties");
        w.WriteNull("return");
        w.WriteStartArray("refund_line_items");
        foreach (var l in r.Lines)
        {
            w.WriteStartObject();
            w.WriteNumber("id", l.Id);
            w.WriteNumber("line_item_id", l.Line.Id);
            w.WriteNumber("quantity", l.Quantity);
            w.WriteString("restock_type", "return");
            w.WriteNull("location_id");
            w.Money("subtotal", l.Line.Price * l.Quantity);
            w.MoneySet("subtotal_set", l.Line.Price * l.Quantity, currency);
            w.Money("total_tax", 0m);
            w.MoneySet("total_tax_set", 0m, currency);
            w.WriteStartObject("line_item");
            w.WriteNumber("id", l.Line.Id);
            w.WriteNumber("product_id", l.Line.Product.Id);
            w.WriteNumber("variant_id", l.Line.Product.VariantId);
            w.WriteString("title", l.Line.Title);
            w.WriteString("sku", l.Line.Product.Sku);
            w.WriteNumber("quantity", l.Line.Quantity);
            w.Money("price", l.Line.Price);
            w.WriteEndObject();
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteStartArray("transactions");
        w.WriteStartObject();
        w.WriteNumber("id", r.Id * 10 + 1);
        w.WriteString("admin_graphql_api_id", Formats.Gid("OrderTransaction", r.Id * 10 + 1));
        w.WriteNumber("order_id", r.Order.Id);
        w.WriteString("kind", "refund");
        w.WriteString("gateway", "shopify_payments");
        w.WriteString("status", "success");
        w.Money("amount", r.Amount);
        w.WriteString("currency", currency);
        w.WriteNull("parent_id");
        w.Time("processed_at", r.CreatedAt);
        w.Time("created_at", r.CreatedAt);
        w.WriteBoolean("test", false);
        w.WriteEndObject();
        w.WriteEndArray();
        w.EmptyArray("order_adjustments");
        w.WriteEndObject();
    });
}
