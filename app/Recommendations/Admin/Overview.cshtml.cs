using PluginApp.Admin.Shell;
using PluginApp.Data;
using PluginApp.Training;

namespace PluginApp.Recommendations.Admin;

/// <summary>What the AI did and earned per day over a window, the holdout comparison, how answers were produced, and model health.</summary>
public sealed class OverviewModel(UpsellStats stats, ModelRegistry registry, ModelKinds kinds, Npgsql.NpgsqlDataSource db, ShopScope scope, TimeProvider clock,
    Experiments.ExperimentResults experiments) : AdminPageModel
{
    public List<Governance.AlertView> Alerts { get; private set; } = [];
    public DayWindow Window { get; private set; } = null!;
    public string Currency { get; private set; } = "USD";
    public List<UpsellDay> Days { get; private set; } = [];
    public HoldoutComparison Holdout { get; private set; } = null!;

    /// <summary>
    /// The upsell experiment's verdict as the Experiments page gives it, from intervals that stay valid however often they
    /// are read. Why not the overview's own intervals: they are fixed-horizon 95 % intervals over the chosen days, which,
    /// read every day, show a difference where there is none about one time in four; until 4 Dec 2026 this page called a
    /// lift real on them while the Experiments page said "no difference shown yet".
    /// </summary>
    public string? HoldoutVerdict { get; private set; }
    public List<(string Path, long Answers)> PathMix { get; private set; } = [];
    public List<(ModelKind Kind, ModelEntry? Active)> Health { get; private set; } = [];
    public DateTimeOffset Now { get; private set; }

    public async Task OnGetAsync(int? days, CancellationToken ct)
    {
        ViewData["Title"] = "Overview";
        Now = clock.GetUtcNow();
        var (zone, currency) = await stats.ShopAsync(scope.ShopId, ct);
        Currency = currency;
        Window = DayWindow.Ending(Now, zone, DayWindow.Choices.Contains(days ?? 0) ? days!.Value : 30);
        Days = await stats.DaysAsync(scope.ShopId, Window, ct);
        Holdout = await stats.HoldoutAsync(scope.ShopId, Window, ct);
        HoldoutVerdict = (await experiments.ReportAsync(scope.ShopId, UpsellExperiment.Key, ct, history: false)).Verdicts.FirstOrDefault();
        PathMix = await stats.PathMixAsync(scope.ShopId, Window, ct);
        Alerts = await Governance.ModelMonitor.AlertsAsync(db, scope.ShopId, openOnly: true, ct);
        var models = await registry.ListAsync(scope.ShopId, ct);
        Health = kinds.All.Select(k => (k, models.FirstOrDefault(m => m.Kind == k.Name && m.Status == "active"))).ToList();
    }

    public static string PathName(string path) => path switch
    {
        // Within the chart's 32 characters a label (longer ones were cut: "Model (similar items and bought…").
        "model" => "Model: similar, bought together",
        "co_occurrence" => "Bought together only",
        "popularity" => "Bestsellers (chosen per store)",
        "bestsellers" => "Store bestsellers",
        UpsellStats.HoldoutPath => "Holdout (bestsellers)",
        UpsellFeature.SwitchedOff => "Switched off",
        // Any other (a guard's refusal, such as a risky shopper's) as the decision log names it (until 7 Dec 2026 the bare
        // "risky_session").
        _ => Governance.Admin.DecisionsModel.PathName(path, fallback: false) is var name && name.Length > 0
            ? char.ToUpperInvariant(name[0]) + name[1..] : path,
    };
}
