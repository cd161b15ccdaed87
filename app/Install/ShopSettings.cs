using System.Text.Json;
using PluginApp.Data;
using PluginApp.StoreData;
using PluginApp.Webhooks;

namespace PluginApp.Install;

/// <summary>
/// The shop's settings the app works by: its time zone (nightly jobs and the store's days), currency, and whether its prices
/// include tax (<see cref="CartOffers.TaxShares"/>). Read at install (<see cref="ShopInstaller"/>), and kept current by
/// Shopify's shop/update webhook: until 7 Dec 2026 they were read once, so a merchant who moved the store to another time
/// zone, or turned prices to include tax, was served by the old setting for good.
/// </summary>
internal static class ShopSettings
{
    public const string UpdateTopic = "shop/update";

    internal sealed record SettingsUpdate(string? Zone, string? Currency, bool? TaxesIncluded, DateTimeOffset UpdatedAt, long? ShopifyShopId);

    /// <summary>
    /// shop/update: the Shop object, as app/uninstalled's, with only the fields the subscription asks for (shopify.app.toml:
    /// <c>id</c>, <c>myshopify_domain</c>, <c>iana_timezone</c>, <c>currency</c>, <c>taxes_included</c>, <c>updated_at</c>);
    /// the whole object's owner's contact details, were they sent, are not kept, as the body is not (a handled delivery keeps
    /// its summary).
    /// </summary>
    internal static SettingsUpdate Parse(JsonElement p)
    {
        if (p.ValueKind != JsonValueKind.Object) throw new MalformedPayloadException("a shop/update payload is a Shop object");
        if (p.OptionalString("myshopify_domain") is null) throw new MalformedPayloadException("'myshopify_domain' is missing");
        return new(p.OptionalString("iana_timezone"), p.OptionalString("currency"), p.OptionalBool("taxes_included"),
            p.OptionalTime("updated_at") ?? throw new MalformedPayloadException("'updated_at' is missing"), p.OptionalId("id"));
    }

    /// <summary>
    /// Why the time guard (<c>settings_at</c>): deliveries can arrive out of order, and one older than the settings we hold
    /// (another delivery's, or the install's read, which holds the time it was read) must not put an old setting back. With
    /// none held yet (a shop installed before they were kept, until the install sweep reads them), one older than the shop's
    /// latest grant is not applied either: an old app/uninstalled body, the same Shop object, sent again as shop/update. The
    /// shop's Shopify id, where it is not known yet, is the body's (the domain binding made it this shop's).
    /// </summary>
    internal static void Write(TopicContext c, SettingsUpdate u) => c.Store.Add("""
        UPDATE shops SET iana_timezone = coalesce($2, iana_timezone), currency = coalesce($3, currency),
                         taxes_included = coalesce($4, taxes_included), settings_at = $5, shopify_shop_id = coalesce(shopify_shop_id, $6),
                         updated_at = now()
        WHERE id = $1 AND (settings_at < $5 OR (settings_at IS NULL AND (granted_at IS NULL OR granted_at < $5)))
        """, c.Store.ShopId, Sql.Text(u.Zone), Sql.Text(u.Currency), u.TaxesIncluded is { } taxes ? taxes : new TypedNull(NpgsqlTypes.NpgsqlDbType.Boolean),
        u.UpdatedAt, u.ShopifyShopId is { } id ? id : new TypedNull(NpgsqlTypes.NpgsqlDbType.Bigint));
}
