using PluginApp.Ml.Recommenders;

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
            case "pop":
                new PopularityTrainer().Train(Synthetic.BlockInteractions(), Synthetic.Items).Save(ms);
                break;
            default:
                new CoOccurrenceTrainer().Train(Synthetic.BlockInteractions(), Synthetic.Users, Synthetic.Items).Save(ms);
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
            "pop" => PopularityModel.Load(ms),
            _ => CoOccurrenceModel.Load(ms),
        };
    }

    [Theory]
    [InlineData("als")]
    [InlineData("pop")]
    [InlineData("cooc")]
    public void Load_UnknownVersion_ThrowsNamingVersion(string kind)
    {
        var blob = Blob(kind);
        BitConverter.GetBytes(99).CopyTo(blob, 4);

        var ex = Assert.Throws<InvalidDataException>(() => Load(kind, blob));

        Assert.Contains("version 99", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("als")]
    [InlineData("pop")]
    [InlineData("cooc")]
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
        var blob = Blob("pop");

        var ex = Assert.Throws<InvalidDataException>(() => Load("als", blob));

        Assert.Contains("AlsModel", ex.Message, StringComparison.Ordinal);
    }
}
