using System.Text.Json;

namespace StoreReplay;

/// <summary>carts/* and checkouts/* bodies, shaped like Shopify's REST webhook payloads (carts carry no customer).</summary>
internal static class SessionBodies
{
    public static byte[] Cart(ReplaySession s, List<SessionLine> lines, DateTimeOffset updatedAt) => Json.Build(w =>
    {
        w.WriteStartObject();
        w.WriteString("id", s.CartToken);
        w.WriteString("token", s.CartToken);
        w.WriteNull("note");
        w.Time("created_at", s.CartCreatedAt);
        w.Time("updated_at", updatedAt);
        w.WriteStartArray("line_items");
        foreach (var l in lines)
        {
            w.WriteStartObject();
            w.WriteNumber("id", l.Product.VariantId);
            w.WriteString("key", l.LineKey);
            w.WriteNumber("product_id", l.Product.Id);
            w.WriteNumber("variant_id", l.Product.VariantId);
            w.WriteString("title", l.Product.Title);
            w.WriteString("sku", l.Product.Sku);
            w.WriteString("vendor", l.Product.Vendor);
            w.WriteNumber("quantity", l.Quantity);
            w.WriteNumber("grams", 0);
            w.WriteBoolean("taxable", true);
            w.WriteBoolean("gift_card", false);
            w.WriteStartObject("properties");
            w.WriteEndObject();
            foreach (var name in (string[])["price", "original_price", "discounted_price"]) w.Money(name, l.Price);
            w.Money("line_price", l.Price * l.Quantity);
            w.Money("original_line_price", l.Price * l.Quantity);
            w.Money("total_discount", 0m);
            w.EmptyArray("discounts");
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteEndObject();
    });

    public static byte[] Checkout(ReplaySession s, string currency, DateTimeOffset updatedAt, DateTimeOffset? completedAt) => Json.Build(w =>
    {
        var total = s.Lines.Sum(l => l.Price * l.Quantity);
        w.WriteStartObject();
        w.WriteNumber("id", s.CheckoutId);
        w.WriteString("token", s.CheckoutToken);
        w.WriteString("cart_token", s.CartToken);
        w.StringOrNull("email", s.Customer?.Email);
        w.WriteNull("phone");
        w.WriteNull("gateway");
        w.Time("created_at", s.CheckoutCreatedAt);
        w.Time("updated_at", updatedAt);
        w.Time("completed_at", completedAt);
        w.WriteNull("closed_at");
        w.WriteString("currency", currency);
        w.WriteString("presentment_currency", currency);
        w.WriteString("customer_locale", "en");
        w.WriteString("source_name", "web");
        w.WriteBoolean("buyer_accepts_marketing", false);
        if (s.Customer is { } c)
        {
            w.WriteStartObject("customer");
            CatalogBodies.CustomerFields(w, c, currency);
            w.WriteEndObject();
        }
        else w.WriteNull("customer");
        CatalogBodies.Address(w, "billing_address", s.CountryCode);
        CatalogBodies.Address(w, "shipping_address", s.CountryCode);
        w.EmptyArray("discount_codes");
        w.EmptyArray("shipping_lines");
        w.EmptyArray("tax_lines");
        w.WriteBoolean("taxes_included", true);
        foreach (var name in (string[])["subtotal_price", "total_price", "total_line_items_price"]) w.Money(name, total);
        w.Money("total_tax", 0m);
        w.Money("total_discounts", 0m);
        w.WriteStartArray("line_items");
        foreach (var l in s.Lines)
        {
            w.WriteStartObject();
            w.WriteString("key", l.LineKey);
            w.WriteNumber("product_id", l.Product.Id);
            w.WriteNumber("variant_id", l.Product.VariantId);
            w.WriteString("sku", l.Product.Sku);
            w.WriteString("title", l.Product.Title);
            w.WriteString("variant_title", "");
            w.WriteNumber("quantity", l.Quantity);
            w.Money("price", l.Price);
            w.Money("line_price", l.Price * l.Quantity);
            w.WriteNumber("grams", 0);
            w.WriteString("vendor", l.Product.Vendor);
            w.WriteBoolean("requires_shipping", true);
            w.WriteBoolean("taxable", true);
            w.WriteBoolean("gift_card", false);
            w.EmptyArray("applied_discounts");
            w.EmptyArray("discount_allocations");
            w.WriteString("fulfillment_service", "manual");
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteEndObject();
    });
}
