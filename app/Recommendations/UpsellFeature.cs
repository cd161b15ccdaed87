using PluginApp.Admin.Switches;

namespace PluginApp.Recommendations;

/// <summary>Upsells as an AI feature the merchant can switch off: the blocks then show nothing, or store bestsellers.</summary>
public static class UpsellFeature
{
    public const string Name = "upsells";
    public const string ShowNothing = "nothing";
    public const string ShowBestsellers = "bestsellers";
    /// <summary>The path of an answer given while the merchant has upsells switched off and chose to show nothing.</summary>
    public const string SwitchedOff = "switched_off";
    /// <summary>The decision log's reason for an answer given while the merchant has upsells switched off to show bestsellers.</summary>
    public const string OffReason = "upsells are switched off by the merchant: the store's bestsellers are shown, with no model";

    public static readonly AiFeature Registration = new(Name, "Upsells",
        "Ranks the products shown in the product and cart upsell blocks.", [ShowNothing, ShowBestsellers])
    {
        OnChanged = (services, shopId) => services.GetRequiredService<CatalogCache>().Invalidate(shopId),
        // Off to show nothing, the product and cart upsell blocks render nothing at all (theme-extension/blocks).
        Blocks = new BlockVisibility("upsells_hidden", ShowNothing),
        OffMeaning = new Dictionary<string, string>
        {
            [ShowNothing] = "the upsell blocks are not shown at all (the theme renders nothing in their place once Shopify has the app's setting)",
            [ShowBestsellers] = "the upsell blocks show the store's bestsellers, the same for every shopper",
        },
    };
}
