using Microsoft.Extensions.Options;
using PluginApp.Admin.Shell;
using PluginApp.Admin.Switches;
using PluginApp.Compliance;
using PluginApp.Data;
using PluginApp.Training;

namespace PluginApp.Admin.Disclosure;

/// <summary>
/// The AI-use disclosure: one card per model kind the app runs, written from what each kind registers (purpose, inputs,
/// outputs, where it shows, fallback, oversight) and from the registry and options (version, quality, how often it is
/// trained), the switches, what is kept and for how long, and the notice shoppers see.
/// </summary>
public sealed class DisclosureModel(ModelKinds kinds, ModelRegistry registry, AiFeatures features, AiFeatureSwitches switches, ShopperNotices notices,
    PersonalDataCatalog catalog, IOptions<TrainingOptions> training, IOptions<AdminOptions> admin, ShopScope scope, TimeProvider clock) : AdminPageModel
{
    public IReadOnlyCollection<ModelKind> Kinds => kinds.All;
    public List<ModelEntry> Active { get; private set; } = [];
    public List<(AiFeature Feature, FeatureSwitch Switch)> Switches { get; private set; } = [];
    public string? Notice { get; private set; }
    public IReadOnlyList<RetentionRule> Retention => catalog.Retention;
    public TrainingOptions Training => training.Value;
    public string? Contact => admin.Value.Contact;
    public DateTimeOffset Now { get; private set; }

    public async Task OnGetAsync(CancellationToken ct)
    {
        ViewData["Title"] = "AI use";
        Now = clock.GetUtcNow();
        Active = (await registry.ListAsync(scope.ShopId, ct)).Where(m => m.Status == "active").ToList();
        var state = await switches.GetAsync(scope.ShopId, ct);
        Switches = features.All.Select(f => (f, state.Single(s => s.Feature == f.Name))).ToList();
        Notice = await notices.GetAsync(scope.ShopId, ct);
    }
}
