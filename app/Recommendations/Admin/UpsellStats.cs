using Microsoft.Extensions.Options;
using Npgsql;
using PluginApp.Ml.Metrics;
using PluginApp.StoreData;

namespace PluginApp.Recommendations;

/// <summary>A window of whole days in the shop's time zone, ending today.</summary>
public sealed record DayWindow(IReadOnlyList<DateOnly> Days, DateTimeOffset From, DateTimeOffset To, string TimeZone)
{
    public static readonly int[] Choices = [7, 30, 90];

    public static DayWindow Ending(DateTimeOffset now, string? ianaTimeZone, int days)
    {
        var zone = ShopDays.Zone(ianaTimeZone);
        var today = ShopDays.DayOf(now, zone);
        var first = today.AddDays(1 - days);
        return new DayWindow(Enumerable.Range(0, days).Select(i => first.AddDays(i)).ToList(), ShopDays.StartOf(first, zone),
            ShopDays.StartOf(today.AddDays(1), zone), zone.Id);
    }
}

/// <summary>One day of what the upsell blocks did and earned.</summary>
public sealed record UpsellDay(DateOnly Day, long Impressions, long Clicks, long AddToCarts, long AttributedOrders, decimal AttributedRevenue);

/// <summary>One arm of the upsell experiment over the window: shoppers served, those who ordered, their revenue.</summary>
public sealed record ArmOutcome(string Arm, long Shoppers, long Converted, MeanSummary RevenuePerShopper);

/// <summary>The holdout comparison, or why there is none yet.</summary>
public sealed record HoldoutComparison(ArmOutcome? Model, ArmOutcome? Holdout, LiftEstimate? Conversion, LiftEstimate? RevenuePerVisitor, string? NotYet)
{
    public const int MinShoppersPerArm = 100;
    public const int MinConvertedPerArm = 10;

    public static HoldoutComparison From(ArmOutcome? model, ArmOutcome? holdout)
    {
        string? notYet = null;
        if (model is null || holdout is null || model.Shoppers < MinShoppersPerArm || holdout.Shoppers < MinShoppersPerArm)
            notYet = $"Not enough data yet: {model?.Shoppers ?? 0:N0} shoppers saw recommendations and {holdout?.Shoppers ?? 0:N0} were held out; " +
                     $"an honest comparison needs at least {MinShoppersPerArm} in each.";
        else if (model.Converted < MinConvertedPerArm || holdout.Converted < MinConvertedPerArm)
            notYet = $"Not enough data yet: {model.Converted:N0} and {holdout.Converted:N0} shoppers ordered; an honest comparison needs at least {MinConvertedPerArm} orders in each arm.";
        return notYet is not null
            ? new HoldoutComparison(model, holdout, null, null, notYet)
            : new HoldoutComparison(model, holdout, Lift.Conversion(model!.Converted, model.Shoppers, holdout!.Converted, holdout.Shoppers),
                Lift.Mean(model.RevenuePerShopper, holdout.RevenuePerShopper), null);
    }
}

/// <summary>
/// The overview's numbers, from the tables serving and ingestion write: storefront events per day, attributed orders and
/// revenue net of refunds per day (by the order's day), the serving path mix, and the holdout comparison.
/// </summary>
public sealed class UpsellStats(NpgsqlDataSource db, IOptions<RecommendationOptions> options)
{
    public async Task<(string? TimeZone, string Currency)> ShopAsync(long shopId, CancellationToken ct)
    {
        await using var cmd = db.CreateCommand($"""
            SELECT iana_timezone, coalesce({ShopCurrency.Of("$1")}, 'USD')
            FROM shops WHERE id = $1
            """);
        cmd.Parameters.AddWithValue(shopId);
        await using var r = await cmd.ExecuteReaderAsync(ct);
        return await r.ReadAsync(ct) ? (r.IsDBNull(0) ? null : r.GetString(0), r.GetString(1)) : (null, "USD");
    }

    public async Task<List<UpsellDay>> DaysAsync(long shopId, DayWindow w, CancellationToken ct)
    {
        var days = w.Days.ToDictionary(d => d, d => new UpsellDay(d, 0, 0, 0, 0, 0m));
        // Why not the holdout's: its shoppers are shown the store's bestsellers as the experiment's control, not
        // recommendations, and the figures below say what the recommendations did (until 6 Dec 2026 they counted both arms).
        // Nor those of an answer whose decision was never written (the log's queue overflowed while the database was away):
        // its arm is not known, as for its revenue (until 7 Dec 2026 they counted). Why the answers gathered first (those of
        // the window and of the event window before it, within which an event's answer was given: DecisionTokens): one range
        // of the decision log, then a hashed look-up per event, not one probe of every month's partition.
        await using var cmd = db.CreateCommand(EventsSql);
        Add(cmd, shopId, w);
        cmd.Parameters.AddWithValue(options.Value.EventWindow);
        await using (var r = await cmd.ExecuteReaderAsync(ct))
            while (await r.ReadAsync(ct))
            {
                var day = DateOnly.FromDateTime(r.GetDateTime(0));
                if (!days.TryGetValue(day, out var d)) continue;
                days[day] = r.GetString(1) switch
                {
                    "impression" => d with { Impressions = r.GetInt64(2) },
                    "click" => d with { Clicks = r.GetInt64(2) },
                    "add_to_cart" => d with { AddToCarts = r.GetInt64(2) },
                    _ => d,
                };
            }
        await using var attributed = db.CreateCommand(AttributedSql);
        Add(attributed, shopId, w);
        await using (var r = await attributed.ExecuteReaderAsync(ct))
            while (await r.ReadAsync(ct))
            {
                var day = DateOnly.FromDateTime(r.GetDateTime(0));
                if (days.TryGetValue(day, out var d)) days[day] = d with { AttributedOrders = r.GetInt64(1), AttributedRevenue = r.GetDecimal(2) };
            }
        return w.Days.Select(d => days[d]).ToList();
    }

