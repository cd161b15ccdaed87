using System.Globalization;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Http.HttpResults;
using Npgsql;
using PluginApp.Data;
using PluginApp.Training;

namespace PluginApp.Churn;

public sealed record ChurnReasonView(string Feature, string Text, double Contribution);

public sealed record ChurnCustomerView(long CustomerId, string? Email, string Segment, double ChurnProbability, double ExpectedOrders90,
    decimal? PredictedValue, int Orders, double DaysSinceLastOrder, decimal TotalSpend, int ModelVersion, string ModelKind, DateTimeOffset ScoredAt,
    IReadOnlyList<ChurnReasonView> Reasons);

public sealed record ChurnSegmentView(string Segment, string Means, long Customers, decimal ValueAtRisk);

public sealed record ChurnDayView(DateOnly Day, string Segment, int Customers, decimal ValueAtRisk);

/// <summary>What the admin shows: the model and why it was chosen, or why there is none yet.</summary>
public sealed record ChurnModelView(int? Version, string? Kind, string? Reason, int? HorizonDays, double? RocAuc, double? RecencyRocAuc, string? SpendModel,
    string? NotYet, DateTimeOffset? ScoredAt, double? Brier = null, double? BaseRateBrier = null, double? ShrunkToward = null, double? ShrunkBrier = null,
    string? HorizonRule = null, int? ForecastCustomers = null, double? ForecastPurchaseDays = null, int? ActualPurchaseDays = null)
{
    /// <summary>How far the expected orders (and so the predicted values) were from what happened over the held-out window,
    /// in words; null for a version trained before the check was kept.</summary>
    public string? ForecastCheck => ForecastPurchaseDays is { } f && ActualPurchaseDays is { } a && ForecastCustomers is { } n && HorizonDays is { } h
        ? string.Create(CultureInfo.InvariantCulture,
            $"Expected orders and predicted values come from the purchase-pattern model (BG/NBD). Checked on the {h} days before this version was trained: fitted on the history before them, it expected {Days(f)} from the {n:N0} customers who had bought by then, and they bought on {Days(a)}: {Off(f, a)}. It learns each customer's pace, not seasons or sales, so expect it to fall short in a busy season and to overshoot in a quiet one.")
        : null;

    private static string Days(double d) =>
        d is > 0 and < 0.05 ? "under 0.1 purchase days"
        : d is > 0 and < 9.5 && d != Math.Round(d) ? FormattableString.Invariant($"{d:N1} purchase days")
        : d == 1 ? "1 purchase day" : FormattableString.Invariant($"{d:N0} purchase days");

    /// <summary>How far off, in words: within 5 % of what happened, short or too high by a share of it; with nothing forecast or
    /// nothing bought, said as such (no share of zero).</summary>
    internal static string Off(double forecast, int actual) => (forecast, actual) switch
    {
        ( < 0.5, 0) => "about what it forecast",
        (_, 0) => "none of what it forecast came",
        ( <= 0, _) => "more than it forecast",
        _ when Math.Abs(forecast - actual) / actual < 0.05 => "within 5 % of the forecast",
        _ when actual > forecast => string.Create(CultureInfo.InvariantCulture, $"the forecast fell {1 - forecast / actual:P0} short"),
        _ => string.Create(CultureInfo.InvariantCulture, $"the forecast was {forecast / actual - 1:P0} too high"),
    };

    /// <summary>Whether the served probabilities' held-out Brier score (after the pull toward the churn rate when there was
    /// one) beats always predicting the churn rate: if not, rank by the probabilities but do not read them as percentages.</summary>
    public bool? Calibrated => (ShrunkBrier ?? Brier) is { } b && BaseRateBrier is { } r ? b < r : null;
}

public sealed record ChurnSummary(ChurnModelView Model, IReadOnlyList<ChurnSegmentView> Segments, decimal ValueAtRisk, long Customers);

