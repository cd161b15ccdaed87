using Microsoft.Extensions.Options;

namespace PluginApp.CartOffers;

/// <summary>How the cart policy runs ("CartOffers" section). Validated at start; the merchant's own settings are per shop.</summary>
public sealed class CartOffersOptions
{
    public const string Section = "CartOffers";

    /// <summary>Share of the policy arm's carts given a random allowed action, so the experiment measures each action's effect.</summary>
    public double ExploreShare { get; set; } = 0.10;

    /// <summary>
    /// The most codes one shopper's address (as Shopify's proxy reports it; an IPv6 address by its /64 network) is handed
    /// a day, the shop's day; 0: no limit.
    /// Why: the cart token and lines come from the storefront, so a script naming cheap carts under new tokens collected a
    /// code for each, up to the day's budget counted at those small carts, each good for any order. A household or an
    /// office behind one address shares the limit; a request with no address known is not limited by it.
    /// </summary>
    public int CodesPerAddressPerDay { get; set; } = 3;
}

internal sealed class CartOffersOptionsValidator : IValidateOptions<CartOffersOptions>
{
    public ValidateOptionsResult Validate(string? name, CartOffersOptions o) =>
        o.ExploreShare is not (>= 0 and <= 0.5) ? ValidateOptionsResult.Fail($"CartOffers:ExploreShare {o.ExploreShare} must be between 0 and 0.5.")
        : o.CodesPerAddressPerDay < 0 ? ValidateOptionsResult.Fail($"CartOffers:CodesPerAddressPerDay {o.CodesPerAddressPerDay} must be 0 (no limit) or more.")
        : ValidateOptionsResult.Success;
}
