using System.Globalization;
using Microsoft.Extensions.Options;
using Npgsql;
using PluginApp.Data;
using PluginApp.Governance;
using PluginApp.Training;

namespace PluginApp.Recommendations;

/// <summary>
/// The recommender's canary guardrail: click-through (clicks per impression of the served items, from the storefront events
/// joined to the answers by request id) of the canary's answers against the active version's answers in the same window, in
/// the model arm. Read once both have Governance:CanaryMinImpressions impressions; broken when the canary's is below
/// Governance:CanaryClickThroughFloor of the active version's.
/// </summary>
public static class ClickThroughGuardrail
{
    public static async Task<GuardrailReading?> ReadAsync(IServiceProvider services, ReleaseWindow w, CancellationToken ct)
    {
        if (w.Active is null) return null;
        var db = services.GetRequiredService<NpgsqlDataSource>();
        var o = services.GetRequiredService<IOptions<GovernanceOptions>>().Value;
        await using var cmd = db.CreateCommand("""
            WITH d AS (
                SELECT decision_id, model_version = $4 AS canary FROM decisions
                WHERE shop_id = $1 AND kind = 'upsell' AND decided_at >= $2 AND arm = 'model' AND model_version IN ($3, $4)
                  AND NOT coalesce(output ? 'failed', false)),
            ev AS (
                SELECT d.canary, count(*) FILTER (WHERE e.event_type = 'impression') AS impressions, count(*) FILTER (WHERE e.event_type = 'click') AS clicks
                FROM d JOIN recommendation_events e ON e.shop_id = $1 AND e.request_id = d.decision_id
                GROUP BY d.canary),
            rv AS (
                SELECT d.canary, count(*) AS answers, coalesce(sum((SELECT sum(a.revenue) FROM recommendation_attributions a
                                                                    WHERE a.shop_id = $1 AND a.request_id = d.decision_id)), 0) AS revenue
                FROM d GROUP BY d.canary)
            SELECT rv.canary, coalesce(ev.impressions, 0), coalesce(ev.clicks, 0), rv.answers, rv.revenue FROM rv LEFT JOIN ev USING (canary)
            """);
        foreach (var v in new object[] { w.ShopId, w.From, w.Active.Value, w.Candidate }) cmd.Parameters.Add(Sql.Param(v));
        long ci = 0, cc = 0, ai = 0, ac = 0, cn = 0, an = 0;
        decimal cr = 0, ar = 0;
        await using (var r = await cmd.ExecuteReaderAsync(ct))
            while (await r.ReadAsync(ct))
                if (r.GetBoolean(0)) (ci, cc, cn, cr) = (r.GetInt64(1), r.GetInt64(2), r.GetInt64(3), r.GetDecimal(4));
                else (ai, ac, an, ar) = (r.GetInt64(1), r.GetInt64(2), r.GetInt64(3), r.GetDecimal(4));
        // The online effect as the merchant judges it, beside the guardrail: revenue of the orders the answers led to, per answer.
        // Shown, not acted on: orders arrive later than clicks and a canary's few hundred answers give a wide interval.
        var revenue = cn == 0 || an == 0 ? "" : string.Create(CultureInfo.InvariantCulture,
            $"; attributed revenue per answer {cr / cn:0.00} ({cn:N0} answers) against version {w.Active}'s {ar / an:0.00} ({an:N0}), an online effect of {cr / cn - ar / an:+0.00;-0.00;0.00} per answer so far");
        if (ci < o.CanaryMinImpressions || ai < o.CanaryMinImpressions)
            return new GuardrailReading(false, string.Create(CultureInfo.InvariantCulture,
                $"click-through not read yet: {ci:N0} and {ai:N0} impressions of {o.CanaryMinImpressions:N0} needed") + revenue, Read: false);
        var (canary, active) = ((double)cc / ci, (double)ac / ai);
        var breached = canary < o.CanaryClickThroughFloor * active;
        var verdict = breached
            ? string.Create(CultureInfo.InvariantCulture, $"below the {o.CanaryClickThroughFloor:P0} of it the guardrail allows")
            : string.Create(CultureInfo.InvariantCulture, $"within the guardrail ({o.CanaryClickThroughFloor:P0} of it)");
        return new GuardrailReading(breached, string.Create(CultureInfo.InvariantCulture,
            $"click-through {canary:P1} ({cc:N0} clicks on {ci:N0} impressions) against version {w.Active}'s {active:P1} ({ac:N0} on {ai:N0}), {verdict}") + revenue);
    }
}
