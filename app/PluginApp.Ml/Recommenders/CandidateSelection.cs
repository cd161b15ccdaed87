namespace PluginApp.Ml.Recommenders;

/// <summary>One recommender candidate's quality on the held-out split: mean NDCG@10 and Recall@10 over the same customers.</summary>
public sealed record CandidateScore(string Name, double NdcgAt10, double RecallAt10);

/// <summary>Which candidate serves, and why, in a form the registry can store and the admin can word.</summary>
/// <param name="Winner">The candidate that serves.</param>
/// <param name="Measured">Whether the winner was chosen by the metric (false: the evaluation was too small, or nothing scored, and the default serves).</param>
/// <param name="RunnerUp">The best other candidate by NDCG@10, or null when there is only one.</param>
/// <param name="MarginOverRunnerUp">Winner's NDCG@10 minus the runner-up's (0 without a runner-up; may be negative when the default serves unmeasured).</param>
/// <param name="MarginOverBaseline">Winner's NDCG@10 minus the baseline's (popularity's), 0 when the baseline won.</param>
/// <param name="Reason">One sentence saying how the winner was chosen.</param>
public sealed record CandidateChoice(CandidateScore Winner, bool Measured, CandidateScore? RunnerUp, double MarginOverRunnerUp, double MarginOverBaseline,
    int EvalSize, string Reason);

/// <summary>Options of <see cref="CandidateSelection"/>. Every default lives here.</summary>
public sealed record CandidateSelectionOptions
{
    /// <summary>Held-out customers needed before the metric picks the winner. Why 100: NDCG@10 averaged over fewer
    /// customers moves by more than the usual gap between candidates when a handful of them change.</summary>
    public int MinEvalSize { get; init; } = 100;

    /// <summary>The candidate that serves when the evaluation is too small to choose, and that wins ties.</summary>
    public required string Default { get; init; }

    /// <summary>The baseline every margin is also stated against (popularity).</summary>
    public required string Baseline { get; init; }

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the first bad option.</summary>
    public void Validate()
    {
        Common.Check.Positive(MinEvalSize, nameof(MinEvalSize));
        if (string.IsNullOrWhiteSpace(Default)) throw new ArgumentOutOfRangeException(nameof(Default), Default, "Name the default candidate.");
        if (string.IsNullOrWhiteSpace(Baseline)) throw new ArgumentOutOfRangeException(nameof(Baseline), Baseline, "Name the baseline candidate.");
    }
}

/// <summary>
/// Picks the recommender a store serves from candidates measured on the same held-out customers: the highest NDCG@10
/// (ties to the default, then to the candidate listed first), once at least <see cref="CandidateSelectionOptions.MinEvalSize"/>
/// customers were evaluated; below that, or when no candidate found anything, the default serves and the reason says so.
/// Why per store: tuned simple models (popularity on sparse data, item neighbours) often match or beat matrix factorization
/// (Dacrema et al., RecSys 2019; Rendle et al. 2021), so which one wins is measured, not assumed.
/// </summary>
public static class CandidateSelection
{
    public static CandidateChoice Choose(IReadOnlyList<CandidateScore> candidates, int evalSize, CandidateSelectionOptions options)
    {
        ArgumentNullException.ThrowIfNull(candidates);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        if (candidates.Count == 0) throw new ArgumentException("No candidate to choose from.", nameof(candidates));
        if (candidates.Select(c => c.Name).Distinct(StringComparer.Ordinal).Count() != candidates.Count)
            throw new ArgumentException("Candidate names must be unique.", nameof(candidates));
        var byName = candidates.ToDictionary(c => c.Name, StringComparer.Ordinal);
        if (!byName.TryGetValue(options.Default, out var fallback))
            throw new ArgumentException($"The default candidate '{options.Default}' is not among the candidates.", nameof(options));
        byName.TryGetValue(options.Baseline, out var baseline);

        // Best first: NDCG@10, then the default, then the order given (a stable sort keeps it).
        var ranked = candidates.OrderByDescending(c => c.NdcgAt10).ThenBy(c => c.Name == options.Default ? 0 : 1).ToList();
        var best = ranked[0];
        CandidateScore winner;
        bool measured;
        string reason;
        if (evalSize < options.MinEvalSize)
        {
            (winner, measured) = (fallback, false);
            reason = $"only {evalSize} held-out customers (fewer than {options.MinEvalSize}): too few to choose, so the default ({fallback.Name}) serves";
        }
        else if (!(best.NdcgAt10 > 0))
        {
            (winner, measured) = (fallback, false);
            reason = $"no candidate ranked any held-out purchase in its top 10 on {evalSize} customers, so the default ({fallback.Name}) serves";
        }
        else
        {
            (winner, measured) = (best, true);
            reason = FormattableString.Invariant($"highest held-out NDCG@10 ({best.NdcgAt10:F4}) on {evalSize} customers");
        }
        var runnerUp = ranked.FirstOrDefault(c => c.Name != winner.Name);
        return new CandidateChoice(winner, measured, runnerUp,
            runnerUp is null ? 0 : winner.NdcgAt10 - runnerUp.NdcgAt10,
            baseline is null ? 0 : winner.NdcgAt10 - baseline.NdcgAt10,
            evalSize, reason);
    }
}
