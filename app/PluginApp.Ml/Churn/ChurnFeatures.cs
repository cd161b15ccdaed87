using System.Globalization;
using PluginApp.Ml.Tabular;

namespace PluginApp.Ml.Churn;

/// <summary>
/// THE feature builder of the churn model: training, held-out evaluation and scoring all call <see cref="Build"/>, so
/// they cannot drift apart. It reads only orders strictly before the cutoff (tested: adding orders at or after it changes
/// nothing) and the BG/NBD model handed in, which the callers fit on history before the same cutoff. Descriptions are in
/// merchant words; <see cref="Reason"/> turns a feature of a row into a sentence.
/// </summary>
public static class ChurnFeatures
{
    /// <summary>Days counted for <c>orders_last_90_days</c>.</summary>
    public const int RecentDays = 90;

    /// <summary>The schema (all numeric; missing = not defined for this customer, e.g. a gap with one order; the
    /// <see cref="LogScaled"/> ones hold ln(1 + value)).</summary>
    public static TabularSchema Schema { get; } = new(
        TabularFeature.Numeric("days_since_last_order", "days since the last order"),
        TabularFeature.Numeric("orders", "orders placed"),
        TabularFeature.Numeric("total_spend", "total spent"),
        TabularFeature.Numeric("average_order_value", "average order value"),
        TabularFeature.Numeric("tenure_days", "days since the first order"),
        TabularFeature.Numeric("mean_gap_days", "usual number of days between orders"),
        TabularFeature.Numeric("gap_cv", "how irregular the time between orders is (0 = like clockwork)"),
        TabularFeature.Numeric("overdue_ratio", "days since the last order divided by the usual gap between orders"),
        TabularFeature.Numeric("last_gap_ratio", "the last gap between orders divided by the usual gap"),
        TabularFeature.Numeric("spend_trend", "value of the last order divided by the average of the earlier ones"),
        TabularFeature.Numeric("orders_last_90_days", "orders in the last 90 days"),
        TabularFeature.Numeric("refund_share", "share of spend refunded"),
        TabularFeature.Numeric("refunded_order_share", "share of orders refunded or cancelled"),
        TabularFeature.Numeric("discount_order_share", "share of orders with a discount"),
        TabularFeature.Numeric("categories", "distinct product categories bought"),
        TabularFeature.Numeric("bgnbd_p_no_order", "chance of no order in the horizon by the purchase-pattern model"),
        TabularFeature.Numeric("bgnbd_expected_orders", "orders expected in the horizon by the purchase-pattern model"),
        TabularFeature.Numeric("recent_purchase_days", "days with an order, each weighted by how recent it is (one horizon ago counts 37 %)"),
        TabularFeature.Numeric("active_month_share", "share of the 30-day periods since the first order that had an order"),
        TabularFeature.Numeric("orders_per_purchase_day", "orders placed per day with an order"),
        TabularFeature.Numeric("categories_per_order", "product categories in an average order"),
        TabularFeature.Numeric("recent_spend_share", "share of spend in the last 90 days"),
        TabularFeature.Numeric("purchase_rate", "days with an order per 30 days since the first order"));
    // Why these six and not also counts over fixed windows (distinct active months, days with an order in the last 30 or
    // 180 days): counts grow with the length of the history, and the split a model is fitted on always has less history
    // than the one it scores (one horizon less); ratios and the recency-weighted count do not grow with it. Measured on
    // Online Retail (logistic regression, L2 1): on the earlier split (features before 2011-05-24) the counts changed
    // nothing (0.751 with, 0.749 without); on the 2011-09-01 evaluation split they cost 0.009 (0.733 vs 0.742). That second
    // figure was seen before this choice, so it is not a blind one.
    // Why no BG/NBD P(alive): besides being 1 for every one-time buyer, it is near-constant whenever the fit's drop-out
    // vanishes (a -> 0, as on Online Retail at some cutoffs) and spreads out at others; a logistic regression trained on
    // the near-constant version gave a weight so large that the serving fit drove churn probabilities to 100 % (measured
    // on Online Retail, 2026-11-30). It stays an output of ChurnPrediction.

