using System.Globalization;
using Npgsql;
using PluginApp.Data;
using PluginApp.Ml.Metrics;
using PluginApp.Ml.Tabular;
using PluginApp.Training;

namespace PluginApp.Risk;

/// <summary>
/// The store's own fraud model: an ML.NET classifier (LightGbm, whatever the store's size, calibrated) on <see cref="OrderFeatures"/>.
/// Why not <see cref="TabularLearner.Auto"/> (logistic regression below 200 positives, as the ML project's learning curve on the
/// handbook's own features advises): on these order features LightGbm was as good or better at every size measured (6 Dec 2026,
/// a scratch run of RiskEval: stores of 30 to 800 fraud labels drawn at the simulation's fraud rate, 3 to 10 seeds, judged on
/// the full test week; where Auto would pick logistic regression, 0.03–0.05 more average precision at 60 labels, 0.09 at 100
/// and 0.12 at 200, and 0.01–0.02 more ROC-AUC; at 30, level on average precision and 0.01–0.02 ahead on ROC-AUC). It is trained on the orders old enough that a chargeback would have arrived
/// (<see cref="RiskOptions.LabelMaturity"/>): fraud when a fraud label is known by now, else legitimate. Why not younger labelled orders as
/// well: their legitimate neighbours are not known yet, so taking them would teach the model that recent means fraud.
/// Evaluated on the latest fifth of those orders by time, against the rule prior's scores on the same orders.
/// </summary>
public sealed class RiskTrainer(NpgsqlDataSource db, TableStatistics statistics, TimeProvider clock, Microsoft.Extensions.Options.IOptions<RiskOptions> options) : IModelTrainer
{
    public const string Kind = "risk";

    /// <summary>Orders younger than this may still turn into a chargeback: they are left out of training and evaluation.</summary>
    private TimeSpan Maturity => options.Value.LabelMaturity;

    public const int MinFraudLabels = 30;
    public const int MinHeldOutFraud = 8;

    /// <summary>
    /// Promoted on the figure of the score orders are given (<see cref="RiskMetrics.ServedPrAuc"/>: the model blended with the
    /// rule prior at its version's weight), against the rule prior on the same orders. Why not the model's own: since 6 Dec
    /// 2026 each version chooses its weight, and a version whose model led the prior by more but whose evidence weighed
    /// little served a worse score (until 8 Dec 2026 the gate judged the model alone, and such a version replaced a better one).
    /// </summary>
    public static readonly ModelKind Registration = new(Kind, "Order risk", nameof(RiskMetrics.ServedPrAuc), typeof(RiskTrainer),
        Purpose: "Estimates how likely each new online order is to be fraud, with the reasons, so your staff review the risky ones before shipping. " +
                 "Orders rung up in your store with Shopify POS are not scored: the card was present and the goods left with the buyer.",
        Inputs: "Each order's total, the customer's earlier orders and spend, how many orders the same email and browser address placed recently, " +
                "billing and shipping countries, discount use, the card's address and security-code checks, how often the same card (issuer number and " +
                "last four digits) was used and under how many emails, and fraud confirmed earlier on the same email or address. Names are not used; " +
                "full card numbers are never seen.",
        ShownWhere: "Staff see the level (low, medium, high) and the reasons on the order in Shopify and in the review queue; shoppers never see it.",
        Fallback: "The documented rule prior alone, for stores without enough confirmed fraud to learn from.")
    {
        BaselineMetric = nameof(RiskMetrics.PriorPrAuc),
        ComparableSince = (nameof(RiskMetrics.ServedPrAuc),
            "it was measured by the model's own figure, before the score orders are given (the model blended with the rule prior) was (before 5 Dec 2026)"),
        PromotionMetricBefore = nameof(RiskMetrics.PrAuc),
        MetricName = "PR-AUC",
        BaselineGate = true,
        AdminPage = ("/admin/risk", "Risk settings: the levels its scores are given"),
        BaselineName = "the rule prior on the same orders",
        Requirement = "It trains a model only once the store has 30 confirmed fraud orders old enough to judge (60 days by default), and a model that does worse than the rule prior never serves.",
        Outputs = "A probability of fraud per order, a level from your thresholds, and its top reasons in words; an order tag and a Shopify risk assessment.",
        Oversight = "You set the thresholds (with a backtest on your own history), review flagged orders, approve or mark fraud; nothing is ever cancelled automatically.",
        Risk = new AiRisk(4, 3,
            ImpactWhy: "A false alarm delays or holds a good customer's order; a missed fraud costs the goods, the chargeback and its fee.",
            LikelihoodWhy: "Most stores have few confirmed frauds to learn from, and fraudsters change their ways; the rule prior covers stores without labels.",
            Detectability: "Medium: reviews label flagged orders within days, but chargebacks arrive 30 to 90 days after the order."),
        Switch = "order-risk", DecisionKind = "risk", Breaker = true,
        StagedRelease = true, CanaryUnit = "orders", ReleaseGuardrail = FlagRateGuardrail.Guardrail.ReadAsync,
        DataStores = "Orders, disputes, Stripe events and review decisions in the app's PostgreSQL; model files in its model registry.",
    };

