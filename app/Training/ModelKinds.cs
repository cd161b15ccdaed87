using System.Text.Json;

namespace PluginApp.Training;

/// <summary>
/// One kind of model the app trains per shop (the recommender now; order risk, churn and purchase intent next), declared
/// by its feature in one place: how it is trained, how a candidate is judged against the active version, what to do when
/// a version becomes active, and what the merchant is told about it (the AI-use disclosure reads these).
/// </summary>
/// <param name="Name">The registry's kind, e.g. "recommender".</param>
/// <param name="PromotionMetric">A key of the trained model's metrics; higher is better. A candidate becomes active only if it is not worse.</param>
/// <param name="Purpose">What it decides, in the merchant's words.</param>
/// <param name="Inputs">What data it learns from and looks at.</param>
/// <param name="ShownWhere">Where its decisions show, and to whom.</param>
/// <param name="Fallback">What happens when it has no model, or fails.</param>
public sealed record ModelKind(string Name, string Title, string PromotionMetric, Type Trainer, string Purpose, string Inputs, string ShownWhere,
    string Fallback)
{
    /// <summary>The promotion metric as the admin pages and the AI-use disclosure name it ("NDCG@10", "PR-AUC"); its key
    /// when none is given. Until 6 Dec 2026 the pages showed the key itself ("held-out ServedNdcgAt10").</summary>
    public string MetricName { get => _metricName ?? PromotionMetric; init => _metricName = value; }
    private readonly string? _metricName;

    /// <summary>The metrics key of the same metric for the baseline measured in the same run (e.g. popularity), if the kind has one.</summary>
    public string? BaselineMetric { get; init; }

    /// <summary>
    /// A metrics key every version measured the kind's current way stores, and why a version without it is not comparable:
    /// an active version without it is replaced by a new version that has it, whatever their figures (their held-out data
    /// differ in kind, not only in window). Purchase intent: since 6 Dec 2026 it trains and is judged without the carts the
    /// offers showed something, and a version judged on them kept serving while its figure, on other carts, beat the new ones'.
    /// </summary>
    public (string Key, string Why)? ComparableSince { get; init; }

    /// <summary>
    /// The figure a version measured before <see cref="PromotionMetric"/> was stored gives instead (order risk: the model's
    /// own PR-AUC, before its served one), read by <see cref="PromotionGate.Figure"/> wherever a version's figure is judged or
    /// shown. Why: such a version otherwise had none, so it skipped the baseline gate and read "not measured yet".
    /// </summary>
    public string? PromotionMetricBefore { get; init; }

    /// <summary>Whether a staged release counts each customer once a day rather than each decision: for a kind that scores every
    /// customer at each run, where a run's count says how many runs came, not how much was seen (churn).</summary>
    public bool ReleaseCountsCustomersDaily { get; init; }

    /// <summary>What the baseline is, in the merchant's words (the disclosure's "against … for …").</summary>
    public string BaselineName { get; init; } = "a simple baseline";

    /// <summary>The admin page where the merchant sees and steers this kind's model (the Overview's Model health links to it).</summary>
    public (string Path, string Title) AdminPage { get; init; } = ("/admin/governance", "Model governance");

    /// <summary>What a store needs before this kind trains a model at all, if anything (the disclosure card).</summary>
    public string? Requirement { get; init; }

    /// <summary>Whether a model must also be at least as good as <see cref="BaselineMetric"/> (measured in the same run) to become active.</summary>
    public bool BaselineGate { get; init; }

    /// <summary>How far below the baseline a model may be and still pass <see cref="BaselineGate"/> (0: not below it at all).</summary>
    public double BaselineTolerance { get; init; }

    /// <summary>What it outputs, in the merchant's words (the disclosure card).</summary>
    public string Outputs { get; init; } = "";

    /// <summary>What the merchant can see, override or turn off.</summary>
    public string Oversight { get; init; } = "";

    /// <summary>Called on the instance that activated a version (the others learn it from model_changed), through <see cref="Activated"/>.</summary>
    public Action<IServiceProvider, long>? OnActivated { get; init; }

    /// <summary>
    /// A version became active on this instance (trained, promoted, rolled back, or out of its canary): the kind's circuit
    /// breaker starts clean, a cut-off ending with a "restored" event, and then the kind's own <see cref="OnActivated"/>.
    /// Why here and not in each kind: until 6 Dec 2026 only the recommender's reset its breaker, so a new order-risk or
    /// purchase-intent version stayed cut off for the rest of the old one's rest (up to an hour of the rule prior or the
    /// store's rate) while the governance page, which reads events since the version's activation, said it was answering.
    /// </summary>
    public void Activated(IServiceProvider services, long shopId)
    {
        if (Breaker) services.GetRequiredService<Governance.ModelBreakers>().Reset(shopId, Name);
        OnActivated?.Invoke(services, shopId);
    }

    /// <summary>Its place in the AI inventory: the risk it carries, who answers for it, where its data lives and the controls it has.</summary>
    public AiRisk Risk { get; init; } = AiRisk.Unassessed;

    /// <summary>The merchant's switch (an AI feature's name) that turns this model off for the shop.</summary>
    public string? Switch { get; init; }

    /// <summary>The decision kind its decisions are logged under (Governance.DecisionKinds).</summary>
    public string? DecisionKind { get; init; }

    /// <summary>
    /// Which of its logged decisions drift compares, as an SQL condition on the decisions row <c>d</c>: those of one kind of
    /// population, week after week. Every one by default; churn's log holds whole populations at some runs (a version's first,
    /// a shadow's, a canary's) and only changes of segment at the others, which differ by design.
    /// </summary>
    public string DriftSample { get; init; } = "true";

    /// <summary>Whether a circuit breaker cuts it off after repeated errors or overruns (and its fallback answers).</summary>
    public bool Breaker { get; init; }

    /// <summary>Who answers for it.</summary>
    public string Owner { get; init; } = "the app's machine-learning engineer on call";

    /// <summary>Where its data and its models are kept.</summary>
    public string DataStores { get; init; } = "";

    /// <summary>
    /// Whether a new version that passes the gate is released in stages (Governance.StagedReleases): first in shadow (its
    /// answers logged beside the active version's, never shown), then for a canary share of visitors or orders with automatic
    /// rollback, then to everyone. Its serving must log shadow answers and mark canary ones (see the recommender and order risk).
    /// </summary>
    public bool StagedRelease { get; init; }

    /// <summary>
    /// Whether this build can serve a version from its stored file (false, or an <see cref="InvalidDataException"/>, when it
    /// was written in a layout or on features this build no longer reads); null when every stored file serves, or when the
    /// kind's release answers without its active version (order risk scores its shadow beside the rule prior). Read through
    /// <see cref="CanServe"/>.
    /// </summary>
    public Func<byte[], bool>? Serves { get; init; }

    /// <summary>
    /// Whether this build can serve <paramref name="artifact"/>. Why the registry asks: an active version it cannot read
    /// answers nothing, so a release in shadow beside it logged no decision, never ended, and held the kind's nightly
    /// trainings back; its store kept the fallback until the merchant promoted by hand (until 7 Dec 2026).
    /// </summary>
    public bool CanServe(byte[] artifact)
    {
        if (Serves is null) return true;
        try { return Serves(artifact); }
        catch (InvalidDataException) { return false; }
    }

    /// <summary>What a canary's share is a share of ("visitors", "orders"); each is kept on one version by a hash.</summary>
    public string CanaryUnit { get; init; } = "visitors";

    /// <summary>Called on the instance that moved a version into or out of shadow or canary (the others learn it from model_changed).</summary>
    public Action<IServiceProvider, long>? OnReleaseChanged { get; init; }

    /// <summary>
    /// The kind's own canary guardrail beyond failures (the recommender: click-through against the active version's), or
    /// null when there is not enough to read yet.
    /// </summary>
    public Func<IServiceProvider, ReleaseWindow, CancellationToken, Task<GuardrailReading?>>? ReleaseGuardrail { get; init; }
}

