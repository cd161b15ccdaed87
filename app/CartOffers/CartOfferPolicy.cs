using System.Globalization;

namespace PluginApp.CartOffers;

/// <summary>What the cart block can do for a cart.</summary>
public static class CartAction
{
    public const string Nothing = "nothing", Nudge = "nudge", NudgeUpsell = "nudge_upsell", Offer = "offer";
    public static readonly string[] All = [Nothing, Nudge, NudgeUpsell, Offer];
}

/// <summary>A cart as the policy sees it, priced from the catalog (never from what the browser says).</summary>
/// <param name="Cost">Sum of the lines' unit costs, null when any line's cost is unknown.</param>
/// <param name="UpsellPrice">The best threshold upsell's price and cost (null: none crosses the threshold, or no threshold).</param>
/// <param name="Products">Distinct products in the cart (the intent model reads it as training counted it).</param>
/// <param name="Paid">What the cart costs after its own discounts as a share of what it costs before them (the storefront's
/// cart says both, in its currency; the share needs no rate), 1 without discounts. The free-shipping threshold is met by
/// what the cart costs, so the bar and the product that would reach it count the cart's value at this share.</param>
/// <param name="TaxShare">The share of the store's prices that is tax (<see cref="TaxShares"/>), 0 where prices exclude it. Margin
/// is counted on prices without it: the tax is the state's, and a unit cost has none. Until 7 Dec 2026 it was counted on the
/// prices as shown, and in a store whose prices include 20 % VAT a cart at a 33 % margin passed a 40 % floor as 44 %.</param>
/// <param name="TaxRateUnknown">The store's prices include tax and no order has shown how much yet (<see cref="CartOffers.TaxShare.RateUnknown"/>):
/// no offer, as with a cost unknown.</param>
public sealed record CartFacts(decimal Value, decimal? Cost, int Items, decimal? Threshold, decimal? UpsellPrice, decimal? UpsellCost, int Products = 1,
    decimal Paid = 1, decimal TaxShare = 0, bool TaxRateUnknown = false)
{
    /// <summary>What the merchant keeps of an amount at the store's prices once its tax is passed on.</summary>
    public decimal WithoutTax(decimal price) => TaxShare == 0 ? price : price * (1 - TaxShare);

    /// <summary>What the cart costs after its own discounts, at catalog prices, to the cent (the share comes as a binary
    /// fraction: 60.00 at 50/60 would otherwise read 49.99999999999998, a cart at the threshold a hair short of it).</summary>
    public decimal Paying => Paid == 1 ? Value : Math.Round(Value * Paid, 2);

    /// <summary>What is left to the free-shipping threshold, counted on what the cart costs after its discounts.</summary>
    public decimal? Remaining => Threshold is { } t ? Math.Max(0, t - Paying) : null;

    /// <summary>
    /// The catalog price a product added now needs to close <see cref="Remaining"/>, the cart's discount taking the same share
    /// of it (a percentage off the order does; a fixed amount off does not, and then it reaches with room to spare). Until 6
    /// Dec 2026 it was what was left at catalog prices: a cart 20 % off was offered a product that still left it short.
    /// </summary>
    public decimal? PriceToReach => Remaining is not { } r ? null : r == 0 ? 0 : Paid == 1 ? r : Paid > 0 ? Math.Ceiling(r / Paid * 100) / 100 : decimal.MaxValue;
}

/// <summary>The offer's caps as they stand for this cart right now.</summary>
/// <param name="SpentToday">Discount already handed out today.</param>
/// <param name="CodeAvailable">Whether the pool has a code ready.</param>
/// <param name="CartHadCode">Whether this cart had a code that was used or expired: a cart is given one code, ever.</param>
/// <param name="HoldsCode">Whether this cart holds the code it was handed (so a discount it shows may be that code's).</param>
/// <param name="AddressCodesToday">Codes handed today to the shopper's address (<see cref="CartOffersOptions.CodesPerAddressPerDay"/>).</param>
/// <param name="AddressCap">The most an address is handed a day; 0: no limit.</param>
public sealed record OfferCaps(bool Enabled, decimal Percent, decimal MaxPercent, decimal MarginFloorPercent, decimal DailyBudget, decimal SpentToday,
    bool CodeAvailable, bool CartHadCode = false, bool HoldsCode = false, int AddressCodesToday = 0, int AddressCap = 0);

/// <summary>The relative change in P(order) each action causes, which of them the experiment measured, and where they come from in words.</summary>
public sealed record ActionEffects(IReadOnlyDictionary<string, double> Lift, IReadOnlySet<string> Measured, string Source)
{
    // Why first: static initializers run in text order, and Assumed reads this.
    public static IReadOnlyDictionary<string, double> AssumedLifts { get; } = new Dictionary<string, double>
    {
        [CartAction.Nothing] = 0, [CartAction.Nudge] = 0.03, [CartAction.NudgeUpsell] = 0.05, [CartAction.Offer] = 0.25,
    };

