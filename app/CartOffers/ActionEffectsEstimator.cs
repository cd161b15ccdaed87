using System.Globalization;
using Microsoft.Extensions.Caching.Memory;
using Npgsql;
using PluginApp.Data;

namespace PluginApp.CartOffers;

/// <summary>
/// Each action's effect as the cart-offers experiment measured it: the conversion of visitors whose first cart decision
/// explored that action (chosen at random among the allowed ones, so not by the policy's own judgement) against the
/// control arm's visitors, shown nothing, over the last 90 days. An action is measured once it and the control each have
/// <see cref="MinUnits"/> visitors and <see cref="MinOrders"/> orders; until then the fixed rule's assumption stands for
/// it. Read at most every 10 minutes per shop.
/// </summary>
public sealed class ActionEffectsEstimator(NpgsqlDataSource db, IMemoryCache cache, TimeProvider clock)
{
    public const int MinUnits = 100, MinOrders = 5;

    private const string CountsSql = """
        WITH first AS (
          SELECT DISTINCT ON (x.unit) x.unit, x.arm, d.action, d.explore
          FROM experiment_exposures x
          JOIN cart_offer_decisions d ON d.shop_id = x.shop_id AND d.visitor_hash IS NOT NULL AND 'v:' || d.visitor_hash = x.unit
          WHERE x.shop_id = $1 AND x.experiment = 'cart-offers' AND x.first_at >= $2
          ORDER BY x.unit, d.decided_at)
        SELECT CASE WHEN f.arm = 'control' THEN 'control' ELSE f.action END, count(*),
               count(*) FILTER (WHERE EXISTS (SELECT 1 FROM experiment_outcomes e
                 WHERE e.shop_id = $1 AND e.experiment = 'cart-offers' AND e.unit = f.unit AND e.revenue > 0))
        FROM first f WHERE f.arm = 'control' OR f.explore
        GROUP BY 1
        """;

    public async Task<ActionEffects> EffectsAsync(long shopId, CancellationToken ct) =>
        (await cache.GetOrCreateAsync((nameof(ActionEffectsEstimator), shopId), async e =>
        {
            e.AbsoluteExpirationRelativeToNow = TimeSpan.FromMinutes(10);
            var counts = new Dictionary<string, (long Units, long Orders)>();
            await using var cmd = db.CreateCommand(CountsSql);
            cmd.Parameters.Add(Sql.Param(shopId));
            cmd.Parameters.Add(Sql.Param(clock.GetUtcNow().AddDays(-90)));
            await using (var r = await cmd.ExecuteReaderAsync(ct))
                while (await r.ReadAsync(ct)) counts[r.GetString(0)] = (r.GetInt64(1), r.GetInt64(2));
            return Estimate(counts);
        }))!;

    /// <summary>The lifts from counts per action ("control" for the control arm), falling back to the assumption per action.</summary>
    public static ActionEffects Estimate(IReadOnlyDictionary<string, (long Units, long Orders)> counts)
    {
        if (!counts.TryGetValue("control", out var control) || control.Units < MinUnits || control.Orders < MinOrders) return ActionEffects.Assumed;
        var baseRate = (double)control.Orders / control.Units;
        var lifts = ActionEffects.AssumedLifts.ToDictionary();
        var measured = new HashSet<string>();
        foreach (var action in new[] { CartAction.Nudge, CartAction.NudgeUpsell, CartAction.Offer })
            if (counts.TryGetValue(action, out var c) && c.Units >= MinUnits && c.Orders >= MinOrders)
            {
                lifts[action] = (double)c.Orders / c.Units / baseRate - 1;
                measured.Add(action);
            }
        if (measured.Count == 0) return ActionEffects.Assumed;
        var source = string.Join(", ", measured.Select(a => string.Create(CultureInfo.InvariantCulture,
            $"{a} {lifts[a]:+0.0%;-0.0%} measured on {counts[a].Units} explored visitors")));
        return new ActionEffects(lifts, measured, $"effects measured by the experiment against {control.Units} control visitors: {source}" +
            (measured.Count < 3 ? "; the fixed rule's assumption for the others" : ""));
    }
}
