using Npgsql;
using PluginApp.Data;
using PluginApp.Ml.Experiments;

namespace PluginApp.Experiments;

/// <summary>An arm's units and outcomes as of a moment.</summary>
/// <param name="Value">Per exposed unit: the metric's mean (conversion share, revenue or margin net of refunds).</param>
/// <param name="RefundRate">Refunded share of the arm's order revenue.</param>
/// <param name="AverageDiscount">Discount as a share of the arm's order revenue before discounts.</param>
/// <param name="UnknownMargin">Orders whose margin is unknown (a line without a cost), counted at <see cref="ExperimentResults.AssumedMarginShare"/> of their revenue.</param>
/// <param name="Converted">Visitors who kept an order (something of it not refunded): the conversion metric's.</param>
/// <param name="Ordered">Visitors who placed an order that was not cancelled, refunded or not: the guardrails' gate.</param>
public sealed record ArmResult(string Arm, long Units, long Converted, double Value, double Revenue, double RefundRate, double AverageDiscount,
    long UnknownMargin, ArmSample Sample, long Ordered);

/// <summary>One treatment arm against the control, as of a day: the lift with both intervals.</summary>
public sealed record ArmLift(string Arm, DateOnly Day, ExperimentComparison Comparison);

/// <summary>A guardrail an arm breaks, in words.</summary>
public sealed record GuardrailBreach(string Arm, string Text);

/// <summary>What the Experiments page shows for one experiment.</summary>
/// <param name="From">Where the results count from: the start, or the start of its latest period (<see cref="ExperimentResults.CountsFrom"/>).</param>
public sealed record ExperimentReport(ExperimentKind Kind, ExperimentSettings Settings, IReadOnlyList<ArmResult> Arms,
    IReadOnlyList<ArmLift> Today, IReadOnlyList<ArmLift> OverTime, IReadOnlyList<GuardrailBreach> Breaches, IReadOnlyList<string> Verdicts,
    DateTimeOffset From, DateTimeOffset To)
{
    /// <summary>Whether the results count from a later period than the start (<see cref="ExperimentResults.CountsFrom"/>).</summary>
    public bool MeasuredAnew => ExperimentResults.Anew(Settings, From);
}

/// <summary>
/// Reads an experiment's exposures and outcomes and analyses them: per arm the metric per exposed unit (refunds netted
/// out), every treatment arm against the control with the fixed and the always-valid 95 % intervals and CUPED where units
/// have history (<see cref="ExperimentAnalysis"/>), day by day since the start so the page can plot how the estimate
/// moved, the guardrails, and a verdict in words from the always-valid interval (safe to read every day).
/// </summary>
public sealed class ExperimentResults(NpgsqlDataSource db, ExperimentStore store, TimeProvider clock)
{
    private sealed record UnitRow(string Arm, DateTimeOffset FirstAt, double Covariate);
    /// <param name="TaxShare">The order's tax over its total (null order: 0): what an order of unknown margin counts without.</param>
    private sealed record OutcomeRow(string Unit, DateTimeOffset At, double Revenue, double? Margin, double Discount, double Refunded, double MarginRefunded,
        double TaxShare);

