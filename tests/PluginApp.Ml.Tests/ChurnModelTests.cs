using PluginApp.Ml.Churn;
using PluginApp.Ml.Serialization;

namespace PluginApp.Ml.Tests;

/// <summary>Two models trained once on a simulated store of 1,200 customers: one of each kind.</summary>
public sealed class ChurnModelFixture : IDisposable
{
    public static readonly DateTime Now = new(2026, 11, 30, 0, 0, 0, DateTimeKind.Utc);

    public ChurnModelFixture()
    {
        Store = ChurnSimulation.Store(1200, Now, 730, seed: 8).Select(c => c with { Orders = c.Orders.Where(o => o.At < Now).ToArray() }).ToArray();
        Discriminative = ChurnTrainer.Train(Store, Now, new ChurnOptions { Kind = ChurnModelKind.Discriminative });
        Probabilistic = ChurnTrainer.Train(Store, Now, new ChurnOptions { Kind = ChurnModelKind.Probabilistic });
    }

    public CustomerHistory[] Store { get; }
    public ChurnTrainingResult Discriminative { get; }
    public ChurnTrainingResult Probabilistic { get; }

    public void Dispose()
    {
        Discriminative.Model?.Dispose();
        Probabilistic.Model?.Dispose();
    }
}

public class ChurnModelTests(ChurnModelFixture fx) : IClassFixture<ChurnModelFixture>
{
    private ChurnModel Model(ChurnModelKind kind) =>
        (kind == ChurnModelKind.Discriminative ? fx.Discriminative : fx.Probabilistic).Model ?? throw new InvalidOperationException("no model");

    private static byte[] Blob(ChurnModel m)
    {
        using var ms = new MemoryStream();
        m.Save(ms);
        return ms.ToArray();
    }

    [Fact]
    public void Train_SimulatedStore_EvaluatesEveryScorerOnTheSameHeldOutRows()
    {
        var sut = fx.Discriminative;

        Assert.Null(sut.NotEnoughData);
        Assert.Equal(ChurnModelKind.Discriminative, sut.Kind);
        Assert.Equal(sut.HeldOutCutoff.AddDays(-sut.HorizonDays), sut.TrainingCutoff);
        Assert.Equal(ChurnModelFixture.Now.AddDays(-sut.HorizonDays), sut.HeldOutCutoff);
        foreach (var name in new[] { ChurnTrainer.RecencyOnly, ChurnTrainer.BgNbdNoOrder, ChurnTrainer.Probabilistic, ChurnTrainer.Discriminative })
        {
            var e = sut.Evaluation(name) ?? throw new Xunit.Sdk.XunitException($"no evaluation '{name}'");
            Assert.Equal(sut.HeldOutRows, e.Metrics.Count);
            Assert.Equal(sut.HeldOutPositives, e.Metrics.Positives);
            Assert.InRange(e.Metrics.RocAuc, 0.6, 1);   // a BG/NBD store: every scorer ranks far better than chance
        }
        Assert.Contains("pinned", sut.Reason + fx.Probabilistic.Reason);
    }

    [Theory]
    [InlineData(ChurnModelKind.Discriminative)]
    [InlineData(ChurnModelKind.Probabilistic)]
    public void SaveLoad_BothKinds_GiveIdenticalPredictions(ChurnModelKind kind)
    {
        var sut = Model(kind);
        var expected = sut.Score(fx.Store, ChurnModelFixture.Now);

        using var loaded = ChurnModel.Load(new MemoryStream(Blob(sut)));
        var actual = loaded.Score(fx.Store, ChurnModelFixture.Now);

        Assert.Equal(kind, loaded.Kind);
        Assert.Equal(sut.HorizonDays, loaded.HorizonDays);
        Assert.Equal(expected.Length, actual.Length);
        for (var i = 0; i < expected.Length; i++)
        {
            Assert.Equal(expected[i].ChurnProbability, actual[i].ChurnProbability);
            Assert.Equal(expected[i].ExpectedValue365, actual[i].ExpectedValue365);
            Assert.Equal(expected[i].Reasons, actual[i].Reasons);
        }
    }

