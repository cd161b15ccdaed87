using System.Text.Json;
using PluginApp.Shopify;
using PluginApp.StoreData;

namespace PluginApp.Webhooks;

/// <summary>
/// Shopify signs only the body of a webhook: the shop, topic and delivery id headers are not signed, so a body signed for
/// one shop could be replayed naming another. Where the body names its shop, that is what we act on.
/// </summary>
internal static class ShopBinding
{
    /// <summary>What a payload says about its own shop: the myshopify domain and Shopify's numeric shop id, when present.</summary>
    public sealed record Claim(string? Domain, long? ShopifyShopId);

    /// <summary>Topics whose whole effect is on the shop they name: they must name it, and it must be the header's.</summary>
    public static bool ActsOnTheShop(string topic) =>
        topic is WebhookTopics.AppUninstalled or WebhookTopics.ShopRedact or "customers/redact" or "customers/data_request" or Install.ShopSettings.UpdateTopic;

    public static Claim Read(string topic, JsonElement root)
    {
        // Compliance payloads: shop_domain and shop_id. The Shop object (app/uninstalled, shop/update): myshopify_domain, domain, id.
        var domain = root.OptionalString("shop_domain") ?? root.OptionalString("myshopify_domain");
        if (domain is null && root.OptionalString("domain") is { } d && ShopDomain.TryNormalize(d, out var myshopify)) domain = myshopify;
        long? id = ShopId(root) ?? (topic is WebhookTopics.AppUninstalled or Install.ShopSettings.UpdateTopic ? root.OptionalId("id") : null);
        return new Claim(domain is null ? null : ShopDomain.TryNormalize(domain, out var normalized) ? normalized : domain.ToLowerInvariant(), id);
    }

    /// <summary>
    /// The payload's shop_id: a number in the compliance topics, a global id ("gid://shopify/Shop/548380009") in
    /// app/scopes_update (API 2025-07 on). Until 6 Dec 2026 only a number was read, so every app/scopes_update delivery was
    /// refused as malformed, and a grant changed in Shopify never reached the admin's notice of missing permissions.
    /// </summary>
    private static long? ShopId(JsonElement root) =>
        root.TryGetProperty("shop_id", out var v) && v.ValueKind == JsonValueKind.String && v.GetString() is { } s
            && s.StartsWith("gid://shopify/Shop/", StringComparison.Ordinal)
            ? Gid.Id(s)
            : root.OptionalId("shop_id");

    /// <returns>Why the delivery must not be acted on, or null when the body and headers agree.</returns>
    public static string? Mismatch(string topic, string headerShop, JsonElement root, Claim claim)
    {
        if (claim.Domain is { } named && !string.Equals(named, headerShop, StringComparison.Ordinal))
            return $"the payload names {named}, not {headerShop}";
        if (ActsOnTheShop(topic) && claim.Domain is null)
            return $"a {topic} payload must name its shop";
        // The GID type binds the body to its topic: a signed product body sent again as customers/update is refused.
        if (root.OptionalString("admin_graphql_api_id") is { } gid && ExpectedGidType(topic) is { } expected
            && !gid.StartsWith($"gid://shopify/{expected}/", StringComparison.Ordinal))
            return $"a {topic} payload holds a {gid[..Math.Min(gid.Length, 40)]}";
        return OtherTopicsShape(topic, root);
    }

    /// <summary>
    /// Where no GID tells topics apart, the fields only another topic's payload has: a signed customers/data_request body
    /// sent again as shop/redact or customers/redact, or as app/uninstalled, and a product body sent as products/delete, are
    /// refused. Until 5 Dec 2026 they were acted on: one customer's data request could erase an installed shop, a customer,
    /// or the shop's tokens, and a product update hid the product.
    /// </summary>
    private static string? OtherTopicsShape(string topic, JsonElement root)
    {
        string? Holds(params string[] names) =>
            root.ValueKind == JsonValueKind.Object ? names.FirstOrDefault(n => root.TryGetProperty(n, out _)) : null;
        var foreign = topic switch
        {
            WebhookTopics.ShopRedact => Holds("customer", "orders_to_redact", "orders_requested", "data_request", "myshopify_domain"),
            "customers/redact" => Holds("orders_requested", "data_request"),
            "customers/data_request" => Holds("orders_to_redact"),
            WebhookTopics.AppUninstalled => Holds("shop_domain", "customer"),
            "products/delete" => Holds("title", "variants"),
            // An order's or a product's own body sent again as the order's deletion. A bare {"id": …} cannot be told apart:
            // products/delete's body, sent as this topic, deletes the order of that number, if the shop has one.
            "orders/delete" => Holds("name", "line_items", "email", "created_at", "updated_at", "title", "variants", "order_id"),
            // A customer's own body (customers/create or update, whose GID is a customer's too) sent again as her deletion.
            "customers/delete" => Holds("email", "first_name", "last_name", "created_at", "updated_at", "state"),
            // A cart or a checkout has no GID of its own; an order's (or any other resource's) body holds one, and an order's
            // its number. Until 6 Dec 2026 a signed order body sent as carts/update was stored as a cart under the order's
            // token, its note with it, where no erasure of its customer would look.
            _ when topic.StartsWith("carts/", StringComparison.Ordinal) || topic.StartsWith("checkouts/", StringComparison.Ordinal)
                => Holds("admin_graphql_api_id", "order_number", "financial_status"),
            _ => null,
        // The Shop object (app/uninstalled's, shop/update's) has no GID: sent again as an order, a customer or a product, its
        // id and the owner's email and phone were stored as one (shop/update, subscribed since 7 Dec 2026, sends one at every
        // settings change of an installed shop).
        } ?? (topic is WebhookTopics.AppUninstalled or Install.ShopSettings.UpdateTopic ? null : Holds("myshopify_domain"));
        return foreign is null ? null : $"a {topic} payload holds no '{foreign}' (another topic's body)";
    }

    private static string? ExpectedGidType(string topic) => topic.Split('/')[0] switch
    {
        "orders" => "Order",
        "products" => "Product",
        "refunds" => "Refund",
        "order_transactions" => "OrderTransaction",
        "inventory_items" => "InventoryItem",
        "customers" when topic is "customers/create" or "customers/update" or "customers/delete" => "Customer",
        _ => null,
    };
}