    /// <summary>
    /// $1 shop, $2 experiment, $3 and $4 the window: each outcome with what its order had refunded, looked up through
    /// refunds_order_idx (migration 0046; without it each outcome read all of the store's refunds: 6.3 s for 30,000
    /// outcomes and 5,000 refunds, 114 ms with it).
    /// The last column is what the refunds took off the margin: the refunded lines' subtotals (the merchandise given back,
    /// without the tax and shipping the margin never held), less the unit cost of what came back to stock. Why not the
    /// refunded amount, as until 5 Dec 2026: a returned order of 90 with 10 tax and 10 shipping and a margin of 40 counted
    /// -70 of margin, where the merchant who restocked it lost nothing of the margin (0) and one who did not lost the
    /// goods' cost (-50). A refund of an amount alone (no line) is not taken off the margin: it cannot be told from a tax or
    /// shipping refund. In an order whose prices include tax, a refunded line's subtotal holds its tax, which the order's
    /// margin never counted (<see cref="StoreData.OrderRows.Merchandise"/>): it is taken off the subtotal (the line's own tax,
    /// else the order's share of tax for lines stored before it was kept). The second last column is the order's tax over its
    /// total, which an order of unknown margin is counted without.
    /// </summary>
    internal static readonly string OutcomesSql = $"""
        SELECT e.unit, e.ordered_at, e.revenue::float8, e.margin::float8, e.discount::float8,
               coalesce((SELECT sum(amount) FROM refunds f WHERE f.shop_id = e.shop_id AND f.order_id = e.order_id), 0)::float8,
               coalesce((SELECT sum(coalesce(rl.subtotal, rl.quantity * ol.price)
                                    - CASE WHEN s.taxes_included THEN coalesce(rl.total_tax, coalesce(rl.subtotal, rl.quantity * ol.price) * {TaxShare("s")}) ELSE 0 END
                                    - CASE WHEN rl.restock_type IN ('return', 'cancel', 'legacy_restock') THEN coalesce(rl.quantity * v.unit_cost, 0) ELSE 0 END)
                         FROM refund_lines rl LEFT JOIN order_lines ol ON ol.shop_id = rl.shop_id AND ol.id = rl.line_item_id
                         LEFT JOIN variants v ON v.shop_id = ol.shop_id AND v.id = ol.variant_id
                         WHERE rl.shop_id = e.shop_id AND rl.order_id = e.order_id), 0)::float8,
               {TaxShare("s")}::float8
        FROM experiment_outcomes e LEFT JOIN orders s ON s.shop_id = e.shop_id AND s.id = e.order_id
        WHERE e.shop_id = $1 AND e.experiment = $2 AND e.unit IS NOT NULL AND e.ordered_at >= $3 AND e.ordered_at < $4
          AND NOT {Paused("e")}
        """;

    /// <summary>The order <paramref name="s"/>'s tax over its total, from 0 to 1 (0 for an order of none, or not held).</summary>
    private static string TaxShare(string s) => $"least(1, greatest(0, coalesce({s}.total_tax / nullif({s}.total_price, 0), 0)))";

    /// <summary>
    /// The outcome <paramref name="e"/> was ordered while its experiment was stopped: everyone was served the stopped arm
    /// then, so it tells nothing about the arm its visitor was exposed to before (until 4 Dec 2026 a holdout visitor served
    /// the model while stopped counted for the holdout once the experiment was started again). Likewise while the merchant
    /// had switched its feature off (the AI feature of the experiment's name, whose switch history says when): every arm was
    /// served the same fallback then (until 6 Dec 2026 those orders counted for the arms, pulling the measured lift toward
    /// nothing), or had turned its block off in the feature's own settings (a pause of its own cause, migration 0084).
    /// </summary>
    internal static string Paused(string e) => $"""
        (EXISTS (SELECT 1 FROM experiment_pauses p WHERE p.shop_id = {e}.shop_id AND p.experiment = {e}.experiment
                 AND {e}.ordered_at >= p.paused_at AND (p.resumed_at IS NULL OR {e}.ordered_at < p.resumed_at))
         OR {PluginApp.Admin.Switches.AiFeatureSwitches.OffAt($"{e}.shop_id", $"{e}.experiment", $"{e}.ordered_at")})
        """;

    /// <summary>
    /// The share of an order's revenue counted as margin when a line's cost is unknown: the share the cart offers' policy
    /// assumes for such a cart. Until 6 Dec 2026 such an order counted as no margin at all, and the arm whose carts were
    /// offered a product without a cost lost its whole orders' margin in the comparison.
    /// </summary>
    public const double AssumedMarginShare = 0.4;

    /// <summary>Visitors who ordered that a treatment arm needs before its guardrails are judged.</summary>
    public const int MinGuardrailOrders = 20;

