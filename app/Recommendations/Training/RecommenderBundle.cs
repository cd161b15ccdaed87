using PluginApp.Ml.Recommenders;
using PluginApp.Ml.Serialization;

namespace PluginApp.Recommendations;

/// <summary>
/// What serving needs for one shop: the ALS item side, bestsellers, bought-together neighbours, and the product
/// id of every item index, in the ML library's framing (ModelFormat): magic "PARB", int32 version (2), the product ids
/// (int32 n + n int64), then three length-prefixed blobs (int32 length + bytes): ALS, popularity, co-occurrence.
/// Version 2 holds no user rows (serving folds carts in), so no stored model keeps a shopper, and a customer erased
/// later needs no model rewritten. Version 1 (with user rows) is still read; <see cref="ModelArtifactScrubber"/> rewrites it.
/// </summary>
public sealed class RecommenderBundle(AlsModel als, PopularityModel popularity, CoOccurrenceModel coOccurrence, long[] productIds)
{
    private const string Magic = "PARB";
    public const int FormatVersion = 2;

    public AlsModel Als { get; } = als.UserCount == 0 ? als : als.WithoutUsers();
    public PopularityModel Popularity { get; } = popularity;
    public CoOccurrenceModel CoOccurrence { get; } = coOccurrence;
    public long[] ProductIds { get; } = productIds;
    public Dictionary<long, int> ItemIndex { get; } = productIds.Select((p, i) => (p, i)).ToDictionary(x => x.p, x => x.i);

    public byte[] ToBytes()
    {
        using var ms = new MemoryStream();
        using (var w = new BinaryWriter(ms, System.Text.Encoding.UTF8, leaveOpen: true))
        {
            ModelFormat.WriteHeader(w, Magic, FormatVersion);
            ModelFormat.WriteLongs(w, ProductIds);
            ModelFormat.WriteBytes(w, Blob(Als.Save));
            ModelFormat.WriteBytes(w, Blob(Popularity.Save));
            ModelFormat.WriteBytes(w, Blob(CoOccurrence.Save));
        }
        return ms.ToArray();
    }

    /// <summary>Reads format 2, and format 1 (same layout; its ALS blob still has user rows, which are dropped).</summary>
    public static RecommenderBundle FromBytes(byte[] bytes)
    {
        var (r, _) = ModelFormat.ReadHeader(new MemoryStream(bytes), nameof(RecommenderBundle), Magic, 1, FormatVersion);
        var ids = r.ReadLongs("productIds");
        var als = AlsModel.Load(new MemoryStream(r.ReadByteArray("als")));
        var pop = PopularityModel.Load(new MemoryStream(r.ReadByteArray("popularity")));
        var co = CoOccurrenceModel.Load(new MemoryStream(r.ReadByteArray("coOccurrence")));
        return new RecommenderBundle(als, pop, co, ids);
    }

    private static byte[] Blob(Action<Stream> save)
    {
        using var ms = new MemoryStream();
        save(ms);
        return ms.ToArray();
    }
}