    /// <summary>
    /// Features stored as ln(1 + value): counts, days, money and ratios with heavy right tails. Why: the logistic
    /// regression (the default learner) is linear in its inputs, and on these a log scale is what makes "twice as long
    /// since the last order" one step; trees are unaffected. <see cref="Raw"/> undoes it, and the reasons use raw values.
    /// </summary>
    public static IReadOnlySet<string> LogScaled { get; } = new HashSet<string>(StringComparer.Ordinal)
    {
        "days_since_last_order", "orders", "total_spend", "average_order_value", "tenure_days", "mean_gap_days", "overdue_ratio",
        "last_gap_ratio", "spend_trend", "orders_last_90_days", "categories", "bgnbd_expected_orders",
        "recent_purchase_days", "orders_per_purchase_day", "categories_per_order", "purchase_rate",
    };

    /// <summary>A feature of a row on its natural scale (days, orders, money), null when missing.</summary>
    public static double? Raw(TabularRow row, string feature)
    {
        ArgumentNullException.ThrowIfNull(row);
        if (row[feature] is not { } o) return null;
        var v = Convert.ToDouble(o, CultureInfo.InvariantCulture);
        // Why the rounding: rows hold floats, so exp(ln(1 + 1)) - 1 comes back as 0.99999998, and "1 orders" reads badly;
        // 5 decimals is within a float's precision for the counts, days and money shown.
        return LogScaled.Contains(feature) ? Math.Round(Math.Exp(v) - 1, 5) : v;
    }

    /// <summary>Feature names in schema order.</summary>
    public static IReadOnlyList<string> Names { get; } = Schema.Features.Select(f => f.Name).ToArray();

    /// <summary>The recency-frequency-monetary subset (for the RFM logistic-regression comparison).</summary>
    public static IReadOnlyList<string> Rfm { get; } = ["days_since_last_order", "orders", "total_spend"];

    /// <summary>Features of a customer at <paramref name="cutoff"/>, from orders strictly before it. <paramref name="bgNbd"/>
    /// must be fitted on history before the same cutoff (null: its three features are missing). A customer without a
    /// purchase before the cutoff gets an all-missing row.</summary>
    public static TabularRow Build(CustomerHistory customer, DateTime cutoff, BgNbd? bgNbd, int horizonDays)
    {
        ArgumentNullException.ThrowIfNull(customer);
        var p = CustomerProfile.At(customer, cutoff);
        return p is null ? Schema.Row(new object?[Schema.Count]) : Build(p, bgNbd, horizonDays);
    }

    internal static TabularRow Build(CustomerProfile p, BgNbd? bg, int horizonDays)
    {
        var v = Values(p, bg, horizonDays);
        var features = Schema.Features;
        return Schema.Row(v.Select((x, i) => double.IsNaN(x) ? null
            : (object?)(LogScaled.Contains(features[i].Name) ? Math.Log(1 + Math.Max(0, x)) : x)).ToArray());
    }

