using System.Security.Cryptography;
using System.Text;
using PluginApp.Experiments;

namespace PluginApp.Tests.Experiments;

/// <summary>
/// The hashes behind arms and stored visitor ids are a contract with the data already written: a visitor keeps their arm
/// and their decisions, events and exposures stay findable (and erasable) only while these stay the same functions.
/// </summary>
public sealed class AssignmentTests
{
    public static TheoryData<string, string, string> Units => new()
    {
        { "demo-store.myshopify.com", "v:0123abcd", "upsell_holdout" },
        { "demo-store.myshopify.com", "c:42", "release:recommender" },
        { "ünïcode-shop.myshopify.com", "émoji-😀", "" },
        { "a.myshopify.com", new string('x', 600), "cart_offers" }, // longer than the stack buffer
    };

    [Theory]
    [MemberData(nameof(Units))]
    public void BucketAndVisitorHash_AreSha256OfTheJoinedText_AsStoredBefore(string shop, string unit, string experiment)
    {
        var bucket = BitConverter.ToUInt32(SHA256.HashData(Encoding.UTF8.GetBytes($"{shop}|{unit}|{experiment}"))) / (double)uint.MaxValue;
        Assert.Equal(bucket, Assignment.Bucket(shop, unit, experiment));
        var visitor = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes($"pluginapp-visitor|{shop}|{unit}")))[..32];
        Assert.Equal(visitor, Assignment.VisitorHash(shop, unit));
        Assert.Null(Assignment.VisitorHash(shop, " "));
    }
}
