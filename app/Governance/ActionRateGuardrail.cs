using System.Globalization;
using Microsoft.Extensions.Options;
using Npgsql;
using PluginApp.Data;
using PluginApp.Training;

namespace PluginApp.Governance;

/// <summary>
/// The canary guardrail of a kind whose decisions start something that costs the merchant at once: order risk flags an
/// order for a reviewer, purchase intent hands a cart a discount, churn puts a customer into a win-back segment. The share
/// of the canary's units that got the costly action is compared with the share of the other units of the same window; the
/// canary breaks it when its share is more than Governance:CanaryActionRateCeiling times theirs, read once both have
/// Governance:CanaryMinDecisions units. Why this and not the outcome: chargebacks, orders and returning customers arrive
/// days or weeks after a canary ends, while a version that floods the review queue, the discount budget or the win-back
/// emails hurts the day it serves.
/// </summary>
/// <param name="Query">Rows of (bool: the canary's, bigint: units, bigint: units given the action); $1 the shop, $2 the canary's start, $3 its version as text.</param>
/// <param name="Units">What is counted, plural ("orders").</param>
/// <param name="Acted">What the action did to them, after "…" ("flagged for review").</param>
/// <param name="Harm">What would happen if the canary served everyone ("the review queue would fill").</param>
/// <param name="WithoutModel">What answers the others when no version is active ("the rule prior").</param>
/// <param name="State">The units are a state (every customer holds the version that last scored her), so the canary's do not
/// grow as it runs: too few now stay too few, and the guardrail reads as unreadable rather than not read yet.</param>
public sealed record ActionRateGuardrail(string Query, string Units, string Acted, string Harm, string WithoutModel, bool State = false)
{
    public async Task<GuardrailReading?> ReadAsync(IServiceProvider services, ReleaseWindow w, CancellationToken ct)
    {
        var db = services.GetRequiredService<NpgsqlDataSource>();
        var o = services.GetRequiredService<IOptions<GovernanceOptions>>().Value;
        await using var cmd = db.CreateCommand(Query);
        foreach (var p in new object[] { w.ShopId, w.From, w.Candidate.ToString(CultureInfo.InvariantCulture) }) cmd.Parameters.Add(Sql.Param(p));
        long cn = 0, ca = 0, an = 0, aa = 0;
        await using (var r = await cmd.ExecuteReaderAsync(ct))
            while (await r.ReadAsync(ct))
                if (r.GetBoolean(0)) (cn, ca) = (cn + r.GetInt64(1), ca + r.GetInt64(2)); else (an, aa) = (an + r.GetInt64(1), aa + r.GetInt64(2));
        // Why a state's reading is unreadable, not "not yet": a store of 300 customers gives a 10 % canary 30, and until 7 Dec
        // 2026 it waited three times its decisions for 50 that could never come (a hundred daily runs of churn, its trainings
        // held all that time).
        if (cn < o.CanaryMinDecisions || an < o.CanaryMinDecisions)
            return State
                ? new GuardrailReading(false, Inv($"share {Acted} cannot be read in a store this size: {cn:N0} and {an:N0} {Units} of {o.CanaryMinDecisions:N0} needed, which its canary's share does not grow to"),
                    Read: false, Readable: false)
                : new GuardrailReading(false, Inv($"share {Acted} not read yet: {cn:N0} and {an:N0} {Units} of {o.CanaryMinDecisions:N0} needed"), Read: false);
        var breached = Breached(ca, cn, aa, an, o.CanaryActionRateCeiling);
        var verdict = breached
            ? Inv($"more than the {o.CanaryActionRateCeiling:0.#} times as many the guardrail allows: {Harm}")
            : Inv($"within the guardrail ({o.CanaryActionRateCeiling:0.#} times as many)");
        var others = w.Active?.ToString(CultureInfo.InvariantCulture) is { } v ? $"version {v}" : WithoutModel;
        return new GuardrailReading(breached,
            Inv($"{(double)ca / cn:P1} of its {Units} {Acted} ({ca:N0} of {cn:N0}) against {(double)aa / an:P1} of the others ({aa:N0} of {an:N0}, {others}), {verdict}"));
    }

    /// <summary>
    /// Whether the canary's <paramref name="ca"/> actions of <paramref name="cn"/> units are more than <paramref name="ceiling"/>
    /// times what the others' rate (<paramref name="aa"/> of <paramref name="an"/>) gives for as many units, that expectation
    /// never below one unit: a canary that acts once where the others acted on none is not stopped. Until 5 Dec 2026 the
    /// floor was put on the others' count before scaling it to the canary's share, so at a 10 % canary one flagged order
    /// against none of 450 others (an allowance of 0.2) rolled it back.
    /// </summary>
    public static bool Breached(long ca, long cn, long aa, long an, double ceiling) =>
        ca > ceiling * Math.Max((double)aa * cn / an, 1);

    private static string Inv(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}
