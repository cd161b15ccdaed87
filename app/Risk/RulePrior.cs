using System.Globalization;
using PluginApp.Shopify;

namespace PluginApp.Risk;

/// <summary>One reason behind a score, in words a merchant reads, with its signed share of the log-odds.</summary>
/// <param name="Code">Stable id (for filters and tests).</param>
/// <param name="Weight">Its contribution to the log-odds: positive raises the risk, negative lowers it.</param>
public sealed record RiskReason(string Code, string Text, double Weight)
{
    /// <summary>Shopify's fact sentiment: what raises the risk is NEGATIVE for the merchant.</summary>
    public string Sentiment => Weight > 0 ? "NEGATIVE" : Weight < 0 ? "POSITIVE" : "NEUTRAL";

    /// <summary>
    /// The weight as stored with the score: three decimals, and never rounded to nothing, so a reason keeps its direction.
    /// Why: until 6 Dec 2026 a model reason's small share (0.0004) was stored as 0, and the review page said it lowered the
    /// risk, the order's top reasons left it out, and a reviewer's decision sent it to Shopify as a neutral fact.
    /// </summary>
    public static double Stored(double weight) =>
        weight == 0 || !double.IsFinite(weight) ? 0 : Math.Sign(weight) * Math.Max(0.001, Math.Round(Math.Abs(weight), 3));
}

/// <summary>A probability of fraud with its reasons, largest first.</summary>
public sealed record RiskAssessment(double Score, IReadOnlyList<RiskReason> Reasons);

/// <summary>
/// The transparent prior every store starts with, before it has fraud labels of its own: a logistic score whose terms are
/// the rules below, each written so a merchant can check it against the order. Weights are log-odds; the intercept puts an
/// order with nothing unusual near 2% (stores see well under 1% fraud, and the prior errs towards review).
/// <list type="table">
/// <item>amount far above the store's usual (z &gt; 2): +0.5 per standard deviation above 2, at most +2.0</item>
/// <item>first order from the customer above the store's 90th percentile: +1.2</item>
/// <item>3 or more orders from one browser address in 24 hours: +0.6 per order beyond 2, at most +2.4</item>
/// <item>2 or more other emails from one browser address in 7 days: +0.8 per other email beyond 1, at most +2.4</item>
/// <item>3 or more orders from one email in 24 hours: +0.5 per order beyond 2, at most +1.5</item>
/// <item>billing and shipping country differ: +0.9</item>
/// <item>a discount code on a first order: +0.3</item>
/// <item>confirmed fraud among earlier orders from the same address (30 days) or email (90 days): +3.0 × the share</item>
/// <item>the card's address check failed (AVS N): +1.0; matched only in part (AVS A, B, P, W, Z): +0.3</item>
/// <item>the card's security code did not match (CVV N): +1.5</item>
/// <item>3 or more orders with the same card in 7 days: +0.5 per order beyond 2, at most +1.5</item>
/// <item>the same card paid under other emails in 30 days: +0.8 per other email, at most +2.4</item>
/// <item>a returning customer (3 or more earlier orders over at least 30 days): −1.2</item>
/// </list>
/// </summary>
public static class RulePrior
{
    public const double Intercept = -3.9;

