using System.Globalization;
using System.Text.Json;

namespace PluginApp.Training;

/// <summary>
/// Whether a version may replace the serving one, on their held-out figures: the one comparison the registry (a new model,
/// a merchant's promotion) and the pages that offer a promotion make.
/// <para>
/// Each version was measured on the data held out when it was trained, so two versions' figures come from different
/// windows: a holiday season or a quiet month moves every model's ROC-AUC or NDCG more than one version differs from the
/// next. Where the kind measures a baseline in the same run (<see cref="ModelKind.BaselineMetric"/>: recency, the rule
/// prior, cart value, bestsellers), the gate compares each version's margin over its own window's baseline, which the
/// window's difficulty moves alike for both. Until 4 Dec 2026 it compared the raw figures: a better model trained in a
/// harder month stayed a candidate, and a worse one from an easier month replaced a good one. Versions without the
/// baseline's figure are compared raw, as before.
/// </para>
/// </summary>
public static class PromotionGate
{
    private static bool Has(JsonElement metrics, string key) =>
        metrics.ValueKind == JsonValueKind.Object && metrics.TryGetProperty(key, out var v) && v.ValueKind != JsonValueKind.Null;

    /// <summary>The figure under <paramref name="name"/>, or null when the metrics hold none (absent, null, or not a finite number).</summary>
    public static double? Metric(JsonElement metrics, string? name) =>
        name is not null && metrics.ValueKind == JsonValueKind.Object && metrics.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number
        && v.TryGetDouble(out var d) && double.IsFinite(d) ? d : null;

    /// <summary>The version's figure the kind is judged by: its promotion metric, or for a version measured before it was stored, <see cref="ModelKind.PromotionMetricBefore"/>.</summary>
    public static double? Figure(JsonElement metrics, ModelKind kind) => Metric(metrics, kind.PromotionMetric) ?? Metric(metrics, kind.PromotionMetricBefore);

    /// <summary>
    /// Why the version does worse than the baseline of its own run, for a kind that gates on it (order risk: the rule prior,
    /// <see cref="ModelKind.BaselineGate"/>); null when it does not, or the kind does not gate on it. Checked for a new model
    /// and for a merchant's promotion alike: until 5 Dec 2026 a promotion skipped it, and a first risk model worse than the
    /// rule prior could be made to score orders through the API.
    /// </summary>
    public static string? BelowBaseline(ModelKind kind, JsonElement metrics)
    {
        if (!kind.BaselineGate || Metric(metrics, kind.BaselineMetric) is not { } baseline || Figure(metrics, kind) is not { } value) return null;
        if (value >= baseline - kind.BaselineTolerance) return null;
        return string.Create(CultureInfo.InvariantCulture, $"held-out {kind.MetricName} {value:F4} is below the baseline's {baseline:F4} ({kind.BaselineName})")
               + (kind.BaselineTolerance > 0 ? string.Create(CultureInfo.InvariantCulture, $" by more than {kind.BaselineTolerance:0.###}") : "");
    }

    /// <summary>
    /// Why the serving version's held-out figure cannot be set against the candidate's (the kind's measure changed since it
    /// was trained, <see cref="ModelKind.ComparableSince"/>), or null when it can. The gate lets such a candidate through, and
    /// a staged release estimates no effect for it.
    /// </summary>
    public static string? NotComparable(ModelKind kind, JsonElement candidate, JsonElement serving) =>
        kind.ComparableSince is var (key, why) && Has(candidate, key) != Has(serving, key) ? why : null;

    /// <summary>Whether <paramref name="candidate"/>'s figures are not worse than the serving version's (none: it passes), and why in words.</summary>
    public static (bool Passes, string Reason) Compare(ModelKind kind, JsonElement candidate, JsonElement? active)
    {
        // Reasons name the figure as the field does ("NDCG@10", "PR-AUC"), not by its key (until 8 Dec 2026 "ServedNdcgAt10").
        var metric = kind.MetricName;
        // Why the first model before the figure: a store too small to hold anything out still gets its model (the
        // recommender's unmeasured run stores no figure, 6 Dec 2026); it is what serves instead of nothing.
        if (active is not { } serving) return (true, Figure(candidate, kind) is null ? $"first model (no held-out {metric} yet)" : "first model");
        if (NotComparable(kind, candidate, serving) is { } why)
            return (true, $"{(Has(candidate, kind.ComparableSince!.Value.Key) ? "the active model's" : "its")} held-out {metric} is not comparable: {why}");
        if (Figure(candidate, kind) is not { } c)
            // Neither measured (a store still too small to hold anything out): the newer data serves, else a store that stays
            // that small would keep its first model for good.
            return Figure(serving, kind) is null ? (true, $"neither it nor the active model has a held-out {metric}; the newer data serves")
                : (false, $"it has no held-out {metric}");
        if (Figure(serving, kind) is not { } a) return (true, $"the active model has no held-out {metric} to compare with");
        string F(double v) => v.ToString("F4", CultureInfo.InvariantCulture);
        string Signed(double v) => v.ToString("+0.0000;-0.0000;0.0000", CultureInfo.InvariantCulture);
        if (Metric(candidate, kind.BaselineMetric) is { } cb && Metric(serving, kind.BaselineMetric) is { } ab)
        {
            var (cl, al) = (c - cb, a - ab);
            var passes = cl >= al;
            return (passes, $"held-out {metric} {F(c)} is {Signed(cl)} against {kind.BaselineName} on its own held-out data, " +
                (passes ? "not worse than" : "worse than") + $" the active model's {F(a)}, {Signed(al)} against it on its own");
        }
        return c >= a ? (true, $"held-out {metric} {F(c)} is not worse than the active model's {F(a)}")
            : (false, $"held-out {metric} {F(c)} is worse than the active model's {F(a)}");
    }
}
