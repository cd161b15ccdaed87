using System.Text.Json;
using PluginApp.Data;

namespace PluginApp.StoreData;

/// <summary>products/*, customers/*, carts/* and checkouts/* payloads to rows.</summary>
internal static class CatalogPayloads
{
    public static ProductRows Product(JsonElement p)
    {
        var product = new Product
        {
            Id = p.RequiredId("id"),
            Title = p.OptionalString("title") ?? "",
            Handle = p.OptionalString("handle"),
            ProductType = p.OptionalString("product_type"),
            Vendor = p.OptionalString("vendor"),
            Status = p.OptionalString("status"),
            Published = !(p.TryGetProperty("published_at", out var published) && published.ValueKind == JsonValueKind.Null),
            Tags = p.Tags(),
            ImageUrl = p.OptionalObject("image")?.OptionalString("src")
                       ?? p.OptionalArray("images").Select(i => i.OptionalString("src")).FirstOrDefault(),
            CreatedAt = p.OptionalTime("created_at"),
            UpdatedAt = p.OptionalTime("updated_at"),
        };
        var variants = p.OptionalArray("variants").Select(v => new Variant
        {
            Id = v.RequiredId("id"),
            ProductId = product.Id,
            Title = v.OptionalString("title"),
            Sku = v.OptionalString("sku"),
            Price = v.OptionalMoney("price"),
            CompareAtPrice = v.OptionalMoney("compare_at_price"),
            InventoryQuantity = v.OptionalInt("inventory_quantity"),
            // Before API 2024-07 the variant said whether its stock is tracked (inventory_management "shopify", or null);
            // since, only its inventory item does (inventory_items/update), and the stored value stays.
            InventoryTracked = v.TryGetProperty("inventory_management", out var managed)
                ? managed.ValueKind == JsonValueKind.String : null,
            InventoryPolicy = v.OptionalString("inventory_policy"),
            InventoryItemId = v.OptionalId("inventory_item_id"),
            UpdatedAt = v.OptionalTime("updated_at") ?? product.UpdatedAt,
        }).ToList();
        // Shopify sends a product's first 100 variants whole and names every variant in variant_gids (webhooks of API
        // 2024-04 on; a product may have 2,048 since October 2025): those it names stay in the catalog. Until 6 Dec 2026
        // every products/update deleted a large product's variants after the hundredth.
        var kept = p.OptionalArray("variant_gids").Select(g => Gid.Id(g.RequiredString("admin_graphql_api_id")))
            .Concat(variants.Select(v => v.Id)).Distinct().ToArray();
        return new ProductRows(product, variants, kept);
    }

    public static CartRows Cart(JsonElement c)
    {
        var token = c.OptionalString("token") ?? c.RequiredString("id");
        var lines = c.OptionalArray("line_items").Select(l => new CartLine
        {
            CartToken = token,
            LineKey = l.OptionalString("key") ?? l.RequiredId("variant_id").ToString(System.Globalization.CultureInfo.InvariantCulture),
            ProductId = l.OptionalId("product_id"),
            VariantId = l.OptionalId("variant_id"),
            Quantity = l.RequiredInt("quantity"),
            Price = l.OptionalMoney("price"),
        }).ToList();
        var cart = new Cart
        {
            Token = token,
            Note = c.OptionalString("note"),
            TotalPrice = lines.Sum(l => (l.Price ?? 0m) * l.Quantity),
            CreatedAt = c.OptionalTime("created_at"),
            UpdatedAt = c.OptionalTime("updated_at"),
        };
        return new CartRows(cart, Dedupe(lines, l => l.LineKey));
    }

    public static CheckoutRows Checkout(JsonElement c)
    {
        var customer = c.OptionalObject("customer") is { } cu ? CustomerPayloads.Customer(cu) : null;
        var checkout = new Checkout
        {
            Token = c.RequiredString("token"),
            CartToken = c.OptionalString("cart_token"),
            CustomerId = customer?.Id,
            Email = c.OptionalEmail("email"),
            Currency = c.OptionalString("currency") ?? c.OptionalString("presentment_currency"),
            TotalPrice = c.OptionalMoney("total_price"),
            SubtotalPrice = c.OptionalMoney("subtotal_price"),
            CompletedAt = c.OptionalTime("completed_at"),
            CreatedAt = c.OptionalTime("created_at"),
            UpdatedAt = c.OptionalTime("updated_at"),
        };
        var lines = c.OptionalArray("line_items").Select((l, i) => new CheckoutLine
        {
            CheckoutToken = checkout.Token,
            LineKey = l.OptionalString("key") ?? l.OptionalId("variant_id")?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? $"line-{i}",
            ProductId = l.OptionalId("product_id"),
            VariantId = l.OptionalId("variant_id"),
            Quantity = l.RequiredInt("quantity"),
            Price = l.OptionalMoney("price"),
        }).ToList();
        return new CheckoutRows(checkout, Dedupe(lines, l => l.LineKey), customer);
    }