    /// <summary>
    /// The fixed rule's assumptions, used for every action the experiment has not measured yet: a bar +3 %, a bar and an
    /// upsell +5 % with 10 % of shoppers taking the upsell, an offer +25 % of the undecided share (1 − P): an offer moves
    /// carts that might not buy, and is pure cost on carts that would.
    /// </summary>
    public static ActionEffects Assumed { get; } = new(AssumedLifts, new HashSet<string>(),
        "the fixed rule's assumed effects (the experiment has not measured the actions yet)");

    public const double UpsellTakeRate = 0.10;

    public bool IsMeasured(string action) => Measured.Contains(action);
}

/// <summary>The policy's choice for one cart, with what it weighed.</summary>
/// <param name="Expected">Expected incremental margin of each action considered, against doing nothing.</param>
/// <param name="Reasons">Why, in words: the chosen action and why each other was not chosen or not allowed.</param>
/// <param name="Discount">The offer's discount on this cart (0 unless the action is the offer).</param>
public sealed record CartPolicyDecision(string Action, IReadOnlyDictionary<string, double> Expected, IReadOnlyList<string> Reasons, decimal Discount);

/// <summary>
/// For each cart, among nothing, nudge (the free-shipping bar), nudge + upsell and offer, the action with the best expected
/// incremental margin: P(order | cart, action) × margin − cost of the action, against doing nothing. P(order | cart) is the
/// purchase-intent model's; an action's effect multiplies it by (1 + lift), with each action's lift measured by the
/// experiment once it has enough data (<see cref="ActionEffectsEstimator"/>) and the fixed rule's until then
/// (<see cref="ActionEffects.Assumed"/>). The offer's cost is its
/// discount on every order it is shown to, including those that would have happened anyway; it is only considered when
/// every cap holds. Pure: same inputs, same choice.
/// </summary>
public static class CartOfferPolicy
{
    /// <summary>Used to rank the bar and the upsell when a cart's cost is unknown (the offer is never allowed then); the
    /// experiment's results count an order of unknown cost at the same share.</summary>
    public const double AssumedMarginShare = PluginApp.Experiments.ExperimentResults.AssumedMarginShare;

    /// <summary>
    /// The actions this cart may be shown, in <see cref="CartAction.All"/>'s order: nothing always; the bar below a
    /// free-shipping threshold, with a product when one reaches it; the offer when every cap holds. What exploration draws
    /// from, and, logged for the control arm's carts too, what the measured effects compare like with like by.
    /// </summary>
    public static string[] Allowed(CartFacts cart, OfferCaps caps)
    {
        var below = cart.Threshold is not null && cart.Remaining is > 0;
        return CartAction.All.Where(a => a switch
        {
            CartAction.Nudge => below,
            CartAction.NudgeUpsell => below && cart.UpsellPrice is not null,
            CartAction.Offer => OfferRefusal(cart, caps) is null,
            _ => true,
        }).ToArray();
    }

    public static CartPolicyDecision Decide(CartFacts cart, double intent, OfferCaps caps, ActionEffects effects)
    {
        ArgumentNullException.ThrowIfNull(cart);
        ArgumentNullException.ThrowIfNull(caps);
        ArgumentNullException.ThrowIfNull(effects);
        if (!double.IsFinite(intent) || intent is < 0 or > 1) throw new ArgumentOutOfRangeException(nameof(intent), intent, "intent must be a probability");
        var reasons = new List<string>();
        var value = (double)cart.WithoutTax(cart.Value);
        var margin = cart.Cost is { } c ? value - (double)c : value * AssumedMarginShare;
        double Lift(string a) => effects.Lift.TryGetValue(a, out var l) ? l : 0;
        var expected = new Dictionary<string, double> { [CartAction.Nothing] = 0 };
        var allowed = Allowed(cart, caps);
        if (cart.Threshold is null) reasons.Add("no free-shipping threshold set: no bar or threshold upsell");
        else if (!allowed.Contains(CartAction.Nudge)) reasons.Add("the cart already qualifies for free shipping");
        else
        {
            expected[CartAction.Nudge] = intent * Lift(CartAction.Nudge) * margin;
            if (allowed.Contains(CartAction.NudgeUpsell) && cart.UpsellPrice is { } up)
            {
                var upMargin = cart.UpsellCost is { } uc ? (double)(cart.WithoutTax(up) - uc) : (double)cart.WithoutTax(up) * AssumedMarginShare;
                var p = Math.Min(1, intent * (1 + Lift(CartAction.NudgeUpsell)));
                expected[CartAction.NudgeUpsell] = p * margin - intent * margin + p * ActionEffects.UpsellTakeRate * upMargin;
            }
            else reasons.Add("no recommended product takes the cart over the threshold");
        }

        var discount = 0m;
        if (!allowed.Contains(CartAction.Offer)) reasons.Add("offer not allowed: " + OfferRefusal(cart, caps));
        else
        {
            discount = Math.Round(cart.Value * caps.Percent / 100, 2);
            var lift = effects.IsMeasured(CartAction.Offer) ? Lift(CartAction.Offer) : Lift(CartAction.Offer) * (1 - intent);
            var p = Math.Min(1, intent * (1 + lift));
            expected[CartAction.Offer] = p * (margin - (double)cart.WithoutTax(discount)) - intent * margin;
        }

        var best = expected.OrderByDescending(kv => kv.Value).ThenBy(kv => Array.IndexOf(CartAction.All, kv.Key)).First();
        var action = best.Value > 0 ? best.Key : CartAction.Nothing;
        string Money(double v) => v.ToString("0.00", CultureInfo.InvariantCulture);
        reasons.Insert(0, string.Create(CultureInfo.InvariantCulture,
            $"{Words(action)}: expected extra margin {Money(expected[action])} at a {intent:P0} chance of ordering ({effects.Source})"));
        foreach (var (a, v) in expected.Where(kv => kv.Key != action && kv.Key != CartAction.Nothing))
            reasons.Add($"{Words(a)} would add {Money(v)}");
        if (cart.TaxShare > 0)
            reasons.Add(string.Create(CultureInfo.InvariantCulture,
                $"prices include tax: margins are counted without the {cart.TaxShare:P1} of them that is tax (the store's recent orders)"));
        return new CartPolicyDecision(action, expected, reasons, action == CartAction.Offer ? discount : 0);
    }

