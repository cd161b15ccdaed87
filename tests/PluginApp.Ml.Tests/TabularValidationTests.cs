using PluginApp.Ml.Recommenders;
using PluginApp.Ml.Tabular;

namespace PluginApp.Ml.Tests;

public class TabularValidationTests
{
    [Theory]
    [InlineData(nameof(TabularOptions.Learner))]
    [InlineData(nameof(TabularOptions.AutoMinRows))]
    [InlineData(nameof(TabularOptions.AutoMinPositives))]
    [InlineData(nameof(TabularOptions.NumberOfLeaves))]
    [InlineData(nameof(TabularOptions.MaxDepth))]
    [InlineData(nameof(TabularOptions.LearningRate))]
    [InlineData(nameof(TabularOptions.Iterations))]
    [InlineData(nameof(TabularOptions.MinExamplesPerLeaf))]
    [InlineData(nameof(TabularOptions.MinChildWeight))]
    [InlineData(nameof(TabularOptions.L2))]
    [InlineData(nameof(TabularOptions.EarlyStoppingRounds))]
    [InlineData(nameof(TabularOptions.ValidationFraction))]
    [InlineData(nameof(TabularOptions.LogisticL2))]
    [InlineData(nameof(TabularOptions.PositiveWeight))]
    [InlineData(nameof(TabularOptions.Calibrator))]
    [InlineData(nameof(TabularOptions.MaxCategoriesPerFeature))]
    [InlineData(nameof(TabularOptions.Threads))]
    public void TabularTrainer_BadOption_ThrowsNamingIt(string name)
    {
        var bad = name switch
        {
            nameof(TabularOptions.Learner) => new TabularOptions { Learner = (TabularLearner)9 },
            nameof(TabularOptions.AutoMinRows) => new TabularOptions { AutoMinRows = -1 },
            nameof(TabularOptions.AutoMinPositives) => new TabularOptions { AutoMinPositives = -5 },
            nameof(TabularOptions.NumberOfLeaves) => new TabularOptions { NumberOfLeaves = 1 },
            nameof(TabularOptions.MaxDepth) => new TabularOptions { MaxDepth = -1 },
            nameof(TabularOptions.LearningRate) => new TabularOptions { LearningRate = 0 },
            nameof(TabularOptions.Iterations) => new TabularOptions { Iterations = 0 },
            nameof(TabularOptions.MinExamplesPerLeaf) => new TabularOptions { MinExamplesPerLeaf = 0 },
            nameof(TabularOptions.MinChildWeight) => new TabularOptions { MinChildWeight = double.NaN },
            nameof(TabularOptions.L2) => new TabularOptions { L2 = -1 },
            nameof(TabularOptions.EarlyStoppingRounds) => new TabularOptions { EarlyStoppingRounds = -1 },
            nameof(TabularOptions.ValidationFraction) => new TabularOptions { ValidationFraction = 0.9 },
            nameof(TabularOptions.LogisticL2) => new TabularOptions { LogisticL2 = double.PositiveInfinity },
            nameof(TabularOptions.PositiveWeight) => new TabularOptions { PositiveWeight = 0 },
            nameof(TabularOptions.Calibrator) => new TabularOptions { Calibrator = (TabularCalibrator)(-1) },
            nameof(TabularOptions.MaxCategoriesPerFeature) => new TabularOptions { MaxCategoriesPerFeature = 0 },
            _ => new TabularOptions { Threads = -2 },
        };

        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => new TabularTrainer(TabularData.Schema, bad));