    /// <param name="history">Whether to compute the lift day by day (the Experiments page's plot): each day reads every exposed
    /// visitor again, which the Overview's verdict and the daily monitor do not need (until 6 Dec 2026 they computed it).</param>
    public async Task<ExperimentReport> ReportAsync(long shopId, string key, CancellationToken ct, bool history = true)
    {
        var kind = store.Kind(key);
        var settings = await store.GetAsync(shopId, key, ct);
        if (settings.UpdatedAt is null && settings.Running)
        {
            await store.FixDefaultStartAsync(shopId, key, ct);
            settings = await store.GetAsync(shopId, key, ct);
        }
        var to = settings.Running || settings.StoppedAt is null ? clock.GetUtcNow() : settings.StoppedAt.Value;
        // No start: running by default with no exposure yet, so nothing to count.
        var from = CountsFrom(settings.StartedAt ?? to, to);
        var units = new Dictionary<string, UnitRow>(StringComparer.Ordinal);
        await using (var cmd = db.CreateCommand("""
            SELECT unit, arm, first_at, covariate::float8 FROM experiment_exposures
            WHERE shop_id = $1 AND experiment = $2 AND first_at >= $3 AND first_at < $4
            """))
        {
            cmd.Parameters.Add(Sql.Param(shopId));
            cmd.Parameters.Add(Sql.Param(key));
            cmd.Parameters.Add(Sql.Param(from));
            cmd.Parameters.Add(Sql.Param(to));
            await using var r = await cmd.ExecuteReaderAsync(ct);
            while (await r.ReadAsync(ct)) units[r.GetString(0)] = new UnitRow(r.GetString(1), r.GetFieldValue<DateTimeOffset>(2), r.GetDouble(3));
        }
        var outcomes = new List<OutcomeRow>();
        await using (var cmd = db.CreateCommand(OutcomesSql))
        {
            cmd.Parameters.Add(Sql.Param(shopId));
            cmd.Parameters.Add(Sql.Param(key));
            cmd.Parameters.Add(Sql.Param(from));
            cmd.Parameters.Add(Sql.Param(to));
            await using var r = await cmd.ExecuteReaderAsync(ct);
            while (await r.ReadAsync(ct))
                outcomes.Add(new OutcomeRow(r.GetString(0), r.GetFieldValue<DateTimeOffset>(1), r.GetDouble(2), r.IsDBNull(3) ? null : r.GetDouble(3),
                    r.GetDouble(4), r.GetDouble(5), r.GetDouble(6), r.GetDouble(7)));
        }
        await using var conn = await db.OpenConnectionAsync(ct);
        return Analyze(kind, settings, units, outcomes, from, to, await StoreData.ShopDays.ZoneAsync(conn, shopId, ct), history,
            covariates: !Anew(settings, from));
    }

    /// <summary>
    /// Where an experiment started at <paramref name="start"/> counts its results from, as of <paramref name="to"/>: its start,
    /// or past <see cref="ExperimentsFeature.Kept"/> the start of its latest period of that length. Why periods: who saw which
    /// arm is kept that long, so the results cannot count from one start for longer; until 8 Dec 2026 they then counted the
    /// visitors of the last 180 days, a window sliding every day, where the verdict's always-valid interval holds only for a
    /// sample that grows from a fixed start. A visitor whose exposure was deleted comes back as new once she sees an arm
    /// again, after months in it, so a later period uses no CUPED (what she spent before was spent under her arm).
    /// </summary>
    public static DateTimeOffset CountsFrom(DateTimeOffset start, DateTimeOffset to)
    {
        if (to <= start) return start;
        var whole = (to - start).Ticks / ExperimentsFeature.Kept.Ticks;
        return start + TimeSpan.FromTicks(whole * ExperimentsFeature.Kept.Ticks);
    }

    /// <summary>Whether results counted <paramref name="from"/> count from a later period than the start (<see cref="CountsFrom"/>).</summary>
    public static bool Anew(ExperimentSettings settings, DateTimeOffset from) => settings.StartedAt is { } s && from > s;

    /// <summary>The verdict's words for a metric: "policy arm earns 4.1% more margin per visitor, …".</summary>
    public static VerdictWording Wording(string metric, string arm, string control) => metric switch
    {
        // Why a share: a visitor counts once whatever she ordered (until 6 Dec 2026 worded "orders per visitor").
        "conversion" => new VerdictWording(arm, control, "share of visitors who ordered", "visitors") { Verb = "has a", More = "higher", Less = "lower", Share = true },
        "margin" => new VerdictWording(arm, control, "margin per visitor", "visitors"),
        _ => new VerdictWording(arm, control, "revenue per visitor", "visitors"),
    };