    [Fact]
    public void Score_Discriminative_GivesCalibratedProbabilitiesAndMerchantReasons()
    {
        var sut = Model(ChurnModelKind.Discriminative).Score(fx.Store, ChurnModelFixture.Now);

        Assert.All(sut, p => Assert.InRange(p.ChurnProbability, 0, 1));
        Assert.All(sut, p => Assert.Equal(3, p.Reasons.Count));
        Assert.Contains(sut, p => p.Reasons.Any(r => r.Text.StartsWith("last order ", StringComparison.Ordinal) && r.Text.Contains("usually orders every")));
        // One-time buyers all have P(alive) = 1, yet their churn probabilities must still spread with recency.
        var once = sut.Where(p => p.Orders == 1).OrderBy(p => p.DaysSinceLastOrder).ToArray();
        Assert.All(once, p => Assert.Equal(1, p.ProbabilityAlive));
        Assert.True(once[^1].ChurnProbability > once[0].ChurnProbability + 0.1);
    }

    [Fact]
    public void Load_WrongMagic_ThrowsInvalidData()
    {
        var blob = Blob(Model(ChurnModelKind.Probabilistic));
        blob[0] = (byte)'X';

        var ex = Assert.Throws<InvalidDataException>(() => ChurnModel.Load(new MemoryStream(blob)));

        Assert.Contains("magic", ex.Message);
    }

    [Theory]
    [InlineData(ChurnModelKind.Discriminative)]
    [InlineData(ChurnModelKind.Probabilistic)]
    public void Load_TruncatedAnywhere_ThrowsInvalidData(ChurnModelKind kind)
    {
        var blob = Blob(Model(kind));

        foreach (var cut in new[] { 3, 7, 12, 40, 200, blob.Length / 2, blob.Length - 1 })
        {
            var ex = Assert.Throws<InvalidDataException>(() => ChurnModel.Load(new MemoryStream(blob[..cut])));
            Assert.Contains("ChurnModel", ex.Message);
        }
    }

    [Fact]
    public void Load_NegativeBgNbdParameter_ThrowsNamingIt()
    {
        var blob = Blob(Model(ChurnModelKind.Probabilistic));
        // Layout: magic(4) version(4) kind(4) horizon(4) names..., then r: find it after the names.
        var offset = 16 + NamesLength();
        BitConverter.GetBytes(-1.0).CopyTo(blob, offset);

        var ex = Assert.Throws<InvalidDataException>(() => ChurnModel.Load(new MemoryStream(blob)));

        Assert.Contains("BG/NBD r", ex.Message);
    }

    [Fact]
    public void Load_OtherFeatureNames_ThrowsNamingTheField()
    {
        var blob = Blob(Model(ChurnModelKind.Probabilistic));
        // The first name starts after the count (int32) and its 1-byte length prefix.
        blob[16 + 4 + 1] = (byte)'X';

        var ex = Assert.Throws<InvalidDataException>(() => ChurnModel.Load(new MemoryStream(blob)));

        Assert.Contains("feature names", ex.Message);
    }

    [Fact]
    public void Load_UnknownVersion_ThrowsInvalidData()
    {
        var blob = Blob(Model(ChurnModelKind.Probabilistic));
        BitConverter.GetBytes(3).CopyTo(blob, 4);

        var ex = Assert.Throws<InvalidDataException>(() => ChurnModel.Load(new MemoryStream(blob)));

        Assert.Contains("version", ex.Message);
    }

    private static int NamesLength()
    {
        using var ms = new MemoryStream();
        using (var w = new BinaryWriter(ms, System.Text.Encoding.UTF8, leaveOpen: true)) ModelFormat.WriteStrings(w, ChurnFeatures.Names);
        return (int)ms.Length;
    }
}
