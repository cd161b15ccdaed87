namespace PluginApp.Ml.Churn;

/// <summary>
/// A customer's purchases before a cutoff, as BG/NBD and Gamma-Gamma read them. <b>What is counted: distinct purchase
/// days</b> (calendar days of the times passed with at least one purchase; the app passes the store's clock, so they are
/// the store's days), not orders: two orders on one day are one transaction. Why:
/// split or follow-up orders on the same day are one buying decision, and the repeat-purchase models assume transactions
/// that are separate events; counting days is also what makes the summary stable when a store splits carts into
/// several orders (model-notes: on Online Retail, counting invoices instead gives a different fit).
/// </summary>
/// <param name="Frequency">x: purchase days after the first one (repeat transactions).</param>
/// <param name="Recency">t_x: time from the first purchase day to the last one, in units.</param>
/// <param name="Age">T: time from the start of the first purchase day to the cutoff, in units (&gt; 0 for any customer
/// with a purchase before the cutoff).</param>
/// <param name="AverageSpend">Mean spend of the repeat purchase days (the first day excluded, as in Fader, Hardie and Lee
/// 2005); 0 when there are none.</param>
public readonly record struct RepeatSummary(double Frequency, double Recency, double Age, double AverageSpend)
{
    /// <summary>Whether the customer had a purchase before the cutoff.</summary>
    public bool Exists => Age > 0;

    /// <summary>Summary of the purchases strictly before <paramref name="cutoff"/>; <paramref name="unitDays"/> is the
    /// time unit (1 = days, 7 = weeks). A customer without a purchase before the cutoff gives Age 0 (<see cref="Exists"/> false).</summary>
    public static RepeatSummary From(CustomerHistory history, DateTime cutoff, double unitDays = 1)
    {
        ArgumentNullException.ThrowIfNull(history);
        var p = CustomerProfile.At(history, cutoff);
        return p is null ? default : p.Summary(unitDays);
    }

    internal static RepeatSummary FromDays(IReadOnlyList<(DateTime Day, double Spend)> days, DateTime cutoff, double unitDays)
    {
        if (days.Count == 0) return default;
        var first = days[0].Day;
        var spend = 0.0;
        for (var i = 1; i < days.Count; i++) spend += days[i].Spend;
        return new RepeatSummary(days.Count - 1, (days[^1].Day - first).TotalDays / unitDays, (cutoff - first).TotalDays / unitDays,
            days.Count > 1 ? spend / (days.Count - 1) : 0);
    }
}

/// <summary>A customer's orders before a cutoff, sorted, with their purchase days: computed once, read by the summary,
/// the features and the reasons.</summary>
internal sealed class CustomerProfile
{
    private CustomerProfile(DateTime cutoff, ChurnOrder[] orders, ChurnOrder[] purchases, (DateTime Day, double Spend)[] days)
    {
        Cutoff = cutoff;
        Orders = orders;
        Purchases = purchases;
        Days = days;
    }

    public DateTime Cutoff { get; }

    /// <summary>Every order before the cutoff, purchases or not, by time, as known at the cutoff (<see cref="ChurnOrder.AsOf"/>).</summary>
    public ChurnOrder[] Orders { get; }

    /// <summary>Purchases before the cutoff, by time.</summary>
    public ChurnOrder[] Purchases { get; }

    /// <summary>Distinct purchase days with the day's spend, by day.</summary>
    public (DateTime Day, double Spend)[] Days { get; }

    /// <summary>Null when the customer has no purchase before the cutoff.</summary>
    public static CustomerProfile? At(CustomerHistory c, DateTime cutoff)
    {
        if (c.Orders is null) throw new ArgumentException($"Customer '{c.CustomerId}' has null Orders.", nameof(c));
        var orders = c.Orders.Where(o => o.At < cutoff).OrderBy(o => o.At).Select(o => o.AsOf(cutoff)).ToArray();
        foreach (var o in orders)
            if (!double.IsFinite(o.Amount) || !double.IsFinite(o.Discount) || !double.IsFinite(o.Refunded))
                throw new ArgumentException($"Customer '{c.CustomerId}' has an order at {o.At:O} with a non-finite amount, discount or refund.", nameof(c));
        var purchases = orders.Where(o => o.IsPurchase).ToArray();
        if (purchases.Length == 0) return null;
        var days = purchases.GroupBy(o => o.At.Date).Select(g => (g.Key, g.Sum(o => o.Amount))).ToArray();
        return new CustomerProfile(cutoff, orders, purchases, days);
    }

    public RepeatSummary Summary(double unitDays = 1) => RepeatSummary.FromDays(Days, Cutoff, unitDays);

    public double DaysSinceLast => (Cutoff - Purchases[^1].At).TotalDays;

    public double TotalSpend => Purchases.Sum(o => o.Amount);

    /// <summary>
    /// What the customer spent so far and kept: their purchases less what was refunded on them before the cutoff (refunds on
    /// cancelled orders, whose amount is no purchase, are not taken off again), never below zero. Why beside the gross total:
    /// the model's features read the total and the refunds apart, while the merchant's high-value line and value at risk
    /// must not count money that was given back.
    /// </summary>
    public double NetSpend => Math.Max(0, TotalSpend - Orders.Where(o => !o.Cancelled).Sum(o => Math.Max(0, o.Refunded)));

    /// <summary>Gaps in days between consecutive purchase days.</summary>
    public double[] Gaps()
    {
        var g = new double[Math.Max(0, Days.Length - 1)];
        for (var i = 1; i < Days.Length; i++) g[i - 1] = (Days[i].Day - Days[i - 1].Day).TotalDays;
        return g;
    }

    /// <summary>Purchase days in [<see cref="Cutoff"/>, <paramref name="end"/>) that are not already among <see cref="Days"/>
    /// (a day the cutoff falls in counts once): what BG/NBD's expected orders over that window forecast.</summary>
    public int NewPurchaseDays(CustomerHistory c, DateTime end)
    {
        var seen = Days.Select(d => d.Day).ToHashSet();
        var count = 0;
        foreach (var o in c.Orders)
            if (o.IsPurchase && o.At >= Cutoff && o.At < end && seen.Add(o.At.Date)) count++;
        return count;
    }

    /// <summary>Whether the customer has a purchase in [from, to) (looks at the full history, not the profile).</summary>
    public static bool PurchasedIn(CustomerHistory c, DateTime from, DateTime to) =>
        c.Orders.Any(o => o.IsPurchase && o.At >= from && o.At < to);

    public static DateTime? FirstPurchase(CustomerHistory c)
    {
        DateTime? first = null;
        foreach (var o in c.Orders)
            if (o.IsPurchase && (first is null || o.At < first)) first = o.At;
        return first;
    }
}
