using System.Text.Json;
using PluginApp.Admin.Shell;

namespace PluginApp.Recommendations.Admin;

/// <summary>
/// The candidate comparison stored with a recommender version, in one sentence for the merchant: which candidate serves,
/// its held-out NDCG@10 against the runner-up's and popularity's, and on how many customers.
/// </summary>
public static class CandidateSummary
{
    /// <returns>The sentence, or null for a version trained before candidates were compared.</returns>
    public static string? Describe(JsonElement metrics)
    {
        if (metrics.ValueKind != JsonValueKind.Object || !metrics.TryGetProperty(nameof(HeldOutMetrics.Winner), out var w) || w.GetString() is not { } winner
            || !metrics.TryGetProperty(nameof(HeldOutMetrics.Candidates), out var candidates) || candidates.ValueKind != JsonValueKind.Object)
            return null;
        double? Ndcg(string? name) => name is not null && candidates.TryGetProperty(name, out var c) && c.TryGetProperty(nameof(CandidateMetrics.NdcgAt10), out var n)
            && n.TryGetDouble(out var d) ? d : null;
        var users = metrics.TryGetProperty(nameof(HeldOutMetrics.TestUsers), out var t) && t.TryGetInt32(out var u) ? u : 0;
        var runnerUp = metrics.TryGetProperty(nameof(HeldOutMetrics.RunnerUp), out var r) ? r.GetString() : null;
        var measured = metrics.TryGetProperty(nameof(HeldOutMetrics.WinnerMeasured), out var m) && m.ValueKind == JsonValueKind.True;
        var minimum = metrics.TryGetProperty(nameof(HeldOutMetrics.MinEvalSize), out var mi) && mi.TryGetInt32(out var x) ? x : 0;
        var name = RecommenderCandidates.Describe(winner);
        var customers = $"{Format.Count(users)} held-out customer{(users == 1 ? "" : "s")}";
        if (!measured)
            return users < minimum
                ? $"Candidates: not compared yet, only {customers} (at least {Format.Count(minimum)} needed), so {name} serves by default."
                : $"Candidates: none found a later purchase among its top 10 on {customers}, so {name} serves by default.";
        var sentence = $"Candidates: {name} won with NDCG@10 {Metric(Ndcg(winner))}";
        if (runnerUp is not null) sentence += $" vs {Metric(Ndcg(runnerUp))} for {RecommenderCandidates.Describe(runnerUp)} (runner-up)";
        if (winner != RecommenderCandidates.Popularity && runnerUp != RecommenderCandidates.Popularity)
            sentence += $", {Metric(Ndcg(RecommenderCandidates.Popularity))} for store bestsellers (popularity)";
        return sentence + $", on {customers}.";
    }

    private static string Metric(double? value) => value is { } v ? Format.Metric(v) : "–";
}