    internal static double[] Values(CustomerProfile p, BgNbd? bg, int horizonDays)
    {
        var n = p.Purchases.Length;
        var spend = p.TotalSpend;
        var gaps = p.Gaps();
        double meanGap = double.NaN, cv = double.NaN, lastGapRatio = double.NaN;
        if (gaps.Length > 0)
        {
            meanGap = gaps.Average();
            if (gaps.Length > 1)
            {
                var sd = Math.Sqrt(gaps.Sum(g => (g - meanGap) * (g - meanGap)) / (gaps.Length - 1));
                cv = sd / meanGap;
                var earlier = gaps.Take(gaps.Length - 1).Average();
                lastGapRatio = gaps[^1] / earlier;
            }
        }
        var since = p.DaysSinceLast;
        var spendTrend = n > 1 ? p.Purchases[^1].Amount / p.Purchases.Take(n - 1).Average(o => o.Amount) : double.NaN;
        var recent = p.Purchases.Count(o => (p.Cutoff - o.At).TotalDays <= RecentDays);
        var all = p.Orders;
        // Of spend (the purchases), what was given back: refunds on orders that were not cancelled, as NetSpend counts them.
        // Why not refunds over every order's amount: a cancelled order refunded in full read as spend refunded, so one
        // cancellation beside one kept order of the same value read "50 % of spend refunded" (until 5 Dec 2026).
        var refundShare = spend > 0 ? Math.Min(1, all.Where(o => !o.Cancelled).Sum(o => Math.Max(0, o.Refunded)) / spend) : 0;
        var refundedOrders = RefundedOrderShare(all);
        var discounted = (double)p.Purchases.Count(o => o.Discount > 0) / n;
        var cats = all.Any(o => o.Categories is not null)
            ? all.Where(o => o.IsPurchase && o.Categories is not null).SelectMany(o => o.Categories!).Distinct(StringComparer.Ordinal).Count()
            : double.NaN;
        double pNo = double.NaN, expected = double.NaN;
        if (bg is not null)
        {
            var s = p.Summary();
            pNo = bg.ProbabilityNoOrders(s, horizonDays);
            expected = bg.ExpectedOrders(s, horizonDays);
        }
        var tenure = (p.Cutoff - p.Purchases[0].At).TotalDays;
        var ages = p.Days.Select(d => (p.Cutoff - d.Day).TotalDays).ToArray();
        var decayed = ages.Sum(a => Math.Exp(-a / horizonDays));
        // Why periods counted back from the cutoff and the first purchase DAY's age as the span: the ages are of days
        // (midnight), and a first order late in its day made the day older than the tenure, so the first day fell in a
        // period past the span's last and a customer could read "ordered in 200 % of the months" (until 5 Dec 2026).
        var monthShare = ages.Select(a => (int)(a / 30)).Distinct().Count() / (Math.Floor(ages[0] / 30) + 1);
        var perDay = (double)n / p.Days.Length;
        var catsPerOrder = all.Any(o => o.Categories is not null)
            ? p.Purchases.Average(o => (double)(o.Categories?.Count ?? 0))
            : double.NaN;
        var recentSpend = spend > 0 ? p.Purchases.Where(o => (p.Cutoff - o.At).TotalDays <= RecentDays).Sum(o => o.Amount) / spend : 0;
        var rate = p.Days.Length / Math.Max(30, tenure) * 30;
        return
        [
            since, n, spend, spend / n, tenure, meanGap, cv,
            double.IsNaN(meanGap) ? double.NaN : since / Math.Max(1, meanGap), lastGapRatio, spendTrend, recent,
            refundShare, refundedOrders, discounted, cats, pNo, expected,
            decayed, monthShare, perDay, catsPerOrder, recentSpend, rate,
        ];
    }

    /// <summary>
    /// Share of the orders placed that were refunded or cancelled. An order placed is an entry with an amount or a
    /// cancellation; a refund entry naming an order (<see cref="ChurnOrder.Order"/>) counts toward that order, and one
    /// naming none (a credit note in a transactions file) counts as an order of its own, refunded. Why: the app passes each
    /// refund as an entry beside its order, and counted as entries, one refunded order of two read "33 % of orders refunded",
    /// and a refunded cancelled order twice (until 5 Dec 2026).
    /// </summary>
    internal static double RefundedOrderShare(IReadOnlyList<ChurnOrder> orders)
    {
        var placed = new Dictionary<string, bool>(StringComparer.Ordinal);
        int unnamed = 0, unnamedRefunded = 0;
        foreach (var o in orders)
        {
            if (o.IsRefundOnly && o.Order is not null) continue;
            var refunded = o.Cancelled || o.Refunded > 0;
            if (o.Order is null) { unnamed++; if (refunded) unnamedRefunded++; }
            else placed[o.Order] = refunded || placed.GetValueOrDefault(o.Order);
        }
        foreach (var o in orders)
        {
            if (!(o.IsRefundOnly && o.Order is not null)) continue;
            if (placed.ContainsKey(o.Order)) placed[o.Order] = true;
            else { unnamed++; unnamedRefunded++; } // its order is not among these (it cannot be older than its refund; kept whole)
        }
        var n = placed.Count + unnamed;
        return n == 0 ? 0 : (placed.Values.Count(r => r) + unnamedRefunded) / (double)n;
    }

