using System.Globalization;
using Npgsql;
using PluginApp.Data;
using PluginApp.Hosting;

namespace PluginApp.CartOffers;

/// <summary>
/// What the experiment counted for one action: the visitors whose first cart decision explored it (chosen at random among
/// the actions their cart allowed) and how many ordered, against the control arm's visitors whose first cart allowed it,
/// each weighted by the chance an explored cart with the same choices would have drawn it (1 / the actions allowed).
/// </summary>
public sealed record ActionCounts(long Units, long Orders, double ControlUnits, double ControlOrders, long ControlVisitors, long ControlOrdered);

/// <summary>
/// Each action's effect as the cart-offers experiment measured it: the conversion of visitors whose first cart decision
/// explored that action (chosen at random among the allowed ones, so not by the policy's own judgement) against the
/// control arm's visitors whose cart allowed the same action, shown nothing, over the last 90 days. Like with like: the
/// bar is only allowed below the free-shipping threshold and the offer only on carts every cap holds for, so against
/// every control cart the bar read as a loss because small carts order less (until 4 Dec 2026). An action is measured
/// once it and its control each have <see cref="MinUnits"/> visitors and <see cref="MinOrders"/> orders; until then the
/// fixed rule's assumption stands for it. Read at most every 10 minutes per shop, in the background once the shop has
/// effects (<see cref="EffectsAsync"/>).
/// </summary>
public sealed class ActionEffectsEstimator(NpgsqlDataSource db, TimeProvider clock)
{
    public const int MinUnits = 100, MinOrders = 5;

    /// <summary>
    /// $1 shop, $2 the start of the 90 days: per measured action, its explored visitors and those who ordered, and the
    /// control's visitors whose first cart allowed it, weighted and counted (<see cref="ActionCounts"/>). An explored cart
    /// counts under the action it drew, even when that could not be shown (no code left, no product). A cart logged before
    /// its allowed actions were (4 Dec 2026) is left out, explored or control, so both come from the same days. Read within the window and each table once: a
    /// unit's decisions by its visitor hash, the window's converting units as one set (a unit's first decision comes with
    /// its exposure; the day's margin keeps one logged a moment before it). Before 4 Dec 2026 it joined every offer
    /// decision the store ever made and looked each unit's orders up among all the experiment's outcomes (no index by
    /// unit): 0.8–1.4 s in a shopper's cart request every 10 minutes, in a store of 250,000 offer decisions.
    /// </summary>
    internal const string CountsSql = """
        WITH first AS (
          SELECT DISTINCT ON (x.unit) x.unit, x.arm, coalesce(d.output->>'drawn', d.subject) AS action, coalesce((d.output->>'explore')::boolean, false) AS explore,
                 d.output->'allowed' AS allowed
          FROM experiment_exposures x
          JOIN decisions d ON d.shop_id = x.shop_id AND d.kind = 'offer' AND d.visitor_hash = substr(x.unit, 3) AND d.decided_at >= $2 - interval '1 day'
          WHERE x.shop_id = $1 AND x.experiment = 'cart-offers' AND x.first_at >= $2 AND x.unit LIKE 'v:%'
          ORDER BY x.unit, d.decided_at),
        ordered AS (
          SELECT DISTINCT unit FROM experiment_outcomes
          WHERE shop_id = $1 AND experiment = 'cart-offers' AND ordered_at >= $2 AND unit IS NOT NULL AND revenue > 0),
        scored AS (
          SELECT f.*, o.unit IS NOT NULL AS bought,
                 CASE WHEN f.arm = 'control' AND jsonb_typeof(f.allowed) = 'array' AND jsonb_array_length(f.allowed) > 1
                      THEN 1.0 / jsonb_array_length(f.allowed) END AS weight
          FROM first f LEFT JOIN ordered o ON o.unit = f.unit)
        SELECT a.action,
               count(*) FILTER (WHERE s.arm <> 'control' AND s.explore AND s.allowed IS NOT NULL AND s.action = a.action),
               count(*) FILTER (WHERE s.arm <> 'control' AND s.explore AND s.allowed IS NOT NULL AND s.action = a.action AND s.bought),
               coalesce(sum(s.weight) FILTER (WHERE s.allowed ? a.action), 0)::float8,
               coalesce(sum(s.weight) FILTER (WHERE s.allowed ? a.action AND s.bought), 0)::float8,
               count(s.weight) FILTER (WHERE s.allowed ? a.action),
               count(s.weight) FILTER (WHERE s.allowed ? a.action AND s.bought)
        FROM (VALUES ('nudge'), ('nudge_upsell'), ('offer')) a(action) CROSS JOIN scored s
        GROUP BY a.action
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
        var counts = new Dictionary<string, ActionCounts>();
        await using var cmd = db.CreateCommand(CountsSql);
        cmd.Parameters.Add(Sql.Param(shopId));
        cmd.Parameters.Add(Sql.Param(clock.GetUtcNow().AddDays(-90)));
        await using (var r = await cmd.ExecuteReaderAsync())
            while (await r.ReadAsync())
                counts[r.GetString(0)] = new ActionCounts(r.GetInt64(1), r.GetInt64(2), r.GetDouble(3), r.GetDouble(4), r.GetInt64(5), r.GetInt64(6));
        return Estimate(counts);
    }

    /// <summary>The lifts from each action's counts against its own control visitors, falling back to the assumption per action.</summary>
    public static ActionEffects Estimate(IReadOnlyDictionary<string, ActionCounts> counts)
    {
        var lifts = ActionEffects.AssumedLifts.ToDictionary();
        var measured = new List<string>();
        foreach (var action in new[] { CartAction.Nudge, CartAction.NudgeUpsell, CartAction.Offer })
            if (counts.TryGetValue(action, out var c) && c.Units >= MinUnits && c.Orders >= MinOrders
                && c.ControlVisitors >= MinUnits && c.ControlOrdered >= MinOrders && c.ControlOrders > 0)
            {
                lifts[action] = (double)c.Orders / c.Units / (c.ControlOrders / c.ControlUnits) - 1;
                measured.Add(action);
            }
        if (measured.Count == 0) return ActionEffects.Assumed;
        var source = string.Join("; ", measured.Select(a => string.Create(CultureInfo.InvariantCulture,
            $"{a} {lifts[a]:+0.0%;-0.0%} on {counts[a].Units} explored visitors against {counts[a].ControlVisitors} control visitors whose cart allowed it")));
        return new ActionEffects(lifts, measured.ToHashSet(), "effects measured by the experiment: " + source +
            (measured.Count < 3 ? "; the fixed rule's assumption for the others" : ""));
    }
}
