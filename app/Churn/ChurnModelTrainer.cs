using PluginApp.Governance;
using Npgsql;
using PluginApp.Ml.Churn;
using PluginApp.Training;

namespace PluginApp.Churn;

/// <summary>
/// The store's churn model (registry kind "churn"): <see cref="ChurnTrainer"/> fits BG/NBD with Gamma-Gamma and an ML.NET
/// classifier on <see cref="ChurnFeatures"/>, compares both with recency alone on a held-out time split, and keeps the one
/// that ranks better (the classifier only with enough held-out customers). A store too small for either gets the trainer's
/// "not enough data yet: N customers with repeat orders, M needed", shown with the training run. A model that ranks the
/// held-out customers no better than chance (<see cref="ChurnOptions.MinRocAuc"/>) is not registered, and one that ranks
/// them clearly worse than days since the last order alone does not pass the registry's gate: either way no segment is written.
/// </summary>
public sealed class ChurnModelTrainer(NpgsqlDataSource db, TimeProvider clock, Microsoft.Extensions.Options.IOptions<ChurnOptions> options) : IModelTrainer
{
    public const string Kind = "churn";

    /// <summary>
    /// The canary's guardrail beyond failures: the share of the customers it scores that land in a win-back segment (at risk
    /// or lapsing, and their high-value variants, the ones win-back emails and offers go to), against the other customers'.
    /// A state, not a window: every customer holds the version that last scored them.
    /// </summary>
    private static readonly ActionRateGuardrail WinBackRate = new($"""
        SELECT model_version = $3::int, count(*),
               count(*) FILTER (WHERE segment IN ({string.Join(", ", ChurnSegments.All.Where(ChurnSegments.AtStake).Select(s => $"'{s}'"))}))
        FROM churn_scores WHERE shop_id = $1
        GROUP BY 1
        """, "customers", "put in a win-back segment", "win-back emails would go to far more customers than the active version sends them to", "no model", State: true);

    public static readonly ModelKind Registration = new(Kind, "Churn and lifetime value", nameof(ChurnMetrics.RocAuc), typeof(ChurnModelTrainer),
        Purpose: "Estimates, for each customer, how likely they are not to order again within your store's usual time between orders, how many orders " +
                 "and how much spend to expect from them, and puts them in segments (active, at risk, lapsing, lost, and high-value variants) for win-back.",
        Inputs: "Each customer's orders in your store: dates, totals, discounts, refunds, cancellations and the product types bought. Names, emails and " +
                "addresses are not used.",
        ShownWhere: "Staff see the segments, probabilities and reasons on the Churn page; each customer gets a pluginapp: segment tag and metafields " +
                    "(churn probability, predicted value, segment) in Shopify, for Shopify Flow and email apps. Shoppers never see it.",
        Fallback: "With too few customers with repeat orders, no score at all and the page says how many are needed; with too few held-out customers for " +
                  "the classifier, the purchase-pattern model (BG/NBD) alone, marked as such. A model that ranks customers no better than chance, " +
                  "or clearly worse than days since the last order alone, is not served: no scores or tags, and the page says why.")
    {
        BaselineMetric = nameof(ChurnMetrics.RecencyRocAuc),
        MetricName = "ROC-AUC",
        AdminPage = ("/admin/churn", "Churn segments and the model behind them"),
        BaselineName = "days since the last order alone, on the same customers",
        // Why gate on it: a model that ranks customers clearly worse than recency alone would put the wrong ones in the
        // win-back segments. Why 0.02 below it still passes: that is about the held-out ROC-AUC's standard error at a few
        // hundred customers, and within it the model ranks as well as recency while also giving expected orders and value.
        BaselineGate = true, BaselineTolerance = 0.02,
        Requirement = "It needs at least 20 customers with orders on two different days.",
        Outputs = "Per customer: the probability of no order within the store's horizon (calibrated), expected orders in 30, 90 and 365 days, predicted " +
                  "value, a segment and the top reasons in words. The Churn page says how far the expected orders were from what happened over the latest " +
                  "horizon (they follow each customer's pace, not seasons or sales).",
        Oversight = "Segment thresholds are settings; tags the app writes all start with pluginapp: and it never adds or removes any other tag.",
        Serves = artifact => { using var model = PluginApp.Ml.Churn.ChurnModel.Load(new MemoryStream(artifact)); return true; },
        Risk = new AiRisk(2, 3,
            ImpactWhy: "A wrong segment sends a customer an ill-fitting email or win-back offer; nothing is charged or refused.",
            LikelihoodWhy: "Short store histories give uncalibrated probabilities: when the held-out Brier score is not better than the base rate's, the probabilities are pulled toward the latest churn rate and the page says so.",
            Detectability: "Low: whether a customer really churned is known only after the horizon (90 days by default)."),
        Switch = "churn-segments", DecisionKind = "churn",
        // Changes of segment, not a shadow's or a canary's entries, nor those of a version's first day, when it puts the store's
        // customers on its own lines: until 7 Dec 2026 a version's first run, logging a great share of the store, was the
        // reference the next weeks' few changes near the segment lines were compared with, and churn's outputs read as
        // drifting when nothing had moved.
        DriftSample = """
            d.decision_id ~ '^churn:[0-9]+:[0-9]+$' AND NOT EXISTS (SELECT 1 FROM models m WHERE m.shop_id = d.shop_id AND m.kind = 'churn'
              AND m.version = d.model_version AND d.decided_at < m.activated_at + interval '1 day')
            """,
        DataStores = "Orders and customers in the app's PostgreSQL; segments written to Shopify customer tags and metafields.",
        OnActivated = (services, shopId) => services.GetRequiredService<ChurnScheduler>().ScoreSoon(shopId),
        // Staged like the others, by customers; a stage changes at the next scoring run (daily, or now).
        StagedRelease = true, CanaryUnit = "customers", ReleaseGuardrail = WinBackRate.ReadAsync, ReleaseCountsCustomersDaily = true,
        OnReleaseChanged = (services, shopId) => services.GetRequiredService<ChurnScheduler>().ScoreSoon(shopId),
    };

