using PluginApp.Ml.Calibration;
using PluginApp.Ml.Linear;
using PluginApp.Ml.Recommenders;
using PluginApp.Ml.Trees;

namespace PluginApp.Ml.Tests;

public class SerializationTests
{
    private static byte[] Blob(string kind)
    {
        using var ms = new MemoryStream();
        switch (kind)
        {
            case "als":
                new AlsTrainer(new AlsOptions { Factors = 4, Iterations = 2 }).Train(Synthetic.BlockInteractions(), Synthetic.Users, Synthetic.Items).Save(ms);
                break;
            case "gbdt":
                var (t, y) = Synthetic.Xor(300, 1);
                new GbdtTrainer(new GbdtOptions { Rounds = 5 }).Train(t, y).Save(ms);
                break;
            case "pop":
                new PopularityTrainer().Train(Synthetic.BlockInteractions(), Synthetic.Items).Save(ms);
                break;
            case "cooc":
                new CoOccurrenceTrainer().Train(Synthetic.BlockInteractions(), Synthetic.Users, Synthetic.Items).Save(ms);
                break;
            case "platt":
                PlattCalibrator.Fit([1, 2, 3], [false, true, true]).Save(ms);
                break;
            case "iso":
                IsotonicCalibrator.Fit([1, 2, 3], [false, true, true]).Save(ms);
                break;
            default:
                var (t2, y2) = Synthetic.Xor(300, 1);
                new LogisticRegressionTrainer().Train(t2, y2).Save(ms);
                break;
        }
        return ms.ToArray();
    }

    private static void Load(string kind, byte[] blob)
    {
        using var ms = new MemoryStream(blob);
        _ = kind switch
        {
            "als" => (object)AlsModel.Load(ms),
            "gbdt" => GbdtModel.Load(ms),
            "pop" => PopularityModel.Load(ms),
            "cooc" => CoOccurrenceModel.Load(ms),
            "platt" => PlattCalibrator.Load(ms),
            "iso" => IsotonicCalibrator.Load(ms),
            _ => LogisticRegressionModel.Load(ms),
        };
    }

    [Theory]
    [InlineData("als")]
    [InlineData("gbdt")]
    [InlineData("logreg")]
    [InlineData("pop")]
    [InlineData("cooc")]
    [InlineData("platt")]
    [InlineData("iso")]
    public void Load_UnknownVersion_ThrowsNamingVersion(string kind)
    {
        var blob = Blob(kind);
        BitConverter.GetBytes(99).CopyTo(blob, 4);

        var ex = Assert.Throws<InvalidDataException>(() => Load(kind, blob));

        Assert.Contains("version 99", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("als")]
    [InlineData("gbdt")]
    [InlineData("logreg")]
    [InlineData("pop")]
    [InlineData("cooc")]
    [InlineData("platt")]
    [InlineData("iso")]
    public void Load_TruncatedBlob_ThrowsTruncated(string kind)
    {
        var blob = Blob(kind);

        foreach (var cut in new[] { 2, 10, blob.Length / 2, blob.Length - 1 })
        {
            var ex = Assert.Throws<InvalidDataException>(() => Load(kind, blob[..cut]));
            Assert.Contains("truncated", ex.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Load_WrongMagic_ThrowsNamingModel()
    {
        var blob = Blob("gbdt");

        var ex = Assert.Throws<InvalidDataException>(() => Load("als", blob));

        Assert.Contains("AlsModel", ex.Message, StringComparison.Ordinal);
    }
}
