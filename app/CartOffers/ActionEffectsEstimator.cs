using System.Globalization;
using Npgsql;
using PluginApp.Data;
using PluginApp.Hosting;

namespace PluginApp.CartOffers;

/// <summary>
/// Each action's effect as the cart-offers experiment measured it: the conversion of visitors whose first cart decision
/// explored that action (chosen at random among the allowed ones, so not by the policy's own judgement) against the
/// control arm's visitors, shown nothing, over the last 90 days. An action is measured once it and the control each have
/// <see cref="MinUnits"/> visitors and <see cref="MinOrders"/> orders; until then the fixed rule's assumption stands for
/// it. Read at most every 10 minutes per shop, in the background once the shop has effects (<see cref="EffectsAsync"/>).
/// </summary>
public sealed class ActionEffectsEstimator(NpgsqlDataSource db, TimeProvider clock)
{
    public const int MinUnits = 100, MinOrders = 5;

    /// <summary>
    /// $1 shop, $2 the start of the 90 days: per action ("control" for the control arm) the visitors and those who ordered.
    /// Read within the window and each table once: a unit's decisions by its visitor hash, the window's converting units as
    /// one set (a unit's first decision comes with its exposure; the day's margin keeps one logged a moment before it).
    /// Before 4 Dec 2026 it joined every offer decision the store ever made and looked each unit's orders up among
    /// all the experiment's outcomes (no index by unit): 0.8–1.4 s in a shopper's cart request every 10 minutes, in a store
    /// of 250,000 offer decisions.
    /// </summary>
    internal const string CountsSql = """
        WITH first AS (
          SELECT DISTINCT ON (x.unit) x.unit, x.arm, d.action, d.explore
          FROM experiment_exposures x
          JOIN cart_offer_decisions d ON d.shop_id = x.shop_id AND d.visitor_hash = substr(x.unit, 3) AND d.decided_at >= $2 - interval '1 day'
          WHERE x.shop_id = $1 AND x.experiment = 'cart-offers' AND x.first_at >= $2 AND x.unit LIKE 'v:%'
          ORDER BY x.unit, d.decided_at),
        ordered AS (
          SELECT DISTINCT unit FROM experiment_outcomes
          WHERE shop_id = $1 AND experiment = 'cart-offers' AND ordered_at >= $2 AND unit IS NOT NULL AND revenue > 0)
        SELECT CASE WHEN f.arm = 'control' THEN 'control' ELSE f.action END, count(*), count(o.unit)
        FROM first f LEFT JOIN ordered o ON o.unit = f.unit
        WHERE f.arm = 'control' OR f.explore
        GROUP BY 1
        """;

    private readonly ExpiringCache<long, ActionEffects> _byShop = new(TimeSpan.FromMinutes(10), clock);

    /// <summary>The shop's effects, read at most every 10 minutes; a shopper's cart waits for the read only on the shop's
    /// first cart of the process (or after 20 minutes without one): after that the read runs in the background while the
    /// last effects answer (<see cref="ExpiringCache{TKey, TValue}"/>).</summary>
    public async Task<ActionEffects> EffectsAsync(long shopId, CancellationToken ct) =>
        await _byShop.GetAsync(shopId, static (self, id) => self.LoadAsync(id), this, ct);

    /// <remarks>Not cancelled by a request that stops waiting: the shop's carts in flight share it.</remarks>
    private async Task<ActionEffects> LoadAsync(long shopId)
    {
        var counts = new Dictionary<string, (long Units, long Orders)>();
        await using var cmd = db.CreateCommand(CountsSql);
        cmd.Parameters.Add(Sql.Param(shopId));
        cmd.Parameters.Add(Sql.Param(clock.GetUtcNow().AddDays(-90)));
        await using (var r = await cmd.ExecuteReaderAsync())
            while (await r.ReadAsync()) counts[r.GetString(0)] = (r.GetInt64(1), r.GetInt64(2));
        return Estimate(counts);
    }

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