    /// <param name="ServedPrAuc">The figures of the score orders are given, the model blended with the rule prior at
    /// <paramref name="ModelWeight"/> (<see cref="RiskModels.Served"/>, <see cref="ChooseBlendWeight"/>), on the same held-out orders. Why beside the model's own: below a few
    /// hundred fraud labels the prior weighs more than the model, and until 5 Dec 2026 no figure described the served score.</param>
    public sealed record RiskMetrics(double PrAuc, double RocAuc, double PriorPrAuc, double PriorRocAuc, double Brier, int TrainOrders,
        int TrainFraud, int TestOrders, int TestFraud, string Split, string Learner, double? ServedPrAuc = null, double? ServedRocAuc = null,
        double? ServedBrier = null, double? ModelWeight = null)
    {
        /// <summary>n / (n + 50) for the training's fraud labels: the weight <see cref="ModelWeight"/> replaced when chosen on held-out orders.</summary>
        public double? EvidenceWeight { get; init; }

        /// <summary>How <see cref="ModelWeight"/> was decided, in words (<see cref="ChooseBlendWeight"/>).</summary>
        public string? WeightChosenOn { get; init; }
    }

    public async Task<TrainedModel> TrainAsync(long shopId, CancellationToken ct)
    {
        // Why the newest order and not only the clock: a replayed or quiet store is judged on its own timeline.
        var now = await NewestOrderAsync(shopId, ct) is { } newest && newest < clock.GetUtcNow() ? newest : clock.GetUtcNow();
        var known = await KnownOutcomesAsync(shopId, now, ct);
        var fraud = known.Count(o => o.Fraud);
        if (fraud < MinFraudLabels)
            throw new NotEnoughDataException($"{fraud} confirmed fraud orders older than {Maturity.TotalDays:0} days, {MinFraudLabels} needed; the rule prior scores orders until then");

        await statistics.RefreshIfOutgrownAsync("orders", ct); // as the scorer does before building features
        await using var conn = await db.OpenConnectionAsync(ct);
        var features = new Dictionary<long, float[]>(known.Count);
        foreach (var chunk in known.Select(o => o.Id).Chunk(2000))
            foreach (var (id, f) in await OrderFeatures.BuildAsync(conn, shopId, chunk, ct)) features[id] = f;
        var rows = known.Where(o => features.ContainsKey(o.Id)).OrderBy(o => o.At).ThenBy(o => o.Id).ToList();

        // Time split: the latest fifth is held out, never seen in training.
        var cut = (int)(rows.Count * 0.8);
        var (train, test) = (rows[..cut], rows[cut..]);
        var testFraud = test.Count(o => o.Fraud);
        if (testFraud < MinHeldOutFraud)
            throw new NotEnoughDataException($"{testFraud} confirmed fraud orders in the latest fifth of the history, {MinHeldOutFraud} needed to measure a model honestly");

        var (model, metrics) = await Task.Run(() => Fit(train, test, features), ct);
        using (model)
        {
            using var artifact = new MemoryStream();
            model.Save(artifact);
            return new TrainedModel(artifact.ToArray(), new { model.Info.Learner, model.Info.Calibrator, MaturityDays = Maturity.TotalDays },
                metrics, rows.Count, rows[0].At, rows[^1].At);
        }
    }

