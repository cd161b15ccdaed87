namespace PluginApp.Shopify;

/// <summary>The one place the Admin API version is pinned. shopify.app.toml's [webhooks] api_version must match (a test checks).</summary>
public static class ShopifyApiVersion
{
    public const string Pinned = "2026-07";
}