    private static ExperimentReport Analyze(ExperimentKind kind, ExperimentSettings settings, Dictionary<string, UnitRow> units, List<OutcomeRow> outcomes,
        DateTimeOffset from, DateTimeOffset to, TimeZoneInfo zone, bool history, bool covariates)
    {
        var byUnit = outcomes.Where(o => units.ContainsKey(o.Unit)).GroupBy(o => o.Unit).ToDictionary(g => g.Key, g => g.ToList(), StringComparer.Ordinal);
        var armNames = settings.Arms.Select(a => a.Name).ToList();
        List<ArmResult> AsOf(DateTimeOffset end)
        {
            return armNames.Select(arm =>
            {
                var sample = new ArmSample();
                long n = 0, converted = 0, ordered = 0, unknownMargin = 0;
                double revenue = 0, refunded = 0, discount = 0;
                foreach (var (unit, row) in units)
                {
                    if (row.Arm != arm || row.FirstAt >= end) continue;
                    n++;
                    double net = 0, margin = 0;
                    bool bought = false, placed = false;
                    if (byUnit.TryGetValue(unit, out var list))
                        foreach (var o in list)
                        {
                            if (o.At >= end || o.At < row.FirstAt) continue;
                            var keep = Math.Max(0, o.Revenue - o.Refunded);
                            net += keep;
                            if (keep > 0) bought = true;
                            if (o.Revenue > 0) placed = true;
                            // A cancelled order earned nothing (revenue and margin 0): its refunds take nothing off either.
                            if (o.Margin is { } m) margin += m - (o.Revenue > 0 ? Math.Min(o.MarginRefunded, o.Revenue) : 0);
                            else if (o.Revenue > 0)
                            {
                                unknownMargin++;
                                margin += keep * (1 - o.TaxShare) * AssumedMarginShare;
                            }
                            revenue += o.Revenue;
                            refunded += Math.Min(o.Refunded, o.Revenue);
                            discount += o.Discount;
                        }
                    if (bought) converted++;
                    if (placed) ordered++;
                    var y = settings.Metric switch { "conversion" => bought ? 1 : 0, "margin" => margin, _ => net };
                    sample = sample.Add(y, covariates ? row.Covariate : 0);
                }
                return new ArmResult(arm, n, converted, n == 0 ? 0 : sample.MeanY, revenue, revenue > 0 ? refunded / revenue : 0,
                    revenue + discount > 0 ? discount / (revenue + discount) : 0, unknownMargin, sample, ordered);
            }).ToList();
        }

        List<ArmLift> Lifts(List<ArmResult> arms, DateOnly day)
        {
            var control = arms.First(a => a.Arm == kind.Control);
            return arms.Where(a => a.Arm != kind.Control).Select(a => new ArmLift(a.Arm, day, ExperimentAnalysis.Compare(control.Sample, a.Sample))).ToList();
        }

        var final = AsOf(to);
        var today = Lifts(final, StoreData.ShopDays.DayOf(to, zone));
        var overTime = new List<ArmLift>();
        // From the first exposure's day: before it there is nothing to plot. Days are the shop's (until 4 Dec, UTC's: a store in
        // California saw its evening's visitors on the next day).
        var first = units.Count == 0 ? from : units.Values.Min(u => u.FirstAt);
        for (var d = StoreData.ShopDays.DayOf(first, zone); history && StoreData.ShopDays.StartOf(d, zone) <= to; d = d.AddDays(1))
        {
            var end = StoreData.ShopDays.StartOf(d.AddDays(1), zone);
            overTime.AddRange(Lifts(AsOf(end < to ? end : to), d));
        }
        // Why only the treatment arms, each once MinGuardrailOrders of its visitors ordered: a guardrail says whether the change under
        // test does harm; until 4 Dec one refunded order of the first day showed "100 % of revenue refunded" in red, and the
        // control arm, which changes nothing, could break one too.
        var breaches = new List<GuardrailBreach>();
        // Why counted by the orders placed, refunded or not: until 6 Dec 2026 by the visitors who kept one, so the refunds of an
        // arm that caused returns kept it under the gate of its own refund guardrail.
        foreach (var a in final.Where(a => a.Arm != kind.Control && a.Ordered >= MinGuardrailOrders))
        {
            if (settings.Guardrails.MaxRefundRate is { } maxRefund && a.Revenue > 0 && a.RefundRate > maxRefund)
                breaches.Add(new GuardrailBreach(a.Arm, $"{a.Arm}: {a.RefundRate:P1} of revenue refunded, above the {ExperimentsFeature.Percent(maxRefund)} % guardrail"));
            if (settings.Guardrails.MaxAverageDiscount is { } maxDiscount && a.AverageDiscount > maxDiscount)
                breaches.Add(new GuardrailBreach(a.Arm, $"{a.Arm}: average discount {a.AverageDiscount:P1}, above the {ExperimentsFeature.Percent(maxDiscount)} % guardrail"));
        }
        var verdicts = today.Select(l => ExperimentAnalysis.Verdict(l.Comparison, Wording(settings.Metric, l.Arm, kind.Control))).ToList();
        return new ExperimentReport(kind, settings, final, today, overTime, breaches, verdicts, from, to);
    }
}