        Assert.Equal(name, ex.ParamName);
    }

    [Fact]
    public void TabularOptions_Defaults_AreValid()
    {
        var sut = new TabularOptions();

        sut.Validate();

        Assert.Equal(TabularLearner.LightGbm, sut.Learner);
        Assert.Equal(TabularCalibrator.Platt, sut.Calibrator);
    }

    [Fact]
    public void Row_WrongWidth_ThrowsNamingBothCounts()
    {
        var ex = Assert.Throws<ArgumentException>(() => TabularData.Schema.Row(1.0, "web", 2.0));

        Assert.Contains("3 values", ex.Message, StringComparison.Ordinal);
        Assert.Contains("5 features", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Row_NumberForCategorical_ThrowsNamingFeature()
    {
        var ex = Assert.Throws<ArgumentException>(() => TabularData.Schema.Row(1.0, 3, 2.0, 0.0, "US"));

        Assert.Contains("'channel' is categorical", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Row_TextForNumeric_ThrowsNamingFeature()
    {
        var ex = Assert.Throws<ArgumentException>(() => TabularData.Schema.Row("12", "web", 2.0, 0.0, "US"));

        Assert.Contains("'amount' is numeric", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Row_Infinity_ThrowsNamingFeature()
    {
        var ex = Assert.Throws<ArgumentException>(() => TabularData.Schema.Row(1.0, "web", double.PositiveInfinity, 0.0, "US"));

        Assert.Contains("'account_age'", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Row_ByUnknownName_ThrowsNamingIt()
    {
        var ex = Assert.Throws<ArgumentException>(() => TabularData.Schema.Row(new Dictionary<string, object?> { ["amount"] = 1.0, ["colour"] = "red" }));

        Assert.Contains("'colour'", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Row_ByName_UnnamedFeaturesAreMissing()
    {
        var sut = TabularData.Schema.Row(new Dictionary<string, object?> { ["amount"] = 1.5, ["country"] = "DE" });

        Assert.Equal(1.5f, sut["amount"]);
        Assert.Equal("DE", sut["country"]);
        Assert.Null(sut["account_age"]);
        Assert.Null(sut["channel"]);
    }

    [Fact]
    public void Schema_UnknownKind_ThrowsNamingFeature()
    {
        var ex = Assert.Throws<ArgumentException>(() => new TabularSchema(new TabularFeature("weird", (FeatureKind)5, "?")));

        Assert.Contains("'weird' has unknown kind 5", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Schema_DuplicateName_ThrowsNamingIt()
    {
        var ex = Assert.Throws<ArgumentException>(() => new TabularSchema(TabularFeature.Numeric("a", "x"), TabularFeature.Categorical("a", "y")));

        Assert.Contains("'a' appears twice", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Train_NoPositives_ThrowsNamingTheSet()
    {
        var sut = new TabularTrainer(TabularData.Schema);
        var negatives = TabularData.Orders(200, 3).Select(e => e with { Label = false }).ToArray();

        var ex = Assert.Throws<ArgumentException>(() => sut.Train(negatives));

        Assert.Equal("training", ex.ParamName);
        Assert.Contains("no positive", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Train_ValidationWithoutNegatives_ThrowsNamingTheSet()
    {
        var sut = new TabularTrainer(TabularData.Schema);
        var data = TabularData.Orders(300, 3);

        var ex = Assert.Throws<ArgumentException>(() => sut.Train(data, data.Where(e => e.Label).ToArray()));

        Assert.Equal("validation", ex.ParamName);
    }

    [Fact]
    public void Train_RowOfAnotherSchema_ThrowsNamingTheRow()
    {
        var sut = new TabularTrainer(TabularData.Schema);
        var data = TabularData.Orders(300, 3);
        data[7] = new TabularExample(TabularData.XorSchema.Row(1.0, 2.0, 3.0), true);

        var ex = Assert.Throws<ArgumentException>(() => sut.Train(data));

        Assert.Contains("training[7]", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Train_ZeroWeight_ThrowsNamingTheRow()
    {
        var sut = new TabularTrainer(TabularData.Schema);
        var data = TabularData.Orders(300, 3);
        data[4] = data[4] with { Weight = 0 };

        var ex = Assert.Throws<ArgumentException>(() => sut.Train(data));

        Assert.Contains("training[4].Weight", ex.Message, StringComparison.Ordinal);
    }

    private static byte[] Blob()
    {
        using var model = new TabularTrainer(TabularData.Schema, new TabularOptions { Learner = TabularLearner.LogisticRegression })
            .Train(TabularData.Orders(300, 5));
        using var ms = new MemoryStream();
        model.Save(ms);
        return ms.ToArray();
    }

    [Fact]
    public void Load_AlsBlob_ThrowsBadMagic()
    {
        using var ms = new MemoryStream();
        new AlsTrainer(new AlsOptions { Factors = 2, Iterations = 1 }).Train(Synthetic.BlockInteractions(), Synthetic.Users, Synthetic.Items).Save(ms);
        ms.Position = 0;

        var ex = Assert.Throws<InvalidDataException>(() => TabularModel.Load(ms));

        Assert.Contains("TabularModel: bad magic", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_UnknownVersion_ThrowsNamingVersion()
    {
        var blob = Blob();
        BitConverter.GetBytes(99).CopyTo(blob, 4);

        var ex = Assert.Throws<InvalidDataException>(() => TabularModel.Load(new MemoryStream(blob)));

        Assert.Contains("version 99", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_TruncatedBlob_ThrowsTruncated()
    {
        var blob = Blob();

        foreach (var cut in new[] { 2, 10, 60, blob.Length - 1 })
        {
            var ex = Assert.Throws<InvalidDataException>(() => TabularModel.Load(new MemoryStream(blob[..cut])));
            Assert.Contains("truncated", ex.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Load_CorruptMlNetModel_ThrowsInvalidData()
    {
        var blob = Blob();
        // Why: the ML.NET zip is the blob's tail; overwrite its middle with garbage while keeping the length.
        for (var i = blob.Length - 3000; i < blob.Length - 1000; i++) blob[i] = 0x5A;

        var ex = Assert.Throws<InvalidDataException>(() => TabularModel.Load(new MemoryStream(blob)));

        Assert.Contains("ML.NET model", ex.Message, StringComparison.Ordinal);
    }
}
