using PluginApp.Ml.Tabular;
using PluginApp.Risk;
using PluginApp.Risk.Review;

namespace PluginApp.Tests.Risk;

/// <summary>
/// What a reviewer reads as the reasons of a score the store's model took part in: the model's reasons and the prior's
/// rules in the same units (the log-odds each adds to the served score), so the top three are the three that moved it most.
/// </summary>
public class RiskReasonsTests
{
    private static FeatureContribution C(string feature, double contribution, float value = 1) =>
        new(feature, "the " + feature.Replace('_', ' '), FeatureKind.Numeric, value, contribution);

    // A LightGbm explanation as ML.NET gives it: contributions that rank features but run to tens of units, largest first.
    private static TabularExplanation Explanation(double probability) => new(probability, Margin: 1.2, Bias: 0, IsAdditive: false,
    [
        C("amount_z", 14), C("ip_orders_1d", -9), C("email_orders_1d", 6), C("country_mismatch", 4), C("has_discount", 2), C("customer_age_days", -1),
    ]);

    private static readonly RiskAssessment Prior = new(RulePrior.Sigmoid(RulePrior.Intercept + 1.2 + 0.9),
    [
        new RiskReason("first_order_high_value", "First order from this customer, and larger than 9 in 10 of the store's recent orders", 1.2),
        new RiskReason("country_mismatch", "The billing country differs from the shipping country", 0.9),
    ]);

    private static double Logit(double p) => Math.Log(p / (1 - p));

    [Fact]
    public void AModelThatRaisedTheScore_SharesWhatItAddedAmongItsFeaturesThatRaisedIt_AndThePriorsRulesStillReachTheTopThree()
    {
        const double weight = 0.5, baseRate = 0.02, probability = 0.30;

        var blended = RiskModels.Blend(Prior, weight, baseRate, Explanation(probability));

        Assert.Equal(RiskModels.Served(probability, Prior.Score, weight), blended.Score, 12);
        var model = blended.Reasons.Where(r => r.Code.StartsWith("model:", StringComparison.Ordinal)).ToList();
        // Three features that raised the risk, though one that lowered it is among the three largest contributions.
        Assert.Equal(["model:amount_z", "model:email_orders_1d", "model:country_mismatch"], model.Select(r => r.Code));
        // Together they weigh what the model moved the served log-odds from its score for an order it knows nothing about.
        Assert.Equal(weight * (Logit(probability) - Logit(baseRate)), model.Sum(r => r.Weight), 9);
        Assert.Equal(14.0 / 24, model[0].Weight / model.Sum(r => r.Weight), 9);

        var row = new QueueRow(1, "#1001", null, 250m, "USD", "HIGH", blended.Score, blended.Reasons.Select(r => new ReviewReason(r.Text, r.Weight)).ToList(), null, null);
        Assert.Equal(["The store's fraud model weighs the amount z: 1", Prior.Reasons[0].Text, Prior.Reasons[1].Text], row.TopReasons);
    }

    [Fact]
    public void AModelThatLoweredTheScore_GivesNoReasonForRisk_OnlyWhatLoweredIt()
    {
        var blended = RiskModels.Blend(Prior, 0.5, 0.02, Explanation(0.004));

        var model = blended.Reasons.Where(r => r.Code.StartsWith("model:", StringComparison.Ordinal)).ToList();
        Assert.Equal(["model:ip_orders_1d", "model:customer_age_days"], model.Select(r => r.Code));
        Assert.All(model, r => Assert.Equal("POSITIVE", r.Sentiment));
        Assert.Equal(0.5 * (Logit(0.004) - Logit(0.02)), model.Sum(r => r.Weight), 9);
    }
}
