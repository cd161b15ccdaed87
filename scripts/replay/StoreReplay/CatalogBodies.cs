using System.Text.Json;

namespace StoreReplay;

/// <summary>products/create and customers/create bodies, shaped like Shopify's REST webhook payloads.</summary>
internal static class CatalogBodies
{
    public static byte[] Product(ReplayProduct p) => Json.Build(w =>
    {
        w.WriteStartObject();
        w.WriteNumber("id", p.Id);
        w.WriteString("admin_graphql_api_id", Formats.Gid("Product", p.Id));
        w.WriteString("title", p.Title);
        w.WriteString("body_html", "");
        w.WriteString("vendor", p.Vendor);
        w.WriteString("product_type", p.ProductType);
        w.WriteString("handle", p.Handle);
        w.WriteString("status", "active");
        w.WriteString("tags", "");
        w.Time("created_at", p.CreatedAt);
        w.Time("updated_at", p.CreatedAt);
        w.Time("published_at", p.CreatedAt);
        w.WriteString("published_scope", "web");
        w.WriteStartArray("options");
        w.WriteStartObject();
        w.WriteNumber("product_id", p.Id);
        w.WriteString("name", "Title");
        w.WriteNumber("position", 1);
        w.WriteStartArray("values");
        w.WriteStringValue("Default Title");
        w.WriteEndArray();
        w.WriteEndObject();
        w.WriteEndArray();
        w.EmptyArray("images");
        w.WriteNull("image");
        w.WriteStartArray("variants");
        w.WriteStartObject();
        w.WriteNumber("id", p.VariantId);
        w.WriteString("admin_graphql_api_id", Formats.Gid("ProductVariant", p.VariantId));
        w.WriteNumber("product_id", p.Id);
        w.WriteString("title", "Default Title");
        w.Money("price", p.Price);
        w.WriteNull("compare_at_price");
        w.WriteString("sku", p.Sku);
        w.WriteNull("barcode");
        w.WriteNumber("position", 1);
        w.WriteNumber("inventory_item_id", p.InventoryItemId);
        w.WriteNumber("inventory_quantity", p.InventoryQuantity);
        w.WriteString("inventory_policy", "deny");
        w.WriteString("inventory_management", "shopify");
        w.WriteBoolean("taxable", true);
        w.WriteBoolean("requires_shipping", true);
        w.WriteString("option1", "Default Title");
        w.WriteNull("option2");
        w.WriteNull("option3");
        w.WriteNumber("grams", 0);
        w.Time("created_at", p.CreatedAt);
        w.Time("updated_at", p.CreatedAt);
        w.WriteEndObject();
        w.WriteEndArray();
        w.WriteEndObject();
    });

    public static byte[] Customer(ReplayCustomer c, string currency) => Json.Build(w =>
    {
        w.WriteStartObject();
        CustomerFields(w, c, currency);
        w.WriteStartArray("addresses");
        if (c.CountryCode is not null) Address(w, null, c.CountryCode, c.Id);
        w.WriteEndArray();
        w.WriteEndObject();
    });

    /// <summary>The customer's fields; also embedded in orders and checkouts, always at the same updated_at.</summary>
    public static void CustomerFields(Utf8JsonWriter w, ReplayCustomer c, string currency)
    {
        w.WriteNumber("id", c.Id);
        w.WriteString("admin_graphql_api_id", Formats.Gid("Customer", c.Id));
        w.WriteString("email", c.Email);
        w.WriteNull("first_name");
        w.WriteNull("last_name");
        w.WriteNull("phone");
        w.WriteString("state", "enabled");
        w.WriteBoolean("verified_email", true);
        w.WriteString("tags", "");
        w.WriteNull("note");
        w.WriteString("currency", currency);
        w.WriteBoolean("tax_exempt", false);
        w.Time("created_at", c.CreatedAt);
        w.Time("updated_at", c.CreatedAt);
        w.WriteStartObject("email_marketing_consent");
        w.WriteString("state", "not_subscribed");
        w.WriteString("opt_in_level", "single_opt_in");
        w.WriteNull("consent_updated_at");
        w.WriteEndObject();
        if (c.CountryCode is not null) Address(w, "default_address", c.CountryCode, c.Id);
        else w.WriteNull("default_address");
    }

    /// <summary>The data sets hold only a country, so every other address field is null.</summary>
    public static void Address(Utf8JsonWriter w, string? name, string? countryCode, long? customerId = null)
    {
        if (countryCode is null)
        {
            if (name is not null) w.WriteNull(name);
            return;
        }
        if (name is null) w.WriteStartObject();
        else w.WriteStartObject(name);
        if (customerId is { } id)
        {
            w.WriteNumber("customer_id", id);
            w.WriteBoolean("default", true);
        }
        foreach (var field in (string[])["first_name", "last_name", "name", "company", "address1", "address2", "city", "province",
                     "province_code", "zip", "phone"])
            w.WriteNull(field);
        w.StringOrNull("country", Countries.Name(countryCode));
        w.WriteString("country_code", countryCode);
        w.WriteEndObject();
    }
}