    /// <summary>A sentence about one feature of a row, e.g. "last order 140 days ago; usually orders every 35 days".</summary>
    public static string Reason(string feature, TabularRow row, int horizonDays)
    {
        ArgumentNullException.ThrowIfNull(row);
        double? Get(string f) => Raw(row, f);
        string I(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
        var v = Get(feature);
        var since = Get("days_since_last_order");
        var gap = Get("mean_gap_days");
        var orders = Get("orders");
        switch (feature)
        {
            case "days_since_last_order" or "overdue_ratio" or "mean_gap_days":
                if (since is null) return "no order yet";
                return gap is { } g
                    ? I($"last order {since:F0} days ago; usually orders every {g:F0} days")
                    : I($"only one order so far, {since:F0} days ago");
        }
        if (v is null) return feature switch
        {
            "categories" => "product categories unknown",
            "gap_cv" or "last_gap_ratio" => "too few orders to see a rhythm",
            "spend_trend" => "only one order so far",
            _ => "not known for this customer",
        };
        var x = v.Value;
        return feature switch
        {
            "orders" => x == 1 ? "one order so far" : I($"{x:F0} orders so far"),
            "total_spend" => I($"spent {x:N0} in total"),
            "average_order_value" => I($"average order {x:N2}"),
            "tenure_days" => I($"first order {x:F0} days ago"),
            "gap_cv" => x < 0.5 ? I($"orders at regular intervals (variation {x:P0})") : I($"orders at irregular intervals (variation {x:P0})"),
            "last_gap_ratio" => I($"the last gap between orders was {x:F1}x the earlier ones"),
            "spend_trend" => I($"last order worth {x:F1}x the earlier average"),
            "orders_last_90_days" => x == 0 ? "no order in the last 90 days" : I($"{x:F0} orders in the last 90 days"),
            "refund_share" => x == 0 ? "nothing refunded" : I($"{x:P0} of spend refunded"),
            "refunded_order_share" => x == 0 ? "no refunded or cancelled order" : I($"{x:P0} of orders refunded or cancelled"),
            "discount_order_share" => x == 0 ? "never used a discount" : I($"{x:P0} of orders used a discount"),
            "categories" => x == 1 ? "bought from one product category" : I($"bought from {x:F0} product categories"),
            "bgnbd_p_no_order" => I($"purchase pattern: {x:P0} chance of no order in the next {horizonDays} days"),
            "bgnbd_expected_orders" => I($"purchase pattern: {x:F1} orders expected in the next {horizonDays} days"),
            "recent_purchase_days" => x < 0.5 ? "little buying lately" : I($"buying lately: {x:F1} recent days with an order (older ones count less)"),
            "active_month_share" => I($"ordered in {x:P0} of the months since the first order"),
            "orders_per_purchase_day" => I($"{x:F1} orders per day with an order"),
            "categories_per_order" => I($"{x:F1} product categories in an average order"),
            "recent_spend_share" => x == 0 ? "nothing spent in the last 90 days" : I($"{x:P0} of spend in the last 90 days"),
            "purchase_rate" => I($"orders on {x:F1} days a month on average"),
            _ => I($"{feature} = {x:G4}"),
        };
    }
}
