using Npgsql;
using PluginApp.Admin.Shell;
using PluginApp.Data;

namespace PluginApp.Churn.Admin;

/// <summary>
/// Churn segments: the model in use and why (or why there is none yet), the value at risk, segment sizes over time, and
/// one segment's customers with their reasons (<c>?segment=</c>, default the high-value at-risk ones), with CSV exports.
/// </summary>
public sealed class ChurnPageModel(ChurnStore store, NpgsqlDataSource db, ShopScope scope, Microsoft.Extensions.Options.IOptions<ChurnOptions> options) : AdminPageModel
{
    /// <summary>The customer tag a segment is written as (the prefix and the segment: what a merchant's Shopify segment or flow matches).</summary>
    public string Tag(string segment) => options.Value.TagPrefix + segment;

    public ChurnSummary Summary { get; private set; } = null!;
    public List<ChurnDayView> Days { get; private set; } = [];
    public List<ChurnCustomerView> Customers { get; private set; } = [];
    public string Segment { get; private set; } = ChurnSegments.HighValueAtRisk;
    public string Currency { get; private set; } = "";

    public async Task OnGetAsync(string? segment, CancellationToken ct)
    {
        ViewData["Title"] = "Churn segments";
        if (segment is not null && ChurnSegments.All.Contains(segment)) Segment = segment;
        Summary = await store.SummaryAsync(scope.ShopId, ct);
        Days = await store.DaysAsync(scope.ShopId, 90, ct);
        Customers = await store.CustomersAsync(scope.ShopId, Segment, 50, ct);
        Currency = await StoreData.ShopCurrency.ReadAsync(db, scope.ShopId, ct);
    }
}
