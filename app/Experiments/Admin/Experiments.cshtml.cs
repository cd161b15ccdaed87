using Npgsql;
using PluginApp.Admin.Shell;
using PluginApp.Data;
using PluginApp.StoreData;

namespace PluginApp.Experiments.Admin;

/// <summary>Every experiment a feature runs: arms, exposures, the metric per arm, the lift with its intervals over time, guardrails, a verdict, and the settings.</summary>
public sealed class ExperimentsPageModel(ExperimentKinds kinds, ExperimentResults results, NpgsqlDataSource db, ShopScope scope) : AdminPageModel
{
    public List<ExperimentReport> Reports { get; private set; } = [];

    /// <summary>The currency revenue and margin per visitor are in (the shop's, else its orders').</summary>
    public string Currency { get; private set; } = "";

    public async Task OnGetAsync(CancellationToken ct)
    {
        ViewData["Title"] = "Experiments";
        foreach (var k in kinds.All) Reports.Add(await results.ReportAsync(scope.ShopId, k.Key, ct));
        Currency = await ShopCurrency.ReadAsync(db, scope.ShopId, ct);
    }
}
