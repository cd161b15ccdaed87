namespace PluginApp.CartOffers;

/// <summary>P(this cart becomes an order), with the model version and reasons in words; <see cref="Note"/> says when it is a fallback.</summary>
public sealed record CartIntent(double Probability, int? ModelVersion, IReadOnlyList<string> Reasons, string? Note = null)
{
    /// <summary>The version in shadow or canary that also read this cart, if there is one.</summary>
    public IntentRelease? Release { get; init; }
}

/// <summary>
/// A release version's reading of a cart. In shadow: its probability beside the served one (logged, never acted on). In
/// canary: the cart is in its share, so the served probability is its own, or, when it failed, the active version's.
/// </summary>
public sealed record IntentRelease(int Version, string Stage, double? Probability, string? Failed);

/// <summary>The purchase-intent model as the cart policy reads it.</summary>
public interface IIntentScorer
{
    Task<CartIntent> ScoreAsync(long shopId, string? cartToken, CartFacts cart, long? customerId, CancellationToken ct);

    Task<IntentModelSummary> SummaryAsync(long shopId, CancellationToken ct);
}

/// <summary>The intent model the policy uses for a shop, in words for the Cart offers page.</summary>
public sealed record IntentModelSummary(int? Version, string Text);