    public static (TabularModel, RiskMetrics) Fit(IReadOnlyList<KnownOrder> train, IReadOnlyList<KnownOrder> test, IReadOnlyDictionary<long, float[]> features)
    {
        var trainer = new TabularTrainer(Schema);
        var blend = ChooseBlendWeight(train, features);
        var model = trainer.Train(train.Select(o => new TabularExample(Row(features[o.Id]), o.Fraud)).ToList());
        var labels = test.Select(o => o.Fraud).ToArray();
        var scores = model.PredictProbabilities(test.Select(o => Row(features[o.Id])).ToList());
        var prior = test.Select(o => RulePrior.Assess(features[o.Id], "").Score).ToArray();
        var trainFraud = train.Count(o => o.Fraud);
        var served = scores.Select((s, i) => RiskModels.Served(s, prior[i], blend.Weight)).ToArray();
        var metrics = new RiskMetrics(BinaryMetrics.AveragePrecision(scores, labels), BinaryMetrics.RocAuc(scores, labels),
            BinaryMetrics.AveragePrecision(prior, labels), BinaryMetrics.RocAuc(prior, labels), BinaryMetrics.Brier(scores, labels),
            train.Count, trainFraud, test.Count, labels.Count(l => l),
            $"latest 20% by time ({test[0].At:yyyy-MM-dd} to {test[^1].At:yyyy-MM-dd})", model.Info.Learner.ToString(),
            BinaryMetrics.AveragePrecision(served, labels), BinaryMetrics.RocAuc(served, labels), BinaryMetrics.Brier(served, labels), blend.Weight)
        {
            EvidenceWeight = blend.EvidenceWeight,
            WeightChosenOn = blend.ChosenOn,
        };
        return (model, metrics);
    }

    /// <summary>Blend weights tried on the validation orders: 0 (the rule prior alone) to 1 (the model alone) in twentieths.</summary>
    /// <summary>The model weights the blend is chosen among: twentieths, from the rule prior alone to the model alone.</summary>
    public static readonly double[] WeightGrid = Enumerable.Range(0, 21).Select(i => i / 20.0).ToArray();

    /// <summary>Fraud orders the validation quarter needs before its choice of weight is trusted over the evidence weight.</summary>
    public const int MinBlendValidationFraud = 5;

    /// <summary>Above this many fraud labels the evidence weight (0.95 and up) stands: the prior's share is too small to tune.</summary>
    public const int MaxFraudForBlendChoice = 1000;

    /// <summary>How much the model counts against the rule prior in the served score, and on what that was decided.</summary>
    /// <param name="Weight">The model's weight in log-odds (1 - the prior's share).</param>
    /// <param name="EvidenceWeight">n / (n + 50) for the n fraud labels learnt from: the weight without a choice.</param>
    /// <param name="ChosenOn">In words: the orders the weight was chosen on and what it did there, or why the evidence weight stands.</param>
    public sealed record BlendWeight(double Weight, double EvidenceWeight, string ChosenOn);

    /// <summary>
    /// The model's weight against the rule prior, chosen on the training orders' latest quarter by time: a model fitted on
    /// the earlier three quarters scores them, and the weight (in twentieths) whose blended scores have the lowest log loss
    /// there serves. The test fifth is never looked at, so the served figures on it stay honest. Why: the evidence weight,
    /// n / (n + 50), says how far to trust a model from its label count alone, and gives the prior 62 % of the score at 30
    /// labels however well or badly the store's rules fit its fraud; on the fraud simulation, whose orders rarely trip the
    /// rules, that cost a store of 30 labels about 0.2 of average precision (6 Dec 2026, README). Why log loss and not
    /// average precision: the levels are thresholds on the blended probability, so its calibration counts as well as its
    /// ranking, and on a quarter holding a handful of frauds log loss moves smoothly where average precision jumps. The
    /// evidence weight stands with fewer than <see cref="MinBlendValidationFraud"/> frauds in that quarter or in the three
    /// before it, and above <see cref="MaxFraudForBlendChoice"/> labels.
    /// </summary>
    public static BlendWeight ChooseBlendWeight(IReadOnlyList<KnownOrder> train, IReadOnlyDictionary<long, float[]> features)
    {
        var trainFraud = train.Count(o => o.Fraud);
        var evidence = RiskModels.ModelWeightOf(trainFraud);
        if (trainFraud > MaxFraudForBlendChoice)
            return new BlendWeight(evidence, evidence, $"the model's evidence ({trainFraud:N0} fraud labels): the rules' share is too small to tune");
        var cut = (int)(train.Count * 0.75);
        var (fit, validation) = (train.Take(cut).ToList(), train.Skip(cut).ToList());
        var (fitFraud, validationFraud) = (fit.Count(o => o.Fraud), validation.Count(o => o.Fraud));
        if (fitFraud < MinBlendValidationFraud || validationFraud < MinBlendValidationFraud)
            return new BlendWeight(evidence, evidence, validationFraud < MinBlendValidationFraud
                ? $"the model's evidence ({trainFraud:N0} fraud labels): the latest quarter of the training orders holds {validationFraud} fraud, {MinBlendValidationFraud} needed to choose on"
                : $"the model's evidence ({trainFraud:N0} fraud labels): the three quarters before the latest hold {fitFraud} fraud, {MinBlendValidationFraud} needed to fit the model that chooses");
        using var inner = new TabularTrainer(Schema).Train(fit.Select(o => new TabularExample(Row(features[o.Id]), o.Fraud)).ToList());
        var model = inner.PredictProbabilities(validation.Select(o => Row(features[o.Id])).ToList());
        var prior = validation.Select(o => RulePrior.Assess(features[o.Id], "").Score).ToArray();
        var labels = validation.Select(o => o.Fraud).ToArray();
        double LogLoss(double w) => BinaryMetrics.LogLoss(model.Select((m, i) => RiskModels.Served(m, prior[i], w)).ToArray(), labels);
        var (best, bestLoss) = (evidence, LogLoss(evidence));
        foreach (var w in WeightGrid)
            if (LogLoss(w) is var loss && loss < bestLoss) (best, bestLoss) = (w, loss);
        return new BlendWeight(best, evidence, string.Create(CultureInfo.InvariantCulture,
            $"the latest quarter of the training orders ({validation.Count:N0}, {validationFraud} fraud) scored by a model of the three before: log loss {bestLoss:0.0000} with the model at {best:0.00}, {LogLoss(evidence):0.0000} at its evidence weight {evidence:0.00}"));
    }