/// <summary>Reads of the churn scores for the admin page, its API and the CSV export (one shop each).</summary>
public sealed class ChurnStore(NpgsqlDataSource db, ModelRegistry registry, Microsoft.Extensions.Options.IOptions<ChurnOptions> options)
{
    /// <summary>
    /// $1 shop: each segment's customers and value at risk as the last scoring run counted them (<see cref="ChurnScoringJob"/>
    /// writes them with the scores, in the same transaction, every segment a row), and when it ran. Why not counted from the
    /// scores: that read every scored customer of the store on each visit to the page (176 ms for 200,000 customers); a
    /// customer erased since the run is still counted until the next one, the store's counts are never personal data.
    /// </summary>
    internal const string SummarySql = """
        SELECT segment, customers, value_at_risk, scored_at, lines::text FROM churn_segment_days
        WHERE shop_id = $1 AND day = (SELECT max(day) FROM churn_segment_days WHERE shop_id = $1)
        """;

    /// <summary>
    /// $1 shop, $2 the segments asked for, $3 how many (null: all, for the export): the customers most at stake first, each
    /// segment read down its own index (churn_scores_at_stake_idx) to the limit, so the page reads a few hundred scores,
    /// not the store's (88 ms for a segment and 231 ms for all of 200,000 customers, sorted whole). Each shown customer's email is
    /// looked up by its key.
    /// </summary>
    internal const string CustomersSql = """
        SELECT s.customer_id, (SELECT c.email FROM customers c WHERE c.shop_id = s.shop_id AND c.id = s.customer_id), s.segment, s.churn_probability, s.expected_orders_90, s.expected_value_365, s.orders, s.days_since_last,
               s.total_spend, s.model_version, s.model_kind, s.scored_at, s.reasons::text
        FROM (SELECT s.* FROM unnest($2::text[]) AS g(segment)
              CROSS JOIN LATERAL (SELECT * FROM churn_scores s WHERE s.shop_id = $1 AND s.segment = g.segment
                                  ORDER BY s.churn_probability * s.yearly_spend DESC, s.customer_id LIMIT $3) s
              ORDER BY s.churn_probability * s.yearly_spend DESC, s.customer_id LIMIT $3) s
        ORDER BY s.churn_probability * s.yearly_spend DESC, s.customer_id
        """;

    public async Task<ChurnSummary> SummaryAsync(long shopId, CancellationToken ct)
    {
        var models = (await registry.ListAsync(shopId, ct)).Where(m => m.Kind == ChurnModelTrainer.Kind).ToList();
        var active = models.FirstOrDefault(m => m.Status == "active");
        var newest = models.MaxBy(m => m.Version);
        var run = (await registry.TrainingRunsAsync(shopId, ct, ChurnModelTrainer.Kind, limit: 1)).FirstOrDefault();
        var counts = new Dictionary<string, (long N, decimal Risk)>();
        DateTimeOffset? scoredAt = null;
        ChurnLines? scoredOn = null;
        await using (var cmd = db.CreateCommand(SummarySql))
        {
            cmd.Parameters.Add(Sql.Param(shopId));
            await using var r = await cmd.ExecuteReaderAsync(ct);
            while (await r.ReadAsync(ct))
            {
                counts[r.GetString(0)] = (r.GetInt32(1), ChurnSegments.AtStake(r.GetString(0)) ? Math.Round(r.GetDecimal(2), 2) : 0m);
                if (!r.IsDBNull(3)) scoredAt = r.GetFieldValue<DateTimeOffset>(3);
                if (!r.IsDBNull(4)) scoredOn = System.Text.Json.JsonSerializer.Deserialize<ChurnLines>(r.GetString(4));
            }
        }
        var o = options.Value;
        // The lines the counted run bucketed its customers by (a version activated since moves them only once it has scored);
        // the active version's for counts written before 7 Dec 2026, which kept none.
        var lines = scoredOn ?? ChurnLines.For(o, active?.Metrics ?? default);
        var segments = ChurnSegments.All.Select(s => new ChurnSegmentView(s, ChurnSegments.Describe(s, lines, o), counts.GetValueOrDefault(s).N, counts.GetValueOrDefault(s).Risk)).ToList();
        // The newest word first: the last run's error, else why the last model trained is not served.
        string? notYet = active is not null ? null
            : run is { State: not "completed" } ? run.Error ?? $"The last training {run.State}."
            : newest is { Status: "candidate" } ? $"The last churn model (version {newest.Version}) is not served: {newest.StatusReason}."
            : run is null ? "No churn model has been trained yet: training runs nightly and after the history backfill."
            : "The last churn model did not pass the promotion gate.";
        var model = active is null ? new ChurnModelView(null, null, null, null, null, null, null, notYet, scoredAt) : new ChurnModelView(active.Version,
            Str(active.Metrics, "Kind"), WithoutKind(Str(active.Metrics, "Reason")), active.Metrics.TryGetProperty("HorizonDays", out var h) ? h.GetInt32() : null,
            Num(active.Metrics, "RocAuc"), Num(active.Metrics, "RecencyRocAuc"), Str(active.Metrics, "SpendModel"), null, scoredAt,
            Num(active.Metrics, "Brier"), Num(active.Metrics, "BaseRateBrier"), Num(active.Metrics, "ShrunkToward"), Num(active.Metrics, "ShrunkBrier"),
            Str(active.Metrics, "HorizonRule"), Int(active.Metrics, "HeldOutCustomers"), Num(active.Metrics, "ForecastPurchaseDays"), Int(active.Metrics, "ActualPurchaseDays"));
        return new ChurnSummary(model, segments, segments.Sum(s => s.ValueAtRisk), segments.Sum(s => s.Customers));
    }

