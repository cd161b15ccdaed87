using System.Globalization;
using System.Text.Json.Nodes;

namespace PluginApp.Tests.Infrastructure;

/// <summary>Webhook bodies shaped like Shopify's REST payloads (ids int64, money as decimal strings).</summary>
public static class ShopifyPayloads
{
    private static string Money(decimal d) => d.ToString("0.00", CultureInfo.InvariantCulture);

    public static JsonObject Customer(long id, string email = "ada@example.com", string updatedAt = "2026-07-01T10:00:00-04:00") => new()
    {
        ["id"] = id,
        ["admin_graphql_api_id"] = $"gid://shopify/Customer/{id}",
        ["email"] = email,
        ["first_name"] = "Ada",
        ["last_name"] = "Lovelace",
        ["phone"] = "+15555550100",
        ["state"] = "enabled",
        ["verified_email"] = true,
        ["tags"] = "vip, newsletter",
        ["currency"] = "USD",
        ["created_at"] = "2026-06-01T10:00:00-04:00",
        ["updated_at"] = updatedAt,
        ["email_marketing_consent"] = new JsonObject { ["state"] = "subscribed", ["opt_in_level"] = "single_opt_in" },
        ["default_address"] = Address(),
    };

    public static JsonObject Address(string country = "US") => new()
    {
        ["first_name"] = "Ada", ["last_name"] = "Lovelace", ["address1"] = "12 Analytical Row", ["city"] = "Springfield",
        ["province"] = "Illinois", ["province_code"] = "IL", ["country"] = "United States", ["country_code"] = country,
        ["zip"] = "62701", ["phone"] = "+15555550100",
    };

    public static JsonObject Order(long id, long? customerId = 7001, int lines = 2, string updatedAt = "2026-07-02T12:00:00-04:00",
        string financialStatus = "paid", string? cancelledAt = null)
    {
        var items = new JsonArray();
        decimal total = 0;
        for (var i = 0; i < lines; i++)
        {
            var price = 10m + i * 5m;
            total += price * (i + 1);
            items.Add(new JsonObject
            {
                ["id"] = id * 100 + i,
                ["admin_graphql_api_id"] = $"gid://shopify/LineItem/{id * 100 + i}",
                ["product_id"] = 9000 + i,
                ["variant_id"] = 19000 + i,
                ["title"] = $"Product {i}",
                ["variant_title"] = "Default",
                ["name"] = $"Product {i} - Default",
                ["sku"] = $"SKU-{i}",
                ["vendor"] = "Acme",
                ["quantity"] = i + 1,
                ["current_quantity"] = i + 1,
                ["price"] = Money(price),
                ["price_set"] = new JsonObject { ["shop_money"] = new JsonObject { ["amount"] = Money(price), ["currency_code"] = "USD" } },
                ["total_discount"] = "0.00",
                ["taxable"] = true,
                ["requires_shipping"] = true,
                ["gift_card"] = false,
                ["grams"] = 200,
                ["properties"] = new JsonArray(),
                ["tax_lines"] = new JsonArray(),
                ["discount_allocations"] = new JsonArray(),
            });
        }
        var o = new JsonObject
        {
            ["id"] = id,
            ["admin_graphql_api_id"] = $"gid://shopify/Order/{id}",
            ["name"] = $"#{id % 100000}",
            ["order_number"] = id % 100000,
            ["token"] = $"tok{id}",
            ["cart_token"] = $"cart{id}",
            ["checkout_token"] = $"chk{id}",
            ["email"] = "ada@example.com",
            ["contact_email"] = "ada@example.com",
            ["created_at"] = "2026-07-02T11:59:00-04:00",
            ["updated_at"] = updatedAt,
            ["processed_at"] = "2026-07-02T11:59:00-04:00",
            ["cancelled_at"] = cancelledAt,
            ["cancel_reason"] = cancelledAt is null ? null : "customer",
            ["financial_status"] = financialStatus,
            ["fulfillment_status"] = null,
            ["currency"] = "USD",
            ["presentment_currency"] = "USD",
            ["total_price"] = Money(total + 5m),
            ["subtotal_price"] = Money(total),
            ["total_tax"] = "0.00",
            ["total_discounts"] = "0.00",
            ["total_line_items_price"] = Money(total),
            ["taxes_included"] = false,
            ["test"] = false,
            ["tags"] = "",
            ["note"] = null,
            ["note_attributes"] = new JsonArray(),
            ["source_name"] = "web",
            ["browser_ip"] = "203.0.113.7",
            ["client_details"] = new JsonObject { ["browser_ip"] = "203.0.113.7", ["user_agent"] = "Mozilla/5.0", ["accept_language"] = "en-US" },
            ["billing_address"] = Address("US"),
            ["shipping_address"] = Address("CA"),
            ["discount_codes"] = new JsonArray(new JsonObject { ["code"] = "WELCOME10", ["amount"] = "0.00", ["type"] = "percentage" }),
            ["shipping_lines"] = new JsonArray(new JsonObject { ["id"] = 1, ["title"] = "Standard", ["price"] = "5.00" }),
            ["payment_gateway_names"] = new JsonArray("shopify_payments"),
            ["line_items"] = items,
            ["refunds"] = new JsonArray(),
            ["fulfillments"] = new JsonArray(),
        };
        if (customerId is { } c) o["customer"] = Customer(c);
        return o;
    }