    /// <summary>Held-out figures of the chosen kind beside the others', from one training run.</summary>
    /// <param name="ForecastPurchaseDays">BG/NBD fitted before the held-out window: its expected purchase days in the window for the
    /// <paramref name="HeldOutCustomers"/> (those who had bought by then), beside the <paramref name="ActualPurchaseDays"/> they had
    /// (<see cref="ChurnForecastCheck"/>); null in versions trained before 6 Dec 2026.</param>
    /// <param name="PrAuc">Average precision, tied scores counted fairly (<see cref="PluginApp.Ml.Metrics.BinaryMetrics.AveragePrecision"/>);
    /// until 5 Dec 2026 ML.NET's PR-AUC, which does not count ties fairly.</param>
    public sealed record ChurnMetrics(double RocAuc, double? PrAuc, double? Brier, double? BaseRateBrier, double? TopDecileLift, double? RecencyRocAuc,
        double? ProbabilisticRocAuc, double? DiscriminativeRocAuc, string Kind, string Reason, int HorizonDays, string HorizonRule, int HeldOutCustomers,
        int HeldOutChurned, int RepeatCustomers, int Customers, string? SpendModel, double? ShrunkToward = null, double? ShrunkBrier = null,
        double? ForecastPurchaseDays = null, int? ActualPurchaseDays = null);

    public async Task<TrainedModel> TrainAsync(long shopId, CancellationToken ct)
    {
        var now = clock.GetUtcNow();
        var data = await ChurnHistories.LoadAsync(db, shopId, now, ct);
        var customers = data.Customers;
        var result = ChurnTrainer.Train(customers, data.Now, null, ct);
        if (result.Model is not { } model) throw new NotEnoughDataException(result.NotEnoughData ?? "not enough data yet");
        using (model)
        {
            // Why not enough history: a store younger than the horizon has no customer with an order before the held-out
            // cutoff, so nothing can be judged (until 5 Dec 2026 this was an internal error, and every night's run failed).
            var chosen = result.Evaluation(model.Kind == ChurnModelKind.Discriminative ? ChurnTrainer.Discriminative : ChurnTrainer.Probabilistic)
                         ?? throw new NotEnoughDataException(System.FormattableString.Invariant(
                             $"not enough history yet: whether a customer orders again is judged over {result.HorizonDays} days, so a model is checked on the customers who had ordered {result.HorizonDays} days ago, and none had"));
            if (!double.IsFinite(chosen.Metrics.RocAuc))
                throw new NotEnoughDataException($"not enough data yet: the {result.HeldOutRows} held-out customers all churned or all came back, so no model can be judged");
            if (chosen.Metrics.RocAuc < options.Value.MinRocAuc)
                throw new NotEnoughDataException(System.FormattableString.Invariant(
                    $"no churn model yet: on the {result.HeldOutRows} held-out customers the best model ({(model.Kind == ChurnModelKind.Discriminative ? "the classifier" : "BG/NBD")}) separates those who ordered again from those who did not with ROC-AUC {chosen.Metrics.RocAuc:F3}, where 0.5 is chance and {options.Value.MinRocAuc:F2} is needed (days since the last order alone: {result.Evaluation(ChurnTrainer.RecencyOnly)?.Metrics.RocAuc ?? double.NaN:F3}); segments from it would group customers at random"));
            var metrics = new ChurnMetrics(chosen.Metrics.RocAuc, F(chosen.Metrics.AveragePrecision), F(chosen.Metrics.Brier), F(chosen.BaseRateBrier), F(chosen.TopDecileLift),
                F(result.Evaluation(ChurnTrainer.RecencyOnly)?.Metrics.RocAuc),
                F(result.Evaluation(ChurnTrainer.Probabilistic)?.Metrics.RocAuc),
                F(result.Evaluation(ChurnTrainer.Discriminative)?.Metrics.RocAuc),
                model.Kind == ChurnModelKind.Discriminative ? "discriminative (ML.NET classifier)" : "probabilistic (BG/NBD) alone",
                result.Reason, result.HorizonDays, result.HorizonRule, result.HeldOutRows, result.HeldOutPositives, result.RepeatCustomers, result.Customers,
                model.GammaGamma.Trusted ? "Gamma-Gamma" : $"none: {model.GammaGamma.Reason}", F(model.Shrinkage?.Toward), F(result.ShrunkBrier),
                F(result.Forecast?.Forecast), result.Forecast?.Actual);
            using var blob = new MemoryStream();
            model.Save(blob);
            var first = customers.SelectMany(c => c.Orders).Select(o => (DateTime?)o.At).Min();
            return new TrainedModel(blob.ToArray(), new { result.HorizonDays, Kind = model.Kind.ToString() }, metrics, customers.Count,
                first is { } f ? data.Instant(f) : null, now);
        }
    }

    private static double? F(double? v) => v is { } x && double.IsFinite(x) ? Math.Round(x, 4) : null;
}
