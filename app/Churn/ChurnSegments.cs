using PluginApp.Admin.Shell;

namespace PluginApp.Churn;

/// <summary>
/// A customer's segment from their churn probability (no order within the store's horizon) and spend so far:
/// active below <see cref="ChurnOptions.AtRisk"/>, at risk, lapsing from <see cref="ChurnOptions.Lapsing"/>, lost from
/// <see cref="ChurnOptions.Lost"/>. At risk and lapsing customers among the store's top <see cref="ChurnOptions.HighValueShare"/>
/// by spend so far get the high-value variant: those are the ones a win-back campaign should reach first.
/// </summary>
public static class ChurnSegments
{
    public const string Active = "active", AtRisk = "at-risk", Lapsing = "lapsing", Lost = "lost",
        HighValueAtRisk = "high-value-at-risk", HighValueLapsing = "high-value-lapsing";

    /// <summary>Every segment, in the order the admin lists them.</summary>
    public static readonly string[] All = [HighValueAtRisk, HighValueLapsing, AtRisk, Lapsing, Active, Lost];

    /// <summary>What each segment means, in the merchant's words.</summary>
    public static string Describe(string segment, ChurnOptions o) => segment switch
    {
        Active => $"likely to order again: churn probability below {Format.Percent(o.AtRisk, 0)}",
        AtRisk => $"churn probability {Format.Percent(o.AtRisk, 0)} to {Format.Percent(o.Lapsing, 0)}",
        Lapsing => $"churn probability {Format.Percent(o.Lapsing, 0)} to {Format.Percent(o.Lost, 0)}",
        Lost => $"churn probability {Format.Percent(o.Lost, 0)} or more",
        HighValueAtRisk => $"at risk, and among your top {Format.Percent(o.HighValueShare, 0)} customers by spend",
        HighValueLapsing => $"lapsing, and among your top {Format.Percent(o.HighValueShare, 0)} customers by spend",
        _ => segment,
    };

    /// <summary>The base segment a high-value variant belongs to (for sizes over time).</summary>
    public static string Base(string segment) => segment switch { HighValueAtRisk => AtRisk, HighValueLapsing => Lapsing, _ => segment };

    /// <summary>Whether the segment's predicted value counts as value at risk.</summary>
    public static bool AtStake(string segment) => Base(segment) is AtRisk or Lapsing;

    public static string Of(double churnProbability, bool highValue, ChurnOptions o)
    {
        if (churnProbability >= o.Lost) return Lost;
        if (churnProbability >= o.Lapsing) return highValue ? HighValueLapsing : Lapsing;
        if (churnProbability >= o.AtRisk) return highValue ? HighValueAtRisk : AtRisk;
        return Active;
    }

    /// <summary>The spend from which a customer is high value: the top share of the store's customers (at least one customer).</summary>
    public static double HighValueFrom(IReadOnlyList<double> spends, double share)
    {
        if (spends.Count == 0) return double.PositiveInfinity;
        var sorted = spends.OrderByDescending(s => s).ToArray();
        var n = Math.Max(1, (int)Math.Floor(sorted.Length * share));
        return sorted[n - 1];
    }
}
