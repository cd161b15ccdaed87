using Npgsql;
using PluginApp.Admin.Shell;
using PluginApp.Admin.Switches;
using PluginApp.Data;
using PluginApp.Training;

namespace PluginApp.Governance.Admin;

/// <summary>One model kind as the inventory shows it: what it is, its risk, and the state of each of its controls in this store.</summary>
public sealed record InventoryEntry(ModelKind Kind, ModelEntry? Active, AiFeature? Feature, FeatureSwitch? Switch, GovernanceEvent? Breaker,
    long Decisions, long Fallbacks);

/// <summary>
/// Model governance: the AI inventory (every model kind with its purpose, data, owner, fallback and risk score, written from
/// the same registrations as the AI-use disclosure), each kind's controls in this store (the switch, in one click, with
/// the reason; the circuit breaker; the decision log and how often a fallback answered), and what happened, with who, when
/// and why.
/// </summary>
public sealed class GovernanceModel(ModelKinds kinds, ModelRegistry registry, AiFeatures features, AiFeatureSwitches switches, NpgsqlDataSource db,
    StagedReleases releases, Microsoft.Extensions.Options.IOptions<GovernanceOptions> governance, ShopScope scope, TimeProvider clock) : AdminPageModel
{
    public static readonly TimeSpan Window = TimeSpan.FromDays(7);
    public List<InventoryEntry> Inventory { get; private set; } = [];
    public List<(AiFeature Feature, FeatureSwitch Switch)> Features { get; private set; } = [];
    public List<GovernanceEvent> Events { get; private set; } = [];
    public List<FeatureSwitchChange> SwitchHistory { get; private set; } = [];
    public List<DriftView> Drift { get; private set; } = [];
    public List<AlertView> Alerts { get; private set; } = [];
    public List<PerformanceView> Performance { get; private set; } = [];
    public List<GovernanceFeature.ReleaseKindView> Releases { get; private set; } = [];
    public DateTimeOffset Now { get; private set; }

    public async Task OnGetAsync(CancellationToken ct)
    {
        ViewData["Title"] = "Model governance";
        Now = clock.GetUtcNow();
        var models = await registry.ListAsync(scope.ShopId, ct);
        var state = await switches.GetAsync(scope.ShopId, ct);
        Events = await GovernanceEvents.ListAsync(db, scope.ShopId, 50, ct);
        SwitchHistory = await switches.HistoryAsync(scope.ShopId, ct);
        Drift = await ModelMonitor.LatestDriftAsync(db, scope.ShopId, ct);
        Alerts = await ModelMonitor.AlertsAsync(db, scope.ShopId, openOnly: false, ct);
        Performance = await FreshLabels.LatestAsync(db, scope.ShopId, ct);
        Releases = await GovernanceFeature.ReleaseKindsAsync(scope.ShopId, kinds, releases, db, governance.Value, ct);
        var counts = new Dictionary<string, (long All, long Fallback)>();
        await using (var cmd = db.CreateCommand("""
            SELECT kind, count(*), count(*) FILTER (WHERE fallback) FROM decisions WHERE shop_id = $1 AND decided_at >= $2 GROUP BY kind
            """))
        {
            cmd.Parameters.Add(Sql.Param(scope.ShopId));
            cmd.Parameters.Add(Sql.Param(Now - Window));
            await using var r = await cmd.ExecuteReaderAsync(ct);
            while (await r.ReadAsync(ct)) counts[r.GetString(0)] = (r.GetInt64(1), r.GetInt64(2));
        }
        Inventory = kinds.All.OrderByDescending(k => k.Risk.Score).ThenBy(k => k.Title, StringComparer.Ordinal).Select(k =>
        {
            var feature = k.Switch is null ? null : features.Find(k.Switch);
            var c = k.DecisionKind is null ? default : counts.GetValueOrDefault(k.DecisionKind);
            var active = models.FirstOrDefault(m => m.Kind == k.Name && m.Status == "active");
            // Why not a cut-off from before the active version: a version activated since starts with a clean record.
            var breaker = Events.FirstOrDefault(e => e.ModelKind == k.Name && e.Event is "cut_off" or "restored"
                                                     && !(e.Event == "cut_off" && (active?.ActivatedAt ?? active?.CreatedAt) > e.At));
            return new InventoryEntry(k, active, feature,
                state.FirstOrDefault(s => s.Feature == k.Switch), breaker, c.All, c.Fallback);
        }).ToList();
        Features = features.All.Select(f => (f, state.Single(s => s.Feature == f.Name))).ToList();
    }
}
