using PluginApp.Training;

namespace PluginApp.Recommendations;

/// <summary>
/// The recommender as a model kind: signals of the shop in, a bundle (ALS item side, bought-together, bestsellers, and which
/// of them serves) out. The gate compares the served candidate's held-out NDCG@10 (ServedNdcgAt10, a key older versions lack, so
/// the first version trained with candidates replaces theirs: their NdcgAt10 was ALS's while they served the blend, not
/// comparable); the baseline is popularity's NDCG@10 on the same split.
/// </summary>
public sealed class RecommenderTrainer(SignalStore signals, TimeProvider clock) : IModelTrainer
{
    public const string Kind = "recommender";

    /// <summary>Signals older than this are not read: their decayed weight is negligible.</summary>
    public static readonly TimeSpan History = TimeSpan.FromDays(730);

    public static readonly ModelKind Registration = new(Kind, "Upsell recommender", nameof(HeldOutMetrics.ServedNdcgAt10), typeof(RecommenderTrainer),
        Purpose: "Ranks the products shown in the Goes well with blocks on product and cart pages.",
        Inputs: "Order lines (minus refunds), cart contents and clicks and add-to-carts on its own blocks, by customer or anonymous visitor; no names, emails or addresses.",
        ShownWhere: "Shoppers see the ranked products in the theme blocks; each answer names the model version and experiment arm.",
        Fallback: "Store bestsellers under the same business rules when there is no model, it fails, or it takes longer than 50 ms.")
    {
        Risk = new AiRisk(2, 3,
            ImpactWhy: "A poor ranking shows less relevant products: some revenue is not earned, but nothing is charged, hidden from or decided about a shopper.",
            LikelihoodWhy: "On sparse stores a learned ranking often does no better than bestsellers; each version is measured against them on held-out orders, " +
                "and one that does worse against them than the active version does not serve. With too few held-out customers to tell, the bought-together mix serves unmeasured.",
            Detectability: "High: the holdout experiment compares revenue per visitor with bestsellers continuously, and every answer names its version."),
        Switch = "upsells", DecisionKind = "upsell", Breaker = true,
        DataStores = "Orders, carts and block events in the app's PostgreSQL; model files in its model registry (old versions kept 30 days).",
        OnActivated = (services, shopId) => services.GetRequiredService<ModelCache>().Invalidate(shopId),
        StagedRelease = true,
        OnReleaseChanged = (services, shopId) => services.GetRequiredService<ModelCache>().Invalidate(shopId),
        ReleaseGuardrail = ClickThroughGuardrail.ReadAsync,
        BaselineMetric = nameof(HeldOutMetrics.BaselineNdcgAt10),
        MetricName = "NDCG@10",
        AdminPage = ("/admin/upsells", "Models, training and preview"),
        BaselineName = "the store's bestsellers (popularity)",
        Outputs = "Up to 8 ranked products per block, each with its reason (often bought together, bought by the same customers, " +
                  "a store bestseller, or pinned by you). It never outputs a price, a discount or anything about the shopper.",
        Serves = artifact => RecommenderBundle.FromBytes(artifact) is not null,
        Oversight = "Your rules (stock, blocked and pinned products, price ratio, margin floor, variety) apply to every answer; you can " +
                    "preview any product, promote or roll back a model version, and switch upsells off (showing nothing or bestsellers).",
    };

    public async Task<TrainedModel> TrainAsync(long shopId, CancellationToken ct)
    {
        var data = await signals.LoadAsync(shopId, History, ct);
        var p = RecommenderTraining.Defaults;
        // Why the newest signal and not the clock: a replayed or quiet store is judged on its own timeline.
        var asOf = data.Count > 0 ? data.Max(s => s.At) : clock.GetUtcNow();
        var trained = await Task.Run(() => RecommenderTraining.Train(data, asOf, p), ct);
        return new TrainedModel(trained.Bundle.ToBytes(), p, trained.Metrics, trained.Interactions, trained.From, trained.To);
    }
}
