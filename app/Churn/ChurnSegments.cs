using PluginApp.Admin.Shell;

namespace PluginApp.Churn;

/// <summary>
/// The churn probabilities from which a customer is at risk, lapsing and lost. The settings (<see cref="ChurnOptions.AtRisk"/>,
/// <see cref="ChurnOptions.Lapsing"/>, <see cref="ChurnOptions.Lost"/>) hold while the store's own churn rate over its
/// horizon is below the at-risk line. When it is above (a short horizon, where most customers do not order within it), the
/// at-risk line moves up to the store's rate and the other two keep their place in what is left above it: "at risk" then
/// still means more likely than the store's typical customer not to come back, instead of nearly everyone.
/// </summary>
public sealed record ChurnLines(double AtRisk, double Lapsing, double Lost, double? StoreRate, int? HorizonDays)
{
    public static ChurnLines For(ChurnOptions o, double? storeRate, int? horizonDays)
    {
        if (storeRate is not { } r || !(r > o.AtRisk && r < 1)) return new(o.AtRisk, o.Lapsing, o.Lost, storeRate, horizonDays);
        double Moved(double line) => r + (line - o.AtRisk) / (1 - o.AtRisk) * (1 - r);
        return new(r, Moved(o.Lapsing), Moved(o.Lost), r, horizonDays);
    }

    /// <summary>The lines for a churn version: the store's rate is the share of its held-out customers who did not order within the horizon.</summary>
    public static ChurnLines For(ChurnOptions o, System.Text.Json.JsonElement metrics)
    {
        int? Int(string name) => metrics.ValueKind == System.Text.Json.JsonValueKind.Object && metrics.TryGetProperty(name, out var v) && v.TryGetInt32(out var i) ? i : null;
        return For(o, Int("HeldOutCustomers") is { } n and > 0 && Int("HeldOutChurned") is { } c ? (double)c / n : null, Int("HorizonDays"));
    }

    /// <summary>Whether the store's churn rate moved the lines off the settings.</summary>
    public bool Moved => StoreRate is { } r && AtRisk == r;
}

/// <summary>
/// A customer's segment from their churn probability (no order within the store's horizon) and spend so far:
/// active below the at-risk line, at risk, lapsing, lost (<see cref="ChurnLines"/>). At risk and lapsing customers among the
/// store's top <see cref="ChurnOptions.HighValueShare"/> by spend so far get the high-value variant: those are the ones a
/// win-back campaign should reach first.
/// </summary>
public static class ChurnSegments
{
    public const string Active = "active", AtRisk = "at-risk", Lapsing = "lapsing", Lost = "lost",
        HighValueAtRisk = "high-value-at-risk", HighValueLapsing = "high-value-lapsing";

    /// <summary>Every segment, in the order the admin lists them.</summary>
    public static readonly string[] All = [HighValueAtRisk, HighValueLapsing, AtRisk, Lapsing, Active, Lost];

    /// <summary>What each segment means, in the merchant's words.</summary>
    public static string Describe(string segment, ChurnLines lines, ChurnOptions o) => segment switch
    {
        // Why two wordings: above a churn rate of one half, a customer under the moved line may well not order again; they
        // are only less likely not to than the store's typical customer (until 6 Dec 2026 they read "likely to order again").
        Active => lines.Moved
            ? $"less likely than your store's typical customer not to order again: churn probability below {Format.Percent(lines.AtRisk, 0)}, " +
              $"your store's churn rate (the share of its customers who did not order again within {(lines.HorizonDays is { } d ? $"{d} days" : "the model's horizon")}; " +
              $"the at-risk line moves up to it when it is above {Format.Percent(o.AtRisk, 0)})"
            : $"likely to order again: churn probability below {Format.Percent(lines.AtRisk, 0)}",
        AtRisk => $"churn probability {Format.Percent(lines.AtRisk, 0)} to {Format.Percent(lines.Lapsing, 0)}",
        Lapsing => $"churn probability {Format.Percent(lines.Lapsing, 0)} to {Format.Percent(lines.Lost, 0)}",
        Lost => $"churn probability {Format.Percent(lines.Lost, 0)} or more",
        HighValueAtRisk => $"at risk, and among your top {Format.Percent(o.HighValueShare, 0)} customers by spend",
        HighValueLapsing => $"lapsing, and among your top {Format.Percent(o.HighValueShare, 0)} customers by spend",
        _ => segment,
    };

    /// <summary>The base segment a high-value variant belongs to (for sizes over time).</summary>
    public static string Base(string segment) => segment switch { HighValueAtRisk => AtRisk, HighValueLapsing => Lapsing, _ => segment };

    /// <summary>Whether the segment's predicted value counts as value at risk.</summary>
    public static bool AtStake(string segment) => Base(segment) is AtRisk or Lapsing;

    public static string Of(double churnProbability, bool highValue, ChurnLines lines)
    {
        if (churnProbability >= lines.Lost) return Lost;
        if (churnProbability >= lines.Lapsing) return highValue ? HighValueLapsing : Lapsing;
        if (churnProbability >= lines.AtRisk) return highValue ? HighValueAtRisk : AtRisk;
        return Active;
    }

    /// <summary>
    /// The spend from which a customer is high value: the top share of the store's customers (at least one customer), and no
    /// more. Where customers tied on spend straddle the share's edge, the tie is left out, and the line is the least spend
    /// above it (no one when the whole share ties with those outside it). Until 6 Dec 2026 the line was the spend at the edge,
    /// and a store whose customers mostly spent the same (one order of one product) had nearly all of them "high value".
    /// </summary>
    public static double HighValueFrom(IReadOnlyList<double> spends, double share)
    {
        if (spends.Count == 0) return double.PositiveInfinity;
        var sorted = spends.OrderByDescending(s => s).ToArray();
        var n = Math.Max(1, (int)Math.Floor(sorted.Length * share));
        if (n == sorted.Length) return sorted[n - 1];
        var outside = sorted[n]; // the most any customer outside the share spent
        var above = sorted.Take(n).Where(s => s > outside).ToArray();
        return above.Length > 0 ? above.Min() : double.PositiveInfinity;
    }
}