/// <summary>A canary under watch: the shop, the candidate's and the active version, and since when it has answered.</summary>
public sealed record ReleaseWindow(long ShopId, int Candidate, int? Active, DateTimeOffset From);

/// <summary>A guardrail's reading, in words: whether it broke, and the numbers.</summary>
/// <param name="Read">False while too few units were seen on either side to read it (it cannot have broken then).</param>
/// <param name="Readable">False when waiting cannot make it read: its units are a state the canary's share of a small
/// store fixes (churn's customers), not a count that grows with time.</param>
public sealed record GuardrailReading(bool Breached, string Detail, bool Read = true, bool Readable = true);

/// <summary>
/// A model kind's risk as the field scores it: impact 1–5 (how bad a wrong decision is for the merchant or their
/// customers) times likelihood 1–5 (how often its decisions will be wrong on a typical store), each with its reasoning, and
/// how quickly a wrong decision is noticed. 10 and above is high: the kind must then have a switch, a circuit breaker and
/// a logged decision for every answer (checked when the app starts).
/// </summary>
public sealed record AiRisk(int Impact, int Likelihood, string ImpactWhy, string LikelihoodWhy, string Detectability)
{
    public const int HighFrom = 10;
    public static readonly AiRisk Unassessed = new(5, 5, "not assessed", "not assessed", "not assessed");