    /// <summary>
    /// Storefront events by the shop's day and type, of the answers logged as the recommendations' (the holdout's, those
    /// whose decision was never written, and those given while the merchant had upsells switched off, left out). $1 shop,
    /// $2 and $3 the window, $4 the zone, $5 how long after its answer an event is taken (Recommendations:EventWindow).
    /// </summary>
    internal static readonly string EventsSql = $"""
        WITH off AS MATERIALIZED ({SwitchedOff}),
        answered AS MATERIALIZED (
          SELECT request_id FROM recommendation_decisions d
          WHERE shop_id = $1 AND experiment_arm IS DISTINCT FROM '{UpsellExperiment.HoldoutArm}' AND decided_at >= $2 - $5::interval AND decided_at < $3
            AND NOT EXISTS (SELECT 1 FROM off WHERE d.decided_at >= off.from_at AND d.decided_at < off.to_at))
        SELECT (e.occurred_at AT TIME ZONE $4)::date, e.event_type, count(*) FROM recommendation_events e
        WHERE e.shop_id = $1 AND e.occurred_at >= $2 AND e.occurred_at < $3
          AND EXISTS (SELECT 1 FROM answered a WHERE a.request_id = e.request_id)
        GROUP BY 1, 2
        """;

    /// <summary>
    /// Attributed lines by their order's day: each line's revenue less what was refunded of it, never below zero; cancelled
    /// orders earn nothing. Why each line's refunds looked up by the line (refund_lines_line_item_idx): summed for the whole
    /// store first, every refund line the store ever had was read on each visit to the overview. The holdout's lines are not
    /// counted: what its shoppers bought after seeing the bestsellers is the control's, not the recommendations' doing. A line
    /// whose answer's decision was not written when its order came (the decision log's queue was behind, or overflowed while
    /// the database was away) takes its arm from the decision written since (decisions_id_idx), and is not counted while
    /// there is none: a holdout answer's would count as the recommendations' (until 7 Dec 2026 they did). Nor a line whose
    /// order was placed while the merchant had upsells switched off: every arm was shown the store's bestsellers then.
    /// </summary>
    internal static readonly string AttributedSql = $"""
        WITH off AS MATERIALIZED ({SwitchedOff})
        SELECT (o.created_at AT TIME ZONE $4)::date, count(DISTINCT a.order_id),
               coalesce(sum(greatest(0, a.revenue - coalesce(
                 (SELECT sum(coalesce(rl.subtotal, rl.quantity * ol.price))
                  FROM refund_lines rl LEFT JOIN order_lines ol ON ol.shop_id = rl.shop_id AND ol.id = rl.line_item_id
                  WHERE rl.shop_id = $1 AND rl.line_item_id = a.line_id), 0))), 0)
        FROM recommendation_attributions a
        JOIN orders o ON o.shop_id = a.shop_id AND o.id = a.order_id
        WHERE a.shop_id = $1 AND o.created_at >= $2 AND o.created_at < $3 AND o.cancelled_at IS NULL
          AND coalesce(a.experiment_arm, (SELECT d.experiment_arm FROM recommendation_decisions d WHERE d.shop_id = a.shop_id AND d.request_id = a.request_id LIMIT 1))
              <> '{UpsellExperiment.HoldoutArm}'
          AND NOT EXISTS (SELECT 1 FROM off WHERE o.created_at >= off.from_at AND o.created_at < off.to_at)
        GROUP BY 1
        """;

    /// <summary>
    /// The periods upsells were switched off: what was shown then was the store's bestsellers (or nothing), the merchant's
    /// choice, not the recommendations' (until 7 Dec 2026 their impressions, clicks and revenue counted as the
    /// recommendations' on the Overview, while the holdout's bestsellers were left out). Why the order's time for its
    /// lines, not its answer's: an attributed line's answer is looked up only when its arm was not written with it, and a
    /// lookup for each line reads every month's partition of the decision log.
    /// </summary>
    private static string SwitchedOff => PluginApp.Admin.Switches.AiFeatureSwitches.OffPeriods("$1", $"'{UpsellFeature.Name}'");

