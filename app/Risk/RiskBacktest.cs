using Microsoft.AspNetCore.Http.HttpResults;
using Npgsql;
using PluginApp.Admin.Switches;
using PluginApp.Data;

namespace PluginApp.Risk;

/// <summary>What a pair of thresholds would have done on the store's scored orders.</summary>
/// <param name="Flagged">Orders at MEDIUM or HIGH: the review queue's load.</param>
/// <param name="FraudCaught">Confirmed fraud among the flagged.</param>
/// <param name="FraudMissed">Confirmed fraud left LOW.</param>
/// <param name="FalsePositives">Flagged orders known to be legitimate (a legitimate label, or old enough without a fraud label).</param>
/// <param name="RevenueHeld">The flagged orders' totals: what waits for a reviewer.</param>
public sealed record BacktestResult(double MediumFrom, double HighFrom, int Orders, int High, int Medium, int Flagged, int FraudCaught, int FraudMissed,
    int FalsePositives, decimal RevenueHeld);

public sealed record BacktestView(BacktestResult Current, BacktestResult Proposed, int KnownFraud, int KnownLegitimate, string Basis);

/// <summary>
/// The threshold backtest: every scored order's stored score against the current and the proposed thresholds, with what is
/// known about it now (fraud when any source says so; legitimate when a reviewer approved it or it is older than the
/// model's maturity without a fraud label; unknown otherwise, counted only in the queue's load).
/// </summary>
public sealed class RiskBacktest(NpgsqlDataSource db, TimeProvider clock, Microsoft.Extensions.Options.IOptions<RiskOptions> options)
{
    public async Task<BacktestView> RunAsync(long shopId, RiskThresholds proposed, CancellationToken ct)
    {
        var current = await CurrentAsync(shopId, ct);
        var orders = new List<(double Score, bool? Fraud, decimal Total)>();
        // Online orders only, as are scored now (RiskQueue.Online): one rung up at the counter and scored before is left out.
        await using (var cmd = db.CreateCommand($"""
            SELECT coalesce(s.unlabelled_score, s.score), CASE WHEN l.fraud THEN true WHEN l.fraud = false OR o.created_at <= $2 THEN false END, coalesce(o.total_price, 0)
            FROM risk_scores s
            JOIN orders o ON o.shop_id = s.shop_id AND o.id = s.order_id
            LEFT JOIN (SELECT order_id, bool_or(fraud) AS fraud FROM risk_labels WHERE shop_id = $1 GROUP BY order_id) l ON l.order_id = s.order_id
            WHERE s.shop_id = $1 AND o.{RiskQueue.Online}
            """))
        {
            cmd.Parameters.Add(Sql.Param(shopId));
            cmd.Parameters.Add(Sql.Param(clock.GetUtcNow() - options.Value.LabelMaturity));
            await using var r = await cmd.ExecuteReaderAsync(ct);
            while (await r.ReadAsync(ct)) orders.Add((r.GetDouble(0), r.IsDBNull(1) ? null : r.GetBoolean(1), r.GetDecimal(2)));
        }
        return new BacktestView(Apply(orders, current), Apply(orders, proposed), orders.Count(o => o.Fraud == true), orders.Count(o => o.Fraud == false),
            $"the {orders.Count} orders scored so far, each with the score it was given; fraud from reviews, cancellations and disputes; "
            + $"legitimate when approved or older than {options.Value.LabelMaturity.TotalDays:0} days without a fraud label");
    }

    internal static BacktestResult Apply(IReadOnlyList<(double Score, bool? Fraud, decimal Total)> orders, RiskThresholds t)
    {
        var flagged = orders.Where(o => o.Score >= t.MediumFrom).ToList();
        return new BacktestResult(t.MediumFrom, t.HighFrom, orders.Count, orders.Count(o => o.Score >= t.HighFrom), flagged.Count(o => o.Score < t.HighFrom),
            flagged.Count, flagged.Count(o => o.Fraud == true), orders.Count(o => o.Fraud == true && o.Score < t.MediumFrom),
            flagged.Count(o => o.Fraud == false), flagged.Sum(o => o.Total));
    }

    public async Task<RiskThresholds> CurrentAsync(long shopId, CancellationToken ct)
    {
        await using var cmd = db.CreateCommand("SELECT medium_from, high_from FROM risk_settings WHERE shop_id = $1");
        cmd.Parameters.Add(Sql.Param(shopId));
        await using var r = await cmd.ExecuteReaderAsync(ct);
        return await r.ReadAsync(ct) ? new RiskThresholds(r.GetDouble(0), r.GetDouble(1)) : RiskThresholds.Default;
    }
}

/// <summary>The risk thresholds and their backtest, for the admin.</summary>
public static class RiskAdminApi
{
    public sealed record ThresholdsBody(double? MediumFrom, double? HighFrom);

    /// <summary>The hold settings as the form sends them (numbers as JSON numbers; the order count must be whole).</summary>
    public sealed record HoldsBody(bool? HoldHigh, double? ValuedMinOrders, decimal? ValuedMinSpend, bool? HoldValued);