    public int Score => Impact * Likelihood;

    public string Level => Score >= 20 ? "critical" : Score >= HighFrom ? "high" : Score >= 5 ? "medium" : "low";
}

/// <summary>A model trained for one shop, ready for the registry.</summary>
/// <param name="Metrics">Held-out metrics, serialized as the registry's metrics; must contain the kind's promotion metric.</param>
public sealed record TrainedModel(byte[] Artifact, object Parameters, object Metrics, long Rows, DateTimeOffset? DataFrom, DateTimeOffset? DataTo)
{
    public double MetricValue(string name) =>
        JsonSerializer.SerializeToElement(Metrics).TryGetProperty(name, out var v) && v.TryGetDouble(out var d) ? d
            : throw new InvalidOperationException($"the trained model's metrics have no numeric '{name}'");
}

/// <summary>Trains one kind of model for one shop: data in, a trained model out (the registry, the run record and the gate are not its concern).</summary>
public interface IModelTrainer
{
    Task<TrainedModel> TrainAsync(long shopId, CancellationToken ct);
}

/// <summary>Every model kind, by name.</summary>
public sealed class ModelKinds(IEnumerable<ModelKind> kinds)
{
    private readonly Dictionary<string, ModelKind> _byName = kinds.ToDictionary(k => k.Name, StringComparer.Ordinal);

    public IReadOnlyCollection<ModelKind> All => _byName.Values;

    public ModelKind this[string name] => _byName.TryGetValue(name, out var k) ? k : throw new KeyNotFoundException($"no model kind named '{name}' is registered");

    public bool Contains(string name) => _byName.ContainsKey(name);
}

public static class ModelKindExtensions
{
    /// <summary>Registers a model kind and its trainer: it is trained on the same triggers as every other kind and kept in the registry.</summary>
    public static IServiceCollection AddModelKind(this IServiceCollection services, ModelKind kind)
    {
        if (!typeof(IModelTrainer).IsAssignableFrom(kind.Trainer))
            throw new ArgumentException($"{kind.Name}: {kind.Trainer.Name} is not an {nameof(IModelTrainer)}", nameof(kind));
        services.AddTransient(kind.Trainer);
        return services.AddSingleton(kind);
    }
}