    public static RiskAssessment Assess(float[] f, string currency)
    {
        double Get(string name) => f[OrderFeatures.Index(name)];
        var reasons = new List<RiskReason>();
        void Add(string code, double weight, string text)
        {
            if (weight != 0) reasons.Add(new RiskReason(code, text, weight));
        }

        var z = Get("amount_z");
        if (z > 2) Add("amount_high", Math.Min(0.5 * (z - 2), 2.0),
            // Why a cap on the figure: where a store's recent totals barely vary (a few orders, one price), z runs into the
            // hundreds, which reads as noise to a reviewer; past 10 the exact figure adds nothing.
            z > 10
                ? Inv($"The total, {Currency.Format(Get("amount"), currency)}, is more than 10 standard deviations above this store's usual order")
                : Inv($"The total, {Currency.Format(Get("amount"), currency)}, is {z:0.0} standard deviations above this store's usual order"));
        if (Get("first_order_high_value") > 0) Add("first_order_high_value", 1.2,
            // Why "found for this buyer": earlier orders are found by the customer account, or a guest's email, and an order
            // with neither (a draft order taken over the phone) has none to find; until 6 Dec 2026 this said "First order from
            // this customer" of an order whose page said nothing matched its buyer.
            Inv($"No earlier order found for this buyer, and larger than 9 in 10 of the store's recent orders ({Currency.Format(Get("amount"), currency)})"));
        var ip1 = Get("ip_orders_1d");
        if (ip1 >= 2) Add("ip_velocity", Math.Min(0.6 * (ip1 + 1 - 2), 2.4), $"{Orders(ip1)} from the same browser address in 24 hours");
        var emails = Get("ip_emails_7d");
        if (emails >= 2) Add("ip_many_emails", Math.Min(0.8 * (emails - 1), 2.4),
            // The emails are counted among the address's latest orders: when its 7 days hold more, there may be more emails.
            // Why "other": an order without an email (a phone-only guest) has none of its own, and until 5 Dec 2026 the
            // reason added it, saying "3 different email addresses" of two.
            Inv($"{(Get("ip_orders_7d") >= OrderFeatures.WindowCap ? "At least " : "")}{emails:0} other email addresses ordered from the same browser address in 7 days"));
        var em1 = Get("email_orders_1d");
        if (em1 >= 2) Add("email_velocity", Math.Min(0.5 * (em1 + 1 - 2), 1.5), $"{Orders(em1)} from the same email in 24 hours");
        if (Get("country_mismatch") > 0) Add("country_mismatch", 0.9, "The billing country differs from the shipping country");
        var first = Get("customer_orders_before") == 0;
        if (first && Get("has_discount") > 0) Add("first_order_discount", 0.3, "A discount code, and no earlier order found for this buyer");
        var ipShare = Get("ip_fraud_share_30d");
        if (ipShare > 0) Add("ip_fraud_history", 3.0 * ipShare,
            Inv($"{ipShare * 100:0}% of the labelled orders from this browser address in the last 30 days were confirmed fraud"));
        var emShare = Get("email_fraud_share_90d");
        if (emShare > 0) Add("email_fraud_history", 3.0 * emShare,
            Inv($"{emShare * 100:0}% of this email's labelled orders in the last 90 days were confirmed fraud"));
        if (Get("avs_no_match") > 0) Add("avs_no_match", 1.0, "The card's address check failed: the billing address does not match the card");
        if (Get("avs_partial") > 0) Add("avs_partial", 0.3, "The card's address check matched only the street or only the postcode");
        if (Get("cvv_no_match") > 0) Add("cvv_no_match", 1.5, "The card's security code did not match");
        var card7 = Get("card_orders_7d");
        if (card7 >= 2) Add("card_velocity", Math.Min(0.5 * (card7 + 1 - 2), 1.5), $"{Orders(card7)} with the same card in 7 days");
        var cardEmails = Get("card_other_emails_30d");
        if (cardEmails >= 1) Add("card_many_emails", Math.Min(0.8 * cardEmails, 2.4),
            Inv($"The same card paid under {cardEmails:0} other email address{(cardEmails == 1 ? "" : "es")} in 30 days"));
        var before = Get("customer_orders_before");
        if (before >= 3 && Get("customer_age_days") >= 30) Add("returning_customer", -1.2,
            Inv($"Returning customer: {before:0} earlier orders over {Get("customer_age_days"):0} days"));

        var logit = Intercept + reasons.Sum(r => r.Weight);
        return new RiskAssessment(Sigmoid(logit), reasons.OrderByDescending(r => Math.Abs(r.Weight)).ToList());
    }

    public static double Sigmoid(double x) => 1 / (1 + Math.Exp(-x));

    /// <summary>This order and the <paramref name="before"/> earlier ones, in words; a window's count stops at its cap
    /// (<see cref="OrderFeatures.WindowCap"/>), so a count at the cap reads as more.</summary>
    private static string Orders(double before) =>
        before >= OrderFeatures.WindowCap ? Inv($"More than {OrderFeatures.WindowCap} orders") : Inv($"{before + 1:0} orders");

    private static string Inv(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}
