using PluginApp.Admin.Shell;
using PluginApp.Admin.Switches;
using PluginApp.Data;
using PluginApp.Training;

namespace PluginApp.Recommendations.Admin;

/// <summary>The recommender's versions (active and candidates) with their held-out metrics, training runs, the upsell switch, and a preview.</summary>
public sealed class UpsellsModel(ModelRegistry registry, ModelKinds kinds, AiFeatureSwitches switches, CatalogCache catalogs, ShopScope scope,
    TimeProvider clock) : AdminPageModel
{
    public ModelKind Kind { get; } = kinds[RecommenderTrainer.Kind];
    public List<ModelEntry> Models { get; private set; } = [];
    public List<TrainingRunView> Runs { get; private set; } = [];
    public FeatureSwitch Switch { get; private set; } = null!;
    public List<string> ProductTitles { get; private set; } = [];
    public DateTimeOffset Now { get; private set; }

    public async Task OnGetAsync(CancellationToken ct)
    {
        ViewData["Title"] = "Upsells and models";
        Now = clock.GetUtcNow();
        Models = (await registry.ListAsync(scope.ShopId, ct)).Where(m => m.Kind == Kind.Name).ToList();
        Runs = await registry.TrainingRunsAsync(scope.ShopId, ct, Kind.Name, limit: 20);
        Switch = (await switches.GetAsync(scope.ShopId, ct)).Single(s => s.Feature == UpsellFeature.Name);
        var catalog = await catalogs.GetAsync(scope.ShopId, ct);
        ProductTitles = catalog.Bestsellers.Select(id => catalog.Products.GetValueOrDefault(id)?.Title).OfType<string>().Distinct().Take(50).ToList();
    }

    public ModelEntry? Active => Models.FirstOrDefault(m => m.Status == "active");

    public double? Metric(ModelEntry m, string? name) => PromotionGate.Metric(m.Metrics, name);

    /// <summary>The gate the registry applies (<see cref="PromotionGate"/>) to an inactive version.</summary>
    public bool CanPromote(ModelEntry m) => m.Status != "active" && PromotionGate.Compare(Kind, m.Metrics, Active?.Metrics).Passes;

    public bool CanRollBack => Models.Any(ModelRegistry.IsRollbackTarget);
}
