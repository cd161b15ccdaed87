using PluginApp.Governance;

namespace PluginApp.Risk;

/// <summary>
/// Order risk's canary guardrail: the share of orders the canary flags (MEDIUM or HIGH, the ones that wait for a reviewer)
/// against the share the other orders of the same window got.
/// </summary>
public static class FlagRateGuardrail
{
    public static readonly ActionRateGuardrail Guardrail = new("""
        SELECT coalesce(output->>'candidate' = $3 AND NOT output ? 'failed', false), count(*), count(*) FILTER (WHERE subject IN ('MEDIUM', 'HIGH'))
        FROM decisions WHERE shop_id = $1 AND kind = 'risk' AND decided_at >= $2 AND (output->>'candidate' IS NULL OR output->>'candidate' = $3)
        GROUP BY 1
        """, "orders", "flagged for review", "the review queue would fill", "the rule prior");
}
