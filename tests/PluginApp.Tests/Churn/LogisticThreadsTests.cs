using PluginApp.Ml.Tabular;

namespace PluginApp.Tests.Churn;

/// <summary>
/// Logistic regression (churn's classifier and calibration, intent and risk on small stores) learns the same model whatever
/// the machine's cores: until 6 Dec 2026 L-BFGS ran on every core when not told otherwise, and its per-thread float sums
/// gave another model on 2 cores than on 1 or 8.
/// </summary>
public sealed class LogisticThreadsTests
{
    [Fact]
    public void LogisticRegression_NotToldHowManyThreads_LearnsTheOneThreadModel_BitForBit()
    {
        var schema = new TabularSchema(Enumerable.Range(0, 8).Select(i => TabularFeature.Numeric($"x{i}", $"feature {i}")));
        var random = new Random(17);
        var examples = Enumerable.Range(0, 20_000).Select(_ =>
        {
            var x = Enumerable.Range(0, 8).Select(_ => random.NextDouble() * 10 - 5).ToArray();
            var z = 0.8 * x[0] - 0.5 * x[1] + 0.3 * x[2] * x[3] / 5 - 0.2;
            return new TabularExample(schema.Row(x.Cast<object?>().ToArray()), random.NextDouble() < 1 / (1 + Math.Exp(-z)));
        }).ToArray();
        double[] Probabilities(int threads)
        {
            using var model = new TabularTrainer(schema, new TabularOptions
            {
                Learner = TabularLearner.LogisticRegression, Calibrator = TabularCalibrator.None, ValidationFraction = 0, Threads = threads,
            }).Train(examples);
            return model.PredictProbabilities(examples.Take(200).Select(e => e.Row).ToList());
        }

        var one = Probabilities(1);
        Assert.Equal(one, Probabilities(0));
    }
}
