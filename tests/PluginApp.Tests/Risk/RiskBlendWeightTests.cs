using PluginApp.Ml.Metrics;
using PluginApp.Risk;

namespace PluginApp.Tests.Risk;

/// <summary>
/// How much the store's model counts against the rule prior: chosen on the training orders' latest quarter, never on the
/// test orders, and the evidence weight (n / (n + 50)) where there is too little to choose on.
/// </summary>
public sealed class RiskBlendWeightTests
{
    /// <summary>
    /// A store whose fraud the rules do not see: its frauds come from browser addresses busy over the month (which the prior
    /// does not weigh), and a third of its good orders ship abroad on cards whose checks fail (which the prior weighs most). At the evidence weight
    /// the prior takes 66 % of the score and its noise buries the model's ranking; chosen on held-out orders, the model
    /// serves almost alone.
    /// </summary>
    [Fact]
    public void RulesThatMissTheStoresFraud_WeighLittle_AndTheServedScoreRanksAsTheModelDoes()
    {
        var (train, test, features) = Store(orders: 1600, fraudEvery: 40, seed: 3);

        var (model, metrics) = RiskTrainer.Fit(train, test, features);
        model.Dispose();

        var evidence = RiskModels.ModelWeightOf(metrics.TrainFraud);
        Assert.Equal(evidence, metrics.EvidenceWeight!.Value, 9);
        Assert.InRange(evidence, 0.3, 0.5);
        Assert.InRange(metrics.ModelWeight!.Value, 0.85, 1);
        Assert.StartsWith("the latest quarter of the training orders", metrics.WeightChosenOn);
        // The served figures are the chosen weight's, on the test orders the choice never saw, and beat the evidence weight's.
        var atEvidence = ServedAveragePrecision(train, test, features, evidence);
        Assert.True(metrics.ServedPrAuc > atEvidence + 0.1, $"served {metrics.ServedPrAuc:F3} against {atEvidence:F3} at the evidence weight");
        Assert.True(metrics.ServedPrAuc >= metrics.PriorPrAuc, metrics.ToString());
    }

    [Fact]
    public void TooFewFraudsInTheLatestQuarter_TheEvidenceWeightStands_AndSaysWhy()
    {
        var (train, _, features) = Store(orders: 1600, fraudEvery: 40, seed: 5);
        // The latest quarter of the training orders keeps only 4 of its frauds.
        var quarter = (int)(train.Count * 0.75);
        var kept = 0;
        var thinned = train.Select((o, i) => i >= quarter && o.Fraud && ++kept > 4 ? o with { Fraud = false } : o).ToList();

        var blend = RiskTrainer.ChooseBlendWeight(thinned, features);

        var evidence = RiskModels.ModelWeightOf(thinned.Count(o => o.Fraud));
        Assert.Equal(evidence, blend.Weight, 9);
        Assert.Equal(evidence, blend.EvidenceWeight, 9);
        Assert.Equal($"the model's evidence ({thinned.Count(o => o.Fraud)} fraud labels): the latest quarter of the training orders holds 4 fraud, 5 needed to choose on",
            blend.ChosenOn);
    }

    private static double ServedAveragePrecision(List<RiskTrainer.KnownOrder> train, List<RiskTrainer.KnownOrder> test,
        Dictionary<long, float[]> features, double weight)
    {
        var (model, _) = RiskTrainer.Fit(train, test, features);
        using (model)
        {
            var scores = model.PredictProbabilities(test.Select(o => RiskTrainer.Row(features[o.Id])).ToList());
            var served = scores.Select((s, i) => RiskModels.Served(s, RulePrior.Assess(features[test[i].Id], "").Score, weight)).ToArray();
            return BinaryMetrics.AveragePrecision(served, test.Select(o => o.Fraud).ToArray());
        }
    }

    /// <summary>Orders an hour apart, every <paramref name="fraudEvery"/>th fraud; the latest fifth is the test.</summary>
    private static (List<RiskTrainer.KnownOrder> Train, List<RiskTrainer.KnownOrder> Test, Dictionary<long, float[]> Features) Store(
        int orders, int fraudEvery, int seed)
    {
        var rng = new Random(seed);
        var start = new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
        var all = new List<RiskTrainer.KnownOrder>();
        var features = new Dictionary<long, float[]>();
        for (var i = 0; i < orders; i++)
        {
            var fraud = i % fraudEvery == fraudEvery / 2;
            var f = new float[OrderFeatures.Names.Length];
            f[OrderFeatures.Index("amount")] = 20 + rng.Next(80);
            // The fraud's sign, blurred: more orders from its browser address in 30 days (none in the last 24 hours), where
            // good orders overlap it.
            f[OrderFeatures.Index("ip_orders_30d")] = fraud ? 8 + rng.Next(20) : rng.Next(14);
            // What the rules weigh most, and which says nothing here: a third of the good orders ship abroad on a card
            // whose address and security-code checks fail (a store whose buyers send gifts on foreign cards).
            var gift = !fraud && rng.Next(3) == 0 ? 1 : 0;
            foreach (var rule in new[] { "country_mismatch", "avs_no_match", "cvv_no_match" }) f[OrderFeatures.Index(rule)] = gift;
            features[i + 1] = f;
            all.Add(new RiskTrainer.KnownOrder(i + 1, start.AddHours(i), fraud));
        }
        var cut = (int)(orders * 0.8);
        return (all[..cut], all[cut..], features);
    }
}
