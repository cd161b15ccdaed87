namespace PluginApp.Recommendations;

/// <summary>
/// A feature's say in whether a shopper gets upsells at all (order risk: not while their HIGH order waits for review).
/// Serving asks every registered guard before it ranks anything; the first refusal answers with no items and the guard's
/// path name, so the decision log shows why.
/// </summary>
public interface IServingGuard
{
    /// <returns>A path name (e.g. "risky_session") when this shopper gets no upsells; null to let serving go on.</returns>
    ValueTask<string?> RefuseAsync(long shopId, long? customerId, string? clientIp, CancellationToken ct);
}