    public async Task<List<ChurnDayView>> DaysAsync(long shopId, int days, CancellationToken ct)
    {
        await using var cmd = db.CreateCommand("""
            SELECT day, segment, customers, value_at_risk FROM churn_segment_days
            WHERE shop_id = $1 AND day > (SELECT max(day) FROM churn_segment_days WHERE shop_id = $1) - $2 ORDER BY day, segment
            """);
        cmd.Parameters.Add(Sql.Param(shopId));
        cmd.Parameters.Add(Sql.Param(days));
        var list = new List<ChurnDayView>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct)) list.Add(new(r.GetFieldValue<DateOnly>(0), r.GetString(1), r.GetInt32(2), r.GetDecimal(3)));
        return list;
    }

    /// <summary>Customers of a segment (or all), riskiest first; <paramref name="limit"/> null = all (the export).</summary>
    public async Task<List<ChurnCustomerView>> CustomersAsync(long shopId, string? segment, int? limit, CancellationToken ct)
    {
        await using var cmd = db.CreateCommand(CustomersSql);
        cmd.Parameters.Add(Sql.Param(shopId));
        cmd.Parameters.Add(Sql.Param(segment is null ? ChurnSegments.All : [segment]));
        cmd.Parameters.Add(Sql.Param((object?)limit ?? new TypedNull(NpgsqlTypes.NpgsqlDbType.Integer)));
        var list = new List<ChurnCustomerView>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
        {
            var reasons = JsonSerializer.Deserialize<List<JsonElement>>(r.GetString(12))!
                .Select(x => new ChurnReasonView(x.GetProperty("feature").GetString()!, x.GetProperty("text").GetString()!, x.GetProperty("contribution").GetDouble())).ToList();
            list.Add(new(r.GetInt64(0), r.IsDBNull(1) ? null : r.GetString(1), r.GetString(2), r.GetDouble(3), r.GetDouble(4), r.IsDBNull(5) ? null : r.GetDecimal(5),
                r.GetInt32(6), r.GetDouble(7), r.GetDecimal(8), r.GetInt32(9), r.GetString(10), r.GetFieldValue<DateTimeOffset>(11), reasons));
        }
        return list;
    }

    /// <summary>The CSV the merchant downloads: one row per scored customer, RFC 4180 quoting, formulas neutralised.</summary>
    public static string Csv(IEnumerable<ChurnCustomerView> rows)
    {
        var b = new StringBuilder("customer_id,email,segment,churn_probability,expected_orders_90_days,predicted_value_365_days,orders,days_since_last_order,total_spend,model_version,model_kind,scored_at,reasons\r\n");
        foreach (var c in rows)
            b.Append(string.Join(',', new[]
            {
                c.CustomerId.ToString(CultureInfo.InvariantCulture), Cell(c.Email), c.Segment, c.ChurnProbability.ToString("0.0000", CultureInfo.InvariantCulture),
                c.ExpectedOrders90.ToString("0.000", CultureInfo.InvariantCulture), c.PredictedValue?.ToString("0.00", CultureInfo.InvariantCulture) ?? "",
                c.Orders.ToString(CultureInfo.InvariantCulture), c.DaysSinceLastOrder.ToString("0", CultureInfo.InvariantCulture),
                c.TotalSpend.ToString("0.00", CultureInfo.InvariantCulture), c.ModelVersion.ToString(CultureInfo.InvariantCulture), c.ModelKind,
                c.ScoredAt.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture), Cell(string.Join("; ", c.Reasons.Select(r => r.Text))),
            })).Append("\r\n");
        return b.ToString();
    }

    // Why the apostrophe: a cell starting with = + - @ would run as a formula in a spreadsheet.
    private static string Cell(string? s)
    {
        if (string.IsNullOrEmpty(s)) return "";
        if (s[0] is '=' or '+' or '-' or '@' or '\t' or '\r') s = "'" + s;
        return s.IndexOfAny([',', '"', '\r', '\n']) >= 0 ? "\"" + s.Replace("\"", "\"\"") + "\"" : s;
    }

    /// <summary>The trainer's reason names the kind first ("probabilistic: its held-out …"); the page names it already.</summary>
    private static string? WithoutKind(string? reason) =>
        reason is not null && reason.IndexOf(": ", StringComparison.Ordinal) is > 0 and var i && reason[..i] is "probabilistic" or "discriminative" ? reason[(i + 2)..] : reason;

    private static string? Str(JsonElement e, string name) => e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
    private static int? Int(JsonElement e, string name) => e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out var i) ? i : null;
    private static double? Num(JsonElement e, string name) => e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetDouble() : null;
}

