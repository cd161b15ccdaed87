using PluginApp.Admin.Shell;
using PluginApp.Data;

namespace PluginApp.CartOffers.Admin;

/// <summary>Cart offers: the settings and caps, the purchase-intent model in use, the code pool, the action mix and recent decisions with their reasons.</summary>
public sealed class CartOffersPageModel(CartOfferSettingsStore store, CartOfferStats stats, DiscountPool pool, TaxShares taxes, IIntentScorer intent, Recommendations.UpsellStats shops, ShopScope scope,
    Microsoft.Extensions.Options.IOptions<CartOffersOptions> options) : AdminPageModel
{
    /// <summary>How the policy arm's carts explore, in a sentence, as configured (<c>CartOffers:ExploreShare</c>; until 5 Dec
    /// 2026 the page said one in ten whatever it was).</summary>
    public string Exploration => options.Value.ExploreShare switch
    {
        <= 0 => "Exploration is off: no cart is given a random action, so the experiment measures the policy as a whole against carts shown nothing.",
        var s => string.Create(System.Globalization.CultureInfo.InvariantCulture,
            $"While the experiment runs, {(Math.Abs(1 / s - Math.Round(1 / s)) < 1e-9 ? $"one cart in {Math.Round(1 / s):0} gets" : $"{s * 100:0.#} % of carts get")} a random allowed action instead, so it can measure what each action really does."),
    };

    public CartOfferSettings Settings { get; private set; } = CartOfferSettings.Default;
    public int Version { get; private set; }
    public DateTimeOffset? UpdatedAt { get; private set; }
    public string? UpdatedBy { get; private set; }
    public CodeSummary Codes { get; private set; } = null!;
    public List<(string Action, long Decisions, long Explored)> Mix { get; private set; } = [];
    public List<CartOfferDecisionView> Recent { get; private set; } = [];
    public IntentModelSummary Intent { get; private set; } = null!;
    public string Currency { get; private set; } = "";
    /// <summary>What the policy knows of the tax in the store's prices (<see cref="TaxShares"/>).</summary>
    public TaxShare Tax { get; private set; } = new(null, null, 0);

    /// <summary>What the page says of it.</summary>
    public string TaxText => Tax switch
    {
        { RateUnknown: true } => "Your prices include tax, and no order has shown how much yet: until one does, no cart is offered a discount, since the margin floor cannot be checked.",
        { Share: > 0 and var s } => string.Create(System.Globalization.CultureInfo.InvariantCulture,
            $"Your prices include tax: of your recent orders' totals, {s:P1} was tax. Margins, and the margin floor, are counted on prices without it, as your costs are."),
        { PricesIncludeTax: false } => "Your prices exclude tax, as Shopify says of your store: margins are counted on them as they are.",
        { Share: 0 } => "Margins are counted on your prices as they are: your recent orders carried no tax within their prices.",
        _ => "Whether your prices include tax is not known yet (no order since the app started keeping it says): margins are counted on your prices as they are until one does.",
    };

    public async Task OnGetAsync(CancellationToken ct)
    {
        ViewData["Title"] = "Cart offers";
        (Settings, Version, UpdatedAt, UpdatedBy) = await store.GetAsync(scope.ShopId, ct);
        await pool.SettleAsync(scope.ShopId, ct);
        Codes = await stats.CodesAsync(scope.ShopId, Settings, ct);
        Mix = await stats.MixAsync(scope.ShopId, 30, ct);
        Recent = await stats.RecentAsync(scope.ShopId, 25, ct);
        Intent = await intent.SummaryAsync(scope.ShopId, ct);
        Tax = await taxes.ShareAsync(scope.ShopId, ct);
        // The shop's currency, else its orders', else USD: a label never reads "()".
        Currency = (await shops.ShopAsync(scope.ShopId, ct)).Currency;
    }
}