    /// <summary>The model's columns: every order feature, named and described for explanations.</summary>
    public static readonly TabularSchema Schema = new(OrderFeatures.Names.Select(n => TabularFeature.Numeric(n, OrderFeatures.Describe(n))));

    public static TabularRow Row(float[] f) => Schema.Row(f.Cast<object?>().ToArray());

    public sealed record KnownOrder(long Id, DateTimeOffset At, bool Fraud);

    private async Task<DateTimeOffset?> NewestOrderAsync(long shopId, CancellationToken ct)
    {
        await using var cmd = db.CreateCommand("SELECT max(created_at) FROM orders WHERE shop_id = $1");
        cmd.Parameters.Add(Sql.Param(shopId));
        return await cmd.ExecuteScalarAsync(ct) is DateTime t ? new DateTimeOffset(t, TimeSpan.Zero) : null;
    }

    /// <summary>
    /// The orders (alias <c>o</c>) the model learns from, here and in the evaluation command's fresh fit: not test orders, not
    /// rung up in the store (never scored, <see cref="RiskQueue.Online"/>), and not erased. An erased customer's order has no
    /// email, address or card any more: rebuilt, its identity features read 0 as they never did when it was scored, and a
    /// fraud one among them taught that an order without identity is legitimate (until 5 Dec 2026 they were learnt from).
    /// Nor orders imported from the store's old platform (placed over a day before Shopify created them): their features
    /// are taken at their creation, the import's day, where every window of their email, address or card is empty (their
    /// neighbours were placed long before) and the store's usual amount is the import's; no order scored live looks like
    /// that (until 8 Dec 2026 a migrated store's model learnt from them).
    /// </summary>
    public static readonly string Learnable =
        $"NOT o.test AND o.{RiskQueue.Online} AND o.redacted_at IS NULL AND (o.processed_at IS NULL OR o.processed_at >= o.created_at - interval '1 day')";

    /// <summary>Orders older than <see cref="Maturity"/> at <paramref name="now"/>, fraud when a fraud label is known by then.</summary>
    private async Task<List<KnownOrder>> KnownOutcomesAsync(long shopId, DateTimeOffset now, CancellationToken ct)
    {
        await using var cmd = db.CreateCommand($"""
            SELECT o.id, o.created_at, coalesce(l.fraud, false)
            FROM orders o
            LEFT JOIN (SELECT order_id, bool_or(fraud) AS fraud FROM risk_labels WHERE shop_id = $1 AND labelled_at <= $2 GROUP BY order_id) l
              ON l.order_id = o.id
            WHERE o.shop_id = $1 AND o.created_at IS NOT NULL AND o.created_at <= $3 AND {Learnable}
            """);
        cmd.Parameters.Add(Sql.Param(shopId));
        cmd.Parameters.Add(Sql.Param(now));
        cmd.Parameters.Add(Sql.Param(now - Maturity));
        var list = new List<KnownOrder>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct)) list.Add(new KnownOrder(r.GetInt64(0), r.GetFieldValue<DateTimeOffset>(1), r.GetBoolean(2)));
        return list;
    }
}