public static class ChurnAdminApi
{
    public static RouteGroupBuilder MapChurnAdmin(this RouteGroupBuilder api)
    {
        api.MapGet("/churn", async (ChurnStore store, ShopScope scope, CancellationToken ct) => TypedResults.Ok(await store.SummaryAsync(scope.ShopId, ct)));
        api.MapGet("/churn/customers", CustomersAsync);
        api.MapGet("/churn/export.csv", ExportAsync);
        return api;
    }

    private static async Task<Results<Ok<List<ChurnCustomerView>>, ValidationProblem>> CustomersAsync(ChurnStore store, ShopScope scope, string? segment, int? limit,
        CancellationToken ct)
    {
        if (Problem(segment, limit) is { } p) return p;
        return TypedResults.Ok(await store.CustomersAsync(scope.ShopId, segment, limit ?? 100, ct));
    }

    private static async Task<Results<FileContentHttpResult, ValidationProblem>> ExportAsync(ChurnStore store, ShopScope scope, string? segment, CancellationToken ct)
    {
        if (Problem(segment, null) is { } p) return p;
        var csv = ChurnStore.Csv(await store.CustomersAsync(scope.ShopId, segment, null, ct));
        return TypedResults.File(Encoding.UTF8.GetBytes(csv), "text/csv; charset=utf-8", $"churn-{segment ?? "all"}-{DateTime.UtcNow:yyyy-MM-dd}.csv");
    }

    private static ValidationProblem? Problem(string? segment, int? limit)
    {
        var errors = new Dictionary<string, string[]>();
        if (segment is not null && !ChurnSegments.All.Contains(segment)) errors["segment"] = [$"segment must be one of {string.Join(", ", ChurnSegments.All)}"];
        if (limit is < 1 or > 1000) errors["limit"] = ["limit must be between 1 and 1000"];
        return errors.Count == 0 ? null : TypedResults.ValidationProblem(errors);
    }
}
