using PluginApp.Ml.Common;
using PluginApp.Ml.Tabular;

namespace PluginApp.Ml.Tests;

/// <summary>Generated order-risk-like rows with a known logit.</summary>
internal static class TabularData
{
    // Why: the signal categorical ("country") is the second categorical, so a wrong slot-to-feature map would misattribute it.
    public static readonly TabularSchema Schema = new(
        TabularFeature.Numeric("amount", "order total, standardized"),
        TabularFeature.Categorical("channel", "sales channel"),
        TabularFeature.Numeric("account_age", "days since the account was created, standardized"),
        TabularFeature.Numeric("noise", "a number unrelated to the label"),
        TabularFeature.Categorical("country", "billing country"));

    public static readonly string[] Countries = ["US", "DE", "FR", "XX"];
    public static readonly string[] Channels = ["web", "pos", "app"];

    /// <summary>logit = -1 + 2 amount + (account_age missing ? 1 : -0.5 account_age) + 1.5 [country = XX];
    /// account_age is missing in a fifth of rows, country in a tenth; channel and noise carry nothing.</summary>
    public static TabularExample[] Orders(int rows, ulong seed)
    {
        var rng = new SplitMix64(seed);
        var result = new TabularExample[rows];
        for (var r = 0; r < rows; r++)
        {
            var amount = rng.NextGaussian();
            var ageMissing = rng.NextDouble() < 0.2;
            var age = rng.NextGaussian();
            var noise = rng.NextGaussian();
            var country = rng.NextDouble() < 0.1 ? null : Countries[rng.NextInt(Countries.Length)];
            var channel = Channels[rng.NextInt(Channels.Length)];
            var logit = -1 + 2 * amount + (ageMissing ? 1 : -0.5 * age) + (country == "XX" ? 1.5 : 0);
            var label = rng.NextDouble() < 1 / (1 + Math.Exp(-logit));
            result[r] = new TabularExample(Schema.Row(amount, channel, ageMissing ? null : age, noise, country), label);
        }
        return result;
    }

    /// <summary>Label = sign(x0 x1): no single feature or linear mix carries signal, trees find it.</summary>
    public static TabularExample[] Xor(int rows, ulong seed)
    {
        var rng = new SplitMix64(seed);
        var result = new TabularExample[rows];
        for (var r = 0; r < rows; r++)
        {
            double x0 = rng.NextDouble() * 2 - 1, x1 = rng.NextDouble() * 2 - 1, n = rng.NextDouble() * 2 - 1;
            result[r] = new TabularExample(XorSchema.Row(x0, x1, n), x0 * x1 > 0);
        }
        return result;
    }

    public static readonly TabularSchema XorSchema = new(
        TabularFeature.Numeric("x0", "first"), TabularFeature.Numeric("x1", "second"), TabularFeature.Numeric("n", "noise"));

    public static bool[] Labels(IEnumerable<TabularExample> examples) => examples.Select(e => e.Label).ToArray();

    public static TabularRow[] Rows(IEnumerable<TabularExample> examples) => examples.Select(e => e.Row).ToArray();
}

/// <summary>One LightGbm and one logistic regression model on <see cref="TabularData.Orders"/>, trained once per test class.</summary>
public sealed class TrainedModels : IDisposable
{
    public TrainedModels()
    {
        Train = TabularData.Orders(3000, 1);
        Test = TabularData.Orders(1000, 2);
        LightGbm = new TabularTrainer(TabularData.Schema, new TabularOptions { Learner = TabularLearner.LightGbm }).Train(Train);
        Logistic = new TabularTrainer(TabularData.Schema, new TabularOptions { Learner = TabularLearner.LogisticRegression }).Train(Train);
    }

    internal TabularExample[] Train { get; }
    internal TabularExample[] Test { get; }
    internal TabularModel LightGbm { get; }
    internal TabularModel Logistic { get; }

    internal TabularModel Get(TabularLearner learner) => learner == TabularLearner.LightGbm ? LightGbm : Logistic;

    public void Dispose()
    {
        LightGbm.Dispose();
        Logistic.Dispose();
    }
}