    // Why: a key may repeat in a payload (same variant, different properties); the last one stands.
    private static List<T> Dedupe<T>(List<T> rows, Func<T, string> key) =>
        rows.GroupBy(key).Select(g => g.Last()).ToList();
}

internal static class CustomerPayloads
{
    public static Customer Customer(JsonElement c) => new()
    {
        Id = c.RequiredId("id"),
        Email = c.OptionalEmail("email"),
        FirstName = c.OptionalString("first_name"),
        LastName = c.OptionalString("last_name"),
        Phone = c.OptionalString("phone"),
        State = c.OptionalString("state"),
        // Absent from the pinned version's webhooks (removed in 2025-01), so usually null: the stored value then stays.
        Tags = c.OptionalString("tags"),
        AcceptsMarketing = c.OptionalObject("email_marketing_consent") is { } consent ? Subscribed(consent) : c.OptionalBool("accepts_marketing"),
        MarketingConsentAt = c.OptionalObject("email_marketing_consent")?.OptionalTime("consent_updated_at"),
        CreatedAt = c.OptionalTime("created_at"),
        UpdatedAt = c.OptionalTime("updated_at"),
    };

    /// <summary>
    /// customers_email_marketing_consent/update: the customer's id and email consent (no consent object: no email to send
    /// to, so not subscribed). The one place webhooks tell consent since API version 2025-01.
    /// </summary>
    public static MarketingConsent Consent(JsonElement p)
    {
        var consent = p.OptionalObject("email_marketing_consent");
        return new(p.RequiredId("customer_id"), consent is { } c && Subscribed(c) == true, consent?.OptionalTime("consent_updated_at"));
    }

    private static bool? Subscribed(JsonElement consent) => consent.OptionalString("state") is { } state ? state == "subscribed" : null;

    /// <summary>
    /// customers/delete: the id, and its global id, which must name the same customer. Why the global id is required: the
    /// body is nothing else, and a signed {"id": …} of another topic (products/delete) sent again as this one must not
    /// delete the customer who happens to have that number.
    /// </summary>
    public static CustomerDeletion Deletion(JsonElement p)
    {
        var id = p.RequiredId("id");
        return p.RequiredString("admin_graphql_api_id") == Gid.Of("Customer", id)
            ? new CustomerDeletion(id)
            : throw new MalformedPayloadException("'admin_graphql_api_id' does not name the customer 'id' does");
    }
}

/// <summary>A customers/delete delivery: the customer Shopify no longer has (deleted by the merchant, or merged into another).</summary>
internal sealed record CustomerDeletion(long Id);

/// <summary>A customer's email marketing consent as customers_email_marketing_consent/update tells it, and when it was given or withdrawn.</summary>
internal sealed record MarketingConsent(long CustomerId, bool Subscribed, DateTimeOffset? At);

/// <param name="VariantIds">Every variant the product has: those in <paramref name="Variants"/>, and those a large product's
/// payload only names.</param>
internal sealed record ProductRows(Product Product, List<Variant> Variants, long[] VariantIds);

/// <summary>A products/delete delivery: the product's id, all it carries.</summary>
internal sealed record ProductDeletion(long Id);

/// <summary>An inventory_items/create|update payload: whether Shopify tracks the item's stock, and its unit cost
/// (<paramref name="CostGiven"/>: the payload carried the field; null there means the merchant set no cost).</summary>
internal sealed record InventoryItemRow(long Id, bool? Tracked, decimal? Cost, DateTimeOffset? UpdatedAt, bool CostGiven = true)
{
    public static InventoryItemRow Parse(JsonElement i) =>
        new(i.RequiredId("id"), i.OptionalBool("tracked"), i.OptionalMoney("cost"), i.OptionalTime("updated_at"), i.TryGetProperty("cost", out _));
}
internal sealed record CartRows(Cart Cart, List<CartLine> Lines);
internal sealed record CheckoutRows(Checkout Checkout, List<CheckoutLine> Lines, Customer? Customer);