    public static JsonObject Refund(long id, long orderId, long lineItemId, int quantity = 1) => new()
    {
        ["id"] = id,
        ["admin_graphql_api_id"] = $"gid://shopify/Refund/{id}",
        ["order_id"] = orderId,
        ["created_at"] = "2026-07-05T09:00:00-04:00",
        ["processed_at"] = "2026-07-05T09:00:00-04:00",
        ["note"] = "Damaged",
        ["restock"] = false,
        ["refund_line_items"] = new JsonArray(new JsonObject
        {
            ["id"] = id * 10, ["line_item_id"] = lineItemId, ["quantity"] = quantity, ["restock_type"] = "return",
            ["location_id"] = 1, ["subtotal"] = "10.00", ["total_tax"] = "0.00",
        }),
        ["transactions"] = new JsonArray(new JsonObject
        {
            ["id"] = id * 100, ["order_id"] = orderId, ["kind"] = "refund", ["gateway"] = "shopify_payments",
            ["status"] = "success", ["amount"] = "10.00", ["currency"] = "USD",
        }),
        ["order_adjustments"] = new JsonArray(),
    };

    public static JsonObject Product(long id, int variants = 2, string updatedAt = "2026-07-01T08:00:00-04:00", int inventory = 5) => new()
    {
        ["id"] = id,
        ["admin_graphql_api_id"] = $"gid://shopify/Product/{id}",
        ["title"] = $"Mug {id}",
        ["body_html"] = "<p>A mug</p>",
        ["vendor"] = "Acme",
        ["product_type"] = "Mugs",
        ["handle"] = $"mug-{id}",
        ["status"] = "active",
        ["tags"] = "kitchen",
        ["created_at"] = "2026-05-01T08:00:00-04:00",
        ["updated_at"] = updatedAt,
        ["published_at"] = "2026-05-01T08:00:00-04:00",
        ["image"] = new JsonObject { ["src"] = $"https://cdn.example.com/{id}.jpg" },
        ["images"] = new JsonArray(new JsonObject { ["src"] = $"https://cdn.example.com/{id}.jpg" }),
        ["options"] = new JsonArray(),
        ["variants"] = new JsonArray(Enumerable.Range(0, variants).Select(i => (JsonNode)new JsonObject
        {
            ["id"] = id * 10 + i,
            ["admin_graphql_api_id"] = $"gid://shopify/ProductVariant/{id * 10 + i}",
            ["product_id"] = id,
            ["title"] = $"Size {i}",
            ["price"] = Money(12m + i),
            ["compare_at_price"] = null,
            ["sku"] = $"MUG-{id}-{i}",
            ["position"] = i + 1,
            ["inventory_item_id"] = id * 100 + i,
            ["inventory_quantity"] = inventory,
            ["inventory_policy"] = "deny",
            ["taxable"] = true,
            ["created_at"] = "2026-05-01T08:00:00-04:00",
            ["updated_at"] = updatedAt,
        }).ToArray()),
    };

    public static JsonObject Cart(string token, string updatedAt = "2026-07-02T10:00:00-04:00", params (long Variant, int Qty)[] lines) => new()
    {
        ["id"] = token,
        ["token"] = token,
        ["note"] = null,
        ["created_at"] = "2026-07-02T09:55:00-04:00",
        ["updated_at"] = updatedAt,
        ["line_items"] = new JsonArray(lines.Select(l => (JsonNode)new JsonObject
        {
            ["id"] = l.Variant, ["key"] = $"{l.Variant}:abc{l.Variant}", ["product_id"] = l.Variant / 10, ["variant_id"] = l.Variant,
            ["title"] = "Mug", ["quantity"] = l.Qty, ["price"] = "12.00", ["line_price"] = Money(12m * l.Qty),
            ["original_price"] = "12.00", ["discounted_price"] = "12.00", ["total_discount"] = "0.00", ["properties"] = new JsonObject(),
        }).ToArray()),
    };

    public static JsonObject Checkout(long id, long? customerId, string? completedAt = null) => new()
    {
        ["id"] = id,
        ["token"] = $"ck{id}",
        ["cart_token"] = $"cart-{id}",
        ["email"] = "ada@example.com",
        ["gateway"] = null,
        ["created_at"] = "2026-07-02T10:00:00-04:00",
        ["updated_at"] = "2026-07-02T10:05:00-04:00",
        ["completed_at"] = completedAt,
        ["currency"] = "USD",
        ["presentment_currency"] = "USD",
        ["subtotal_price"] = "24.00",
        ["total_price"] = "29.00",
        ["total_tax"] = "0.00",
        ["customer"] = customerId is { } c ? Customer(c) : null,
        ["billing_address"] = Address(),
        ["shipping_address"] = Address(),
        ["line_items"] = new JsonArray(new JsonObject
        {
            ["key"] = "k1", ["product_id"] = 9000, ["variant_id"] = 19000, ["sku"] = "SKU-0", ["title"] = "Product 0",
            ["quantity"] = 2, ["price"] = "12.00", ["line_price"] = "24.00",
        }),
    };
}
