using PluginApp.Ml.Common;
using PluginApp.Ml.Linear;
using PluginApp.Ml.Metrics;
using PluginApp.Ml.Trees;

namespace PluginApp.Ml.Tests;

public class ClassifierTests
{
    private static readonly GbdtOptions Small = new() { Rounds = 150, LearningRate = 0.2, MaxDepth = 4, MaxLeaves = 15, MinLeafSize = 10, Seed = 5 };

    private static double Auc(IBinaryClassifier m, FeatureTable t, bool[] y) => ClassificationMetrics.RocAuc(m.PredictProbabilities(t), y);

    [Fact]
    public void Gbdt_XorData_LearnsIt()
    {
        var (train, y) = Synthetic.Xor(3000, 1);
        var (test, yt) = Synthetic.Xor(1000, 2);
        var sut = new GbdtTrainer(Small);

        var model = sut.Train(train, y);

        Assert.True(Auc(model, test, yt) > 0.95, $"AUC {Auc(model, test, yt)}");
    }

    [Fact]
    public void LogisticRegression_XorData_CannotLearnIt()
    {
        var (train, y) = Synthetic.Xor(3000, 1);
        var (test, yt) = Synthetic.Xor(1000, 2);
        var sut = new LogisticRegressionTrainer();

        var model = sut.Train(train, y);

        Assert.True(Auc(model, test, yt) < 0.65, $"AUC {Auc(model, test, yt)}");
    }

    [Fact]
    public void LogisticRegression_LinearData_RecoversSignAndRanksWell()
    {
        var (train, y) = Synthetic.WithMissing(3000, 3);
        var sut = new LogisticRegressionTrainer();

        var model = sut.Train(train, y);

        Assert.True(model.Weights[0] > 0.5);
        Assert.True(Auc(model, train, y) > 0.75);
    }

    [Fact]
    public void Gbdt_MissingValuesCarrySignal_RoutesThemToLearnedSide()
    {
        var (train, y) = Synthetic.WithMissing(4000, 4);
        var sut = new GbdtTrainer(Small with { Rounds = 60 });

        var model = sut.Train(train, y);

        var withNaN = model.PredictProbability([0f, float.NaN, 0f]);
        var without = model.PredictProbability([0f, 0f, 0f]);
        Assert.True(withNaN > without + 0.2, $"{withNaN} vs {without}");
    }

    [Fact]
    public void Gbdt_SameSeedTwice_BitwiseIdenticalPredictions()
    {
        // Large enough that histograms take the multi-threaded path.
        var (train, y) = Synthetic.Xor(6000, 1);
        var o = Small with { RowSubsample = 0.7, Rounds = 40 };

        var a = new GbdtTrainer(o with { Threads = 1 }).Train(train, y);
        var b = new GbdtTrainer(o with { Threads = 2 }).Train(train, y);

        Assert.Equal(a.PredictMargins(train), b.PredictMargins(train));
    }

    [Fact]
    public void Gbdt_ColumnSubsample_StillLearnsXor()
    {
        var (train, y) = Synthetic.Xor(3000, 1);
        var (test, yt) = Synthetic.Xor(1000, 2);
        var sut = new GbdtTrainer(Small with { ColumnSubsample = 0.5 });

        var model = sut.Train(train, y);

        Assert.True(Auc(model, test, yt) > 0.9, $"AUC {Auc(model, test, yt)}");
    }

    [Fact]
    public void Gbdt_Explain_ContributionsSumToMargin()
    {
        var (train, y) = Synthetic.WithMissing(2000, 6);
        var sut = new GbdtTrainer(Small with { Rounds = 50 }).Train(train, y);

        for (var r = 0; r < 50; r++)
        {
            var e = sut.Explain(train.Row(r));
            Assert.Equal(sut.PredictMargin(train.Row(r)), e.Bias + e.Contributions.Sum(), 1e-4);
        }
        var reasons = sut.Explain(train.Row(0)).TopReasons(2);
        Assert.NotEmpty(reasons);
        Assert.Contains(reasons[0].Feature, train.FeatureNames);
    }

    [Fact]
    public void LogisticRegression_Explain_ContributionsSumToMargin()
    {
        var (train, y) = Synthetic.WithMissing(500, 6);
        var sut = new LogisticRegressionTrainer().Train(train, y);

        for (var r = 0; r < 20; r++)
        {
            var e = sut.Explain(train.Row(r));
            Assert.Equal(sut.PredictMargin(train.Row(r)), e.Margin, 1e-9);
        }
    }

    [Fact]
    public void Gbdt_SaveLoad_IdenticalPredictions()
    {
        var (train, y) = Synthetic.WithMissing(1000, 7);
        var sut = new GbdtTrainer(Small with { Rounds = 30 }).Train(train, y);
        using var ms = new MemoryStream();
        sut.Save(ms);
        ms.Position = 0;

        var loaded = GbdtModel.Load(ms);

        Assert.Equal(sut.PredictMargins(train), loaded.PredictMargins(train));
        Assert.Equal(sut.FeatureNames, loaded.FeatureNames);
    }

    [Fact]
    public void LogisticRegression_SaveLoad_IdenticalPredictions()
    {
        var (train, y) = Synthetic.WithMissing(500, 8);
        var sut = new LogisticRegressionTrainer().Train(train, y);
        using var ms = new MemoryStream();
        sut.Save(ms);
        ms.Position = 0;

        var loaded = LogisticRegressionModel.Load(ms);

        Assert.Equal(sut.PredictMargins(train), loaded.PredictMargins(train));
    }

    [Fact]
    public void Gbdt_EarlyStopping_KeepsFewerRoundsThanMaximum()
    {
        var (train, y) = Synthetic.WithMissing(1500, 9);
        var sut = new GbdtTrainer(Small with { Rounds = 2000, LearningRate = 0.3, EarlyStoppingRounds = 10 });

        var model = sut.Train(train, y);

        Assert.True(model.TreeCount < 2000);
        Assert.Equal(sut.BestRounds, model.TreeCount);
    }

    [Theory]
    [InlineData("LearningRate")]
    [InlineData("MaxDepth")]
    [InlineData("MaxBins")]
    [InlineData("MinLeafSize")]
    [InlineData("RowSubsample")]
    [InlineData("ValidationFraction")]
    [InlineData("MaxLeaves")]
    [InlineData("ColumnSubsample")]
    public void GbdtTrainer_BadHyperparameter_ThrowsNamingIt(string name)
    {
        var o = name switch
        {
            "LearningRate" => new GbdtOptions { LearningRate = 0 },
            "MaxDepth" => new GbdtOptions { MaxDepth = 0 },
            "MaxBins" => new GbdtOptions { MaxBins = 256 },
            "MinLeafSize" => new GbdtOptions { MinLeafSize = 0 },
            "RowSubsample" => new GbdtOptions { RowSubsample = 1.5 },
            "ValidationFraction" => new GbdtOptions { ValidationFraction = 1 },
            "ColumnSubsample" => new GbdtOptions { ColumnSubsample = 0 },
            _ => new GbdtOptions { MaxLeaves = 1 },
        };

        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => new GbdtTrainer(o));

        Assert.Equal(name, ex.ParamName);
    }

    [Fact]
    public void LogisticRegressionTrainer_NegativeL2_ThrowsNamingIt()
    {
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => new LogisticRegressionTrainer(new LogisticRegressionOptions { L2 = -1 }));

        Assert.Equal("L2", ex.ParamName);
    }
}