    /// <summary>The path of the holdout's bestsellers in <see cref="PathMixAsync"/>.</summary>
    public const string HoldoutPath = "holdout";

    /// <summary>
    /// Share of answers by the path that produced them (model, co_occurrence, bestsellers). The holdout's bestsellers are
    /// their own path: the experiment chose them, not a fallback of the model's (until 7 Dec 2026 they read as "Store
    /// bestsellers", a tenth of the answers on a store whose model answered every other).
    /// </summary>
    public async Task<List<(string Path, long Answers)>> PathMixAsync(long shopId, DayWindow w, CancellationToken ct)
    {
        // Not while upsells were switched off: every arm was shown bestsellers then, by the merchant's choice.
        await using var cmd = db.CreateCommand($"""
            WITH off AS MATERIALIZED ({SwitchedOff})
            SELECT CASE WHEN experiment_arm = '{UpsellExperiment.HoldoutArm}' AND path = 'bestsellers'
                          AND NOT EXISTS (SELECT 1 FROM off WHERE d.decided_at >= off.from_at AND d.decided_at < off.to_at)
                        THEN '{HoldoutPath}' ELSE path END, count(*)
            FROM recommendation_decisions d WHERE shop_id = $1 AND decided_at >= $2 AND decided_at < $3
            GROUP BY 1 ORDER BY count(*) DESC
            """);
        cmd.Parameters.AddWithValue(shopId);
        cmd.Parameters.AddWithValue(w.From);
        cmd.Parameters.AddWithValue(w.To);
        var list = new List<(string, long)>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct)) list.Add((r.GetString(0), r.GetInt64(1)));
        return list;
    }

    /// <summary>$1 shop, $2 and $3 the window, $4 the experiment. Why each outcome's refunds looked up by its order
    /// (refunds_order_idx), as the Experiments page's are: summed for the whole store first, every refund was read. Why
    /// not before the experiment's start: a change of its shares starts it again (ExperimentStore.SaveAsync), and the
    /// shoppers exposed before it may be served another arm than the one they would be counted in.</summary>
    internal static readonly string HoldoutSql = $"""
        WITH exposed AS (
          SELECT arm, unit FROM experiment_exposures WHERE shop_id = $1 AND experiment = $4 AND first_at < $3
            AND first_at >= coalesce((SELECT greatest($2, started_at) FROM experiments WHERE shop_id = $1 AND key = $4), $2)),
        outcome AS (
          SELECT e.unit, sum(greatest(0, e.revenue - coalesce((SELECT sum(f.amount) FROM refunds f WHERE f.shop_id = e.shop_id AND f.order_id = e.order_id), 0)))::float8 AS revenue
          FROM experiment_outcomes e
          WHERE e.shop_id = $1 AND e.experiment = $4 AND e.unit IS NOT NULL AND e.ordered_at >= $2 AND e.ordered_at < $3 AND e.revenue > 0
            AND NOT {Experiments.ExperimentResults.Paused("e")}
          GROUP BY 1)
        -- A shopper whose orders were all refunded did not convert, as on the Experiments page (until 5 Dec 2026 they did here).
        SELECT x.arm, count(*), count(o.unit) FILTER (WHERE o.revenue > 0), coalesce(sum(o.revenue), 0), coalesce(sum(o.revenue * o.revenue), 0)
        FROM exposed x LEFT JOIN outcome o ON o.unit = x.unit
        GROUP BY x.arm
        """;

    /// <summary>
    /// Shoppers (by visitor id, else customer) first exposed to the upsell experiment in the window per arm (the experiment
    /// log), those of them whose orders joined the experiment, and their revenue net of refunds per shopper (zeros included).
    /// </summary>
    public async Task<HoldoutComparison> HoldoutAsync(long shopId, DayWindow w, CancellationToken ct)
    {
        await using var cmd = db.CreateCommand(HoldoutSql);
        cmd.Parameters.AddWithValue(shopId);
        cmd.Parameters.AddWithValue(w.From);
        cmd.Parameters.AddWithValue(w.To);
        cmd.Parameters.AddWithValue(UpsellExperiment.Key);
        var arms = new Dictionary<string, ArmOutcome>();
        await using (var r = await cmd.ExecuteReaderAsync(ct))
            while (await r.ReadAsync(ct))
                arms[r.GetString(0)] = new ArmOutcome(r.GetString(0), r.GetInt64(1), r.GetInt64(2), new MeanSummary(r.GetInt64(1), r.GetDouble(3), r.GetDouble(4)));
        return HoldoutComparison.From(arms.GetValueOrDefault(UpsellExperiment.ModelArm), arms.GetValueOrDefault(UpsellExperiment.HoldoutArm));
    }

    private static void Add(NpgsqlCommand cmd, long shopId, DayWindow w)
    {
        cmd.Parameters.AddWithValue(shopId);
        cmd.Parameters.AddWithValue(w.From);
        cmd.Parameters.AddWithValue(w.To);
        cmd.Parameters.AddWithValue(w.TimeZone);
    }
}
