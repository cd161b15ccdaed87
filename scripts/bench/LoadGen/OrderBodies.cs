using System.Text;
using System.Text.Json;

namespace LoadGen;

/// <summary>orders/create bodies shaped like Shopify's REST payload: 1-10 lines, about 5-10 KB each.</summary>
internal static class OrderBodies
{
    public static byte[] Create(Random r, long orderId)
    {
        var lines = r.Next(1, 11);
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms))
        {
            var created = new DateTimeOffset(2026, 7, 1, 0, 0, 0, TimeSpan.Zero).AddSeconds(r.Next(0, 86400 * 30));
            w.WriteStartObject();
            w.WriteNumber("id", orderId);
            w.WriteString("admin_graphql_api_id", $"gid://shopify/Order/{orderId}");
            w.WriteString("name", $"#{orderId % 1000000}");
            w.WriteNumber("order_number", orderId % 1000000);
            w.WriteString("token", Hex(r, 16));
            w.WriteString("cart_token", Hex(r, 16));
            w.WriteString("checkout_token", Hex(r, 16));
            w.WriteString("email", $"shopper{r.Next(100000)}@example.com");
            w.WriteString("created_at", created.ToString("O"));
            w.WriteString("updated_at", created.ToString("O"));
            w.WriteString("processed_at", created.ToString("O"));
            w.WriteString("financial_status", "paid");
            w.WriteNull("fulfillment_status");
            w.WriteString("currency", "USD");
            w.WriteString("total_price", $"{r.Next(10, 500)}.00");
            w.WriteString("subtotal_price", $"{r.Next(10, 500)}.00");
            w.WriteString("total_tax", "0.00");
            w.WriteString("total_discounts", "0.00");
            w.WriteBoolean("test", false);
            w.WriteString("tags", "");
            w.WriteString("source_name", "web");
            w.WriteString("browser_ip", $"198.51.100.{r.Next(1, 255)}");
            w.WriteString("landing_site", "/products/a-very-nice-mug?utm_source=newsletter&utm_medium=email&utm_campaign=summer");
            w.WriteString("referring_site", "https://www.example.com/some/long/referrer/path");
            w.WriteStartObject("client_details");
            w.WriteString("browser_ip", "198.51.100.7");
            w.WriteString("accept_language", "en-US,en;q=0.9");
            w.WriteString("user_agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36");
            w.WriteEndObject();
            w.WriteStartArray("note_attributes");
            w.WriteStartObject(); w.WriteString("name", "gift_message"); w.WriteString("value", Words(r, 12)); w.WriteEndObject();
            w.WriteEndArray();
            WriteCustomer(w, r);
            WriteAddress(w, "billing_address", r);
            WriteAddress(w, "shipping_address", r);
            w.WriteStartArray("line_items");
            for (var i = 0; i < lines; i++)
            {
                var price = $"{r.Next(3, 120)}.{r.Next(0, 99):00}";
                w.WriteStartObject();
                w.WriteNumber("id", orderId * 100 + i);
                w.WriteString("admin_graphql_api_id", $"gid://shopify/LineItem/{orderId * 100 + i}");
                w.WriteNumber("product_id", 7000 + r.Next(0, 400));
                w.WriteNumber("variant_id", 17000 + r.Next(0, 2000));
                w.WriteString("title", Words(r, 4));
                w.WriteString("variant_title", "Default Title");
                w.WriteString("name", Words(r, 5));
                w.WriteString("sku", Hex(r, 6).ToUpperInvariant());
                w.WriteString("vendor", "Acme Goods");
                w.WriteNumber("quantity", r.Next(1, 4));
                w.WriteString("price", price);
                w.WriteStartObject("price_set");
                w.WriteStartObject("shop_money"); w.WriteString("amount", price); w.WriteString("currency_code", "USD"); w.WriteEndObject();
                w.WriteStartObject("presentment_money"); w.WriteString("amount", price); w.WriteString("currency_code", "USD"); w.WriteEndObject();
                w.WriteEndObject();
                w.WriteString("total_discount", "0.00");
                w.WriteBoolean("taxable", true);
                w.WriteBoolean("requires_shipping", true);
                w.WriteBoolean("gift_card", false);
                w.WriteNumber("grams", r.Next(50, 2000));
                w.WriteString("fulfillment_service", "manual");
                w.WriteStartArray("properties"); w.WriteEndArray();
                w.WriteStartArray("tax_lines"); w.WriteEndArray();
                w.WriteStartArray("discount_allocations"); w.WriteEndArray();
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteStartArray("shipping_lines");
            w.WriteStartObject(); w.WriteNumber("id", orderId); w.WriteString("title", "Standard Shipping"); w.WriteString("price", "5.00"); w.WriteEndObject();
            w.WriteEndArray();
            w.WriteStartArray("payment_gateway_names"); w.WriteStringValue("shopify_payments"); w.WriteEndArray();
            w.WriteString("note", Words(r, 60 + r.Next(0, 200)));
            w.WriteEndObject();
        }
        return ms.ToArray();
    }

    private static void WriteCustomer(Utf8JsonWriter w, Random r)
    {
        var id = 900000 + r.Next(0, 50000);
        w.WriteStartObject("customer");
        w.WriteNumber("id", id);
        w.WriteString("admin_graphql_api_id", $"gid://shopify/Customer/{id}");
        w.WriteString("email", $"shopper{id}@example.com");
        w.WriteString("first_name", "Sam");
        w.WriteString("last_name", "Shopper");
        w.WriteString("state", "enabled");
        w.WriteString("tags", "");
        w.WriteString("created_at", "2026-01-01T00:00:00Z");
        w.WriteString("updated_at", "2026-01-01T00:00:00Z");
        WriteAddress(w, "default_address", r);
        w.WriteEndObject();
    }

    private static void WriteAddress(Utf8JsonWriter w, string name, Random r)
    {
        w.WriteStartObject(name);
        w.WriteString("first_name", "Sam"); w.WriteString("last_name", "Shopper");
        w.WriteString("address1", $"{r.Next(1, 999)} Market Street"); w.WriteString("city", "Springfield");
        w.WriteString("province", "Illinois"); w.WriteString("province_code", "IL");
        w.WriteString("country", "United States"); w.WriteString("country_code", "US");
        w.WriteString("zip", $"{r.Next(10000, 99999)}"); w.WriteString("phone", "+15555550100");
        w.WriteEndObject();
    }

    private static readonly string[] Vocabulary = ["mug", "ceramic", "blue", "large", "gift", "set", "handmade", "cotton", "bag", "lamp", "wooden", "candle", "vintage", "glass"];

    private static string Words(Random r, int n)
    {
        var sb = new StringBuilder();
        for (var i = 0; i < n; i++) sb.Append(i == 0 ? "" : " ").Append(Vocabulary[r.Next(Vocabulary.Length)]);
        return sb.ToString();
    }

    private static string Hex(Random r, int bytes)
    {
        var b = new byte[bytes];
        r.NextBytes(b);
        return Convert.ToHexStringLower(b);
    }
}
