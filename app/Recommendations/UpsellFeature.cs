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

    public static readonly AiFeature Registration = new(Name, "Upsells",
        "Ranks the products shown in the product and cart upsell blocks.", [ShowNothing, ShowBestsellers])
    {
        OnChanged = (services, shopId) => services.GetRequiredService<CatalogCache>().Invalidate(shopId),
    };
}
