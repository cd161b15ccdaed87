using System.Globalization;
using Microsoft.Extensions.Options;
using Npgsql;
using PluginApp.Data;
using PluginApp.Governance;
using PluginApp.Training;

namespace PluginApp.Risk;

/// <summary>
/// Order risk's canary guardrail: the share of orders the canary flags (MEDIUM or HIGH, the ones that wait for a reviewer)
/// against the share the other orders of the same window got. Read once both have Governance:CanaryMinDecisions scored
/// orders; broken when the canary flags more than Governance:CanaryFlagRateCeiling times as many. Why flags and not fraud
/// caught: chargebacks arrive weeks after a canary ends, while a version that floods the review queue hurts at once.
/// </summary>
public static class FlagRateGuardrail
{
    public static async Task<GuardrailReading?> ReadAsync(IServiceProvider services, ReleaseWindow w, CancellationToken ct)
    {
        var db = services.GetRequiredService<NpgsqlDataSource>();
        var o = services.GetRequiredService<IOptions<GovernanceOptions>>().Value;
        await using var cmd = db.CreateCommand("""
            SELECT coalesce(output->>'candidate' = $3 AND NOT output ? 'failed', false) AS canary, count(*), count(*) FILTER (WHERE subject IN ('MEDIUM', 'HIGH'))
            FROM decisions WHERE shop_id = $1 AND kind = 'risk' AND decided_at >= $2 AND (output->>'candidate' IS NULL OR output->>'candidate' = $3)
            GROUP BY 1
            """);
        foreach (var v in new object[] { w.ShopId, w.From, w.Candidate.ToString(CultureInfo.InvariantCulture) }) cmd.Parameters.Add(Sql.Param(v));
        long cn = 0, cf = 0, an = 0, af = 0;
        await using (var r = await cmd.ExecuteReaderAsync(ct))
            while (await r.ReadAsync(ct))
                if (r.GetBoolean(0)) (cn, cf) = (r.GetInt64(1), r.GetInt64(2)); else (an, af) = (an + r.GetInt64(1), af + r.GetInt64(2));
        if (cn < o.CanaryMinDecisions || an < o.CanaryMinDecisions)
            return new GuardrailReading(false, string.Create(CultureInfo.InvariantCulture,
                $"flag rate not read yet: {cn:N0} and {an:N0} scored orders of {o.CanaryMinDecisions:N0} needed"));
        var (canary, others) = ((double)cf / cn, (double)af / an);
        // Why a floor of one order in the comparison: a store whose other orders flagged none would otherwise stop any canary that flags one.
        var breached = cf > o.CanaryFlagRateCeiling * Math.Max(af, 1) * cn / an;
        var verdict = breached
            ? string.Create(CultureInfo.InvariantCulture, $"more than the {o.CanaryFlagRateCeiling:0.#} times as many the guardrail allows: the review queue would fill")
            : string.Create(CultureInfo.InvariantCulture, $"within the guardrail ({o.CanaryFlagRateCeiling:0.#} times as many)");
        return new GuardrailReading(breached, string.Create(CultureInfo.InvariantCulture,
            $"flagged {canary:P1} of its orders for review ({cf:N0} of {cn:N0}) against {others:P1} of the others ({af:N0} of {an:N0}, version {w.Active?.ToString(CultureInfo.InvariantCulture) ?? "the rule prior"}), {verdict}"));
    }
}
