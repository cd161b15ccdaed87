using System.Globalization;
using Npgsql;
using PluginApp.Admin.Shell;
using PluginApp.Data;

namespace PluginApp.Risk.Settings;

/// <summary>
/// The merchant's risk thresholds and fulfillment holds. Preview (the page again with <c>mediumFrom</c> and
/// <c>highFrom</c>) puts the backtest of the current thresholds beside the proposed ones on the store's own labelled
/// orders, before anything is saved; Save sends the thresholds to PUT /api/admin/risk/thresholds, the holds to PUT
/// /api/admin/risk/holds.
/// </summary>
public sealed class RiskSettingsModel(RiskBacktest backtest, NpgsqlDataSource db, ShopScope scope) : AdminPageModel
{
    public RiskThresholds Current { get; private set; } = RiskThresholds.Default;
    public RiskHoldSettings Holding { get; private set; } = RiskHoldSettings.Default(null);
    public BacktestView? Preview { get; private set; }
    public Dictionary<string, string[]> PreviewProblems { get; private set; } = [];
    /// <summary>What the threshold fields show: the proposed values as typed, or the current ones.</summary>
    public string Medium { get; private set; } = "";
    public string High { get; private set; } = "";
    public string Currency { get; private set; } = "";

    public async Task OnGetAsync(string? mediumFrom, string? highFrom, CancellationToken ct)
    {
        ViewData["Title"] = "Risk settings";
        Current = await backtest.CurrentAsync(scope.ShopId, ct);
        Currency = await CurrencyAsync(ct);
        Holding = await RiskHoldSettings.ReadAsync(db, scope.ShopId, Currency, ct);
        Medium = mediumFrom?.Trim() ?? Number(Current.MediumFrom);
        High = highFrom?.Trim() ?? Number(Current.HighFrom);
        if (mediumFrom is null && highFrom is null) return;
        var body = new RiskAdminApi.ThresholdsBody(Parse(Medium), Parse(High));
        PreviewProblems = RiskAdminApi.Problems(body);
        if (PreviewProblems.Count == 0) Preview = await backtest.RunAsync(scope.ShopId, new RiskThresholds(body.MediumFrom!.Value, body.HighFrom!.Value), ct);
    }

    public string? Problem(string field) => PreviewProblems.TryGetValue(field, out var p) ? string.Join(" ", p) : null;

    public static string Number(double v) => v.ToString("0.###", CultureInfo.InvariantCulture);

    private static double? Parse(string s) =>
        double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) && double.IsFinite(v) ? v : null;

    /// <summary>One line of the comparison: its name, and each side's value as shown and as a raw number (for checks).</summary>
    public sealed record Line(string Metric, string Label, string Current, string Proposed, string CurrentValue, string ProposedValue);

    public IEnumerable<Line> Lines(BacktestView v)
    {
        Line Count(string metric, string label, Func<BacktestResult, int> f) => new(metric, label, Format.Count(f(v.Current)), Format.Count(f(v.Proposed)),
            f(v.Current).ToString(CultureInfo.InvariantCulture), f(v.Proposed).ToString(CultureInfo.InvariantCulture));
        yield return Count("high", "Flagged HIGH", r => r.High);
        yield return Count("medium", "Flagged MEDIUM", r => r.Medium);
        yield return Count("flagged", "Flagged in all (the review queue's load)", r => r.Flagged);
        yield return Count("fraudCaught", $"Fraud caught (of {Format.Count(v.KnownFraud)} known)", r => r.FraudCaught);
        yield return Count("fraudMissed", "Fraud missed (left LOW)", r => r.FraudMissed);
        yield return Count("falsePositives", "False positives (flagged, known legitimate)", r => r.FalsePositives);
        yield return new Line("revenueHeld", "Revenue held for review", Format.Money(v.Current.RevenueHeld, Currency), Format.Money(v.Proposed.RevenueHeld, Currency),
            v.Current.RevenueHeld.ToString("0.00", CultureInfo.InvariantCulture), v.Proposed.RevenueHeld.ToString("0.00", CultureInfo.InvariantCulture));
    }

    private async Task<string> CurrencyAsync(CancellationToken ct)
    {
        await using var cmd = db.CreateCommand(
            $"SELECT coalesce({StoreData.ShopCurrency.Of("$1")}, '')");
        cmd.Parameters.Add(Sql.Param(scope.ShopId));
        return await cmd.ExecuteScalarAsync(ct) as string ?? "";
    }
}
