using Microsoft.Extensions.Options;

namespace PluginApp.CartOffers;

/// <summary>How the cart policy runs ("CartOffers" section). Validated at start; the merchant's own settings are per shop.</summary>
public sealed class CartOffersOptions
{
    public const string Section = "CartOffers";

    /// <summary>Share of the policy arm's carts given a random allowed action, so the experiment measures each action's effect.</summary>
    public double ExploreShare { get; set; } = 0.10;
}

internal sealed class CartOffersOptionsValidator : IValidateOptions<CartOffersOptions>
{
    public ValidateOptionsResult Validate(string? name, CartOffersOptions o) =>
        o.ExploreShare is >= 0 and <= 0.5 ? ValidateOptionsResult.Success
            : ValidateOptionsResult.Fail($"CartOffers:ExploreShare {o.ExploreShare} must be between 0 and 0.5.");
}