    /// <summary>Why the offer may not be shown on this cart, or null when every cap holds.</summary>
    public static string? OfferRefusal(CartFacts cart, OfferCaps caps)
    {
        if (!caps.Enabled) return "offers are turned off";
        if (caps.CartHadCode) return "this cart had its code already (used or expired), and a cart gets one";
        if (!caps.HoldsCode && caps.AddressCap > 0 && caps.AddressCodesToday >= caps.AddressCap)
            return $"the shopper's address was handed {caps.AddressCodesToday} code{(caps.AddressCodesToday == 1 ? "" : "s")} today, and one address is given at most {caps.AddressCap} a day";
        // Why: the offer's codes combine with no other order or product discount (DiscountPool), so on a cart discounted
        // already the code would not apply, or would take the place of a larger discount, and the margin floor, checked at
        // catalog prices, would not hold on top of it. Until 6 Dec 2026 such carts were offered a code too.
        if (cart.Paid < 1 && !caps.HoldsCode) return "the cart has a discount of its own, which the offer's code would not combine with";
        if (caps.Percent > caps.MaxPercent)
            return string.Create(CultureInfo.InvariantCulture, $"the {caps.Percent:0.###} % offer is above the {caps.MaxPercent:0.###} % cap");
        if (cart.Value <= 0) return "the cart is empty";
        if (cart.Cost is not { } cost) return "a product's cost is unknown, so the margin floor cannot be checked";
        if (cart.TaxRateUnknown) return "the store's prices include tax and no order has shown how much yet, so the margin floor cannot be checked";
        var after = cart.WithoutTax(cart.Value * (1 - caps.Percent / 100));
        var marginAfter = after <= 0 ? -1 : (after - cost) / after * 100;
        if (marginAfter < caps.MarginFloorPercent)
            return string.Create(CultureInfo.InvariantCulture, $"margin after the discount would be {marginAfter:0.#} %, below the {caps.MarginFloorPercent} % floor")
                + (cart.TaxShare > 0 ? " (on prices without their tax)" : "");
        var discount = Math.Round(cart.Value * caps.Percent / 100, 2);
        // Why: the shopper would lose free shipping by applying the code, and see shipping come back at checkout; until 8 Dec
        // 2026 a cart of 105 over a threshold of 100 was offered 10 % (94.50), and nothing said so.
        if (!caps.HoldsCode && cart.Threshold is { } threshold && cart.Paying >= threshold && cart.Paying - discount < threshold)
            return string.Create(CultureInfo.InvariantCulture, $"the discount would take the cart under the {threshold:0.00} free-shipping threshold it reached");
        if (caps.SpentToday + discount > caps.DailyBudget)
            return string.Create(CultureInfo.InvariantCulture, $"today's budget would be exceeded ({caps.SpentToday:0.00} handed out + {discount:0.00} > {caps.DailyBudget:0.00})");
        if (!caps.CodeAvailable) return "no discount code is ready yet";
        return null;
    }

    public static string Words(string action) => action switch
    {
        CartAction.Nudge => "show the free-shipping bar",
        CartAction.NudgeUpsell => "show the bar and a product that reaches free shipping",
        CartAction.Offer => "show a discount offer",
        _ => "show nothing",
    };
}