    public static RouteGroupBuilder MapRiskAdmin(this RouteGroupBuilder api)
    {
        api.MapGet("/risk/backtest", BacktestAsync);
        api.MapGet("/risk/thresholds", async (RiskBacktest backtest, ShopScope scope, CancellationToken ct) => TypedResults.Ok(await backtest.CurrentAsync(scope.ShopId, ct)));
        api.MapPut("/risk/thresholds", SaveAsync);
        api.MapGet("/risk/holds", async (NpgsqlDataSource db, ShopScope scope, CancellationToken ct) =>
            TypedResults.Ok(await RiskHoldSettings.ReadAsync(db, scope.ShopId, await StoreData.ShopCurrency.ReadAsync(db, scope.ShopId, ct), ct)));
        api.MapPut("/risk/holds", SaveHoldsAsync);
        return api;
    }

    private static async Task<Results<Ok<BacktestView>, ValidationProblem>> BacktestAsync(RiskBacktest backtest, ShopScope scope, double? medium, double? high,
        CancellationToken ct)
    {
        var current = await backtest.CurrentAsync(scope.ShopId, ct);
        var proposed = new ThresholdsBody(medium ?? current.MediumFrom, high ?? current.HighFrom);
        if (Problems(proposed) is { Count: > 0 } problems) return TypedResults.ValidationProblem(problems);
        return TypedResults.Ok(await backtest.RunAsync(scope.ShopId, new RiskThresholds(proposed.MediumFrom!.Value, proposed.HighFrom!.Value), ct));
    }

    private static async Task<Results<Ok<RiskThresholds>, ValidationProblem>> SaveAsync(ThresholdsBody body, NpgsqlDataSource db, ShopScope scope,
        TimeProvider clock, HttpContext http, CancellationToken ct)
    {
        if (Problems(body) is { Count: > 0 } problems) return TypedResults.ValidationProblem(problems);
        await using var cmd = db.CreateCommand("""
            INSERT INTO risk_settings (shop_id, medium_from, high_from, updated_at, updated_by) VALUES ($1, $2, $3, $4, $5)
            ON CONFLICT (shop_id) DO UPDATE SET medium_from = $2, high_from = $3, updated_at = $4, updated_by = $5
            """);
        foreach (var v in new object?[] { scope.ShopId, body.MediumFrom, body.HighFrom, clock.GetUtcNow() }) cmd.Parameters.Add(Sql.Param(v));
        cmd.Parameters.Add(Sql.Text(AdminUser.Of(http)));
        await cmd.ExecuteNonQueryAsync(ct);
        return TypedResults.Ok(new RiskThresholds(body.MediumFrom!.Value, body.HighFrom!.Value));
    }

    private static async Task<Results<Ok<RiskHoldSettings>, ValidationProblem>> SaveHoldsAsync(HoldsBody body, NpgsqlDataSource db, ShopScope scope,
        TimeProvider clock, HttpContext http, CancellationToken ct)
    {
        if (Problems(body) is { Count: > 0 } problems) return TypedResults.ValidationProblem(problems);
        var saved = new RiskHoldSettings(body.HoldHigh ?? false, (int)body.ValuedMinOrders!.Value, body.ValuedMinSpend!.Value, body.HoldValued ?? false);
        // Why the default thresholds on insert: a shop that never saved thresholds keeps scoring with the defaults it had.
        await using var cmd = db.CreateCommand("""
            INSERT INTO risk_settings (shop_id, medium_from, high_from, updated_at, updated_by, hold_high, valued_min_orders, valued_min_spend, hold_valued)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
            ON CONFLICT (shop_id) DO UPDATE SET hold_high = $6, valued_min_orders = $7, valued_min_spend = $8, hold_valued = $9, updated_at = $4, updated_by = $5
            """);
        foreach (var v in new object?[] { scope.ShopId, RiskThresholds.Default.MediumFrom, RiskThresholds.Default.HighFrom, clock.GetUtcNow() }) cmd.Parameters.Add(Sql.Param(v));
        cmd.Parameters.Add(Sql.Text(AdminUser.Of(http)));
        foreach (var v in new object?[] { saved.HoldHigh, saved.ValuedMinOrders, saved.ValuedMinSpend, saved.HoldValued }) cmd.Parameters.Add(Sql.Param(v));
        await cmd.ExecuteNonQueryAsync(ct);
        return TypedResults.Ok(saved);
    }

    internal static Dictionary<string, string[]> Problems(HoldsBody b)
    {
        var p = new Dictionary<string, string[]>();
        if (b.ValuedMinOrders is not { } n || n < 1 || n > 10_000 || n != Math.Floor(n))
            p["valuedMinOrders"] = ["must be a whole number of orders from 1 to 10,000, e.g. 5"];
        if (b.ValuedMinSpend is not { } s || s <= 0 || s >= 1_000_000_000_000m) p["valuedMinSpend"] = ["must be an amount above 0, e.g. 1000"];
        return p;
    }

    /// <summary>Each field's problem in words, next to the field.</summary>
    internal static Dictionary<string, string[]> Problems(ThresholdsBody b)
    {
        var p = new Dictionary<string, string[]>();
        if (b.MediumFrom is not { } m || !(m > 0 && m < 1)) p["mediumFrom"] = ["must be a probability between 0 and 1, e.g. 0.1"];
        if (b.HighFrom is not { } h || !(h > 0 && h < 1)) p["highFrom"] = ["must be a probability between 0 and 1, e.g. 0.4"];
        else if (b.MediumFrom is { } m2 && m2 >= h) p["highFrom"] = ["must be above the medium threshold"];
        return p;
    }
}
