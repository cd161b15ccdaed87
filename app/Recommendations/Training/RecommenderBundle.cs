using PluginApp.Ml.Recommenders;
using PluginApp.Ml.Serialization;

namespace PluginApp.Recommendations;

/// <summary>Which of the bundle's candidates serves, as chosen on held-out data when it was trained. The numbers are stored.</summary>
public enum ServedCandidate
{
    /// <summary>Bought together interleaved with ALS: what every bundle before format 3 served.</summary>
    Blend = 0,
    Als = 1,
    CoOccurrence = 2,
    Popularity = 3,
}

/// <summary>
/// What serving needs for one shop: the ALS item side, bestsellers, bought-together neighbours, and the product
/// id of every item index, in the ML library's framing (ModelFormat): magic "PARB", int32 version (3), the product ids
/// (int32 n + n int64), then three length-prefixed blobs (int32 length + bytes): ALS, popularity, co-occurrence, then
/// int32 the served candidate (<see cref="ServedCandidate"/>, format 3 on).
/// Version 2 holds no user rows (serving folds carts in), so no stored model keeps a shopper, and a customer erased
/// later needs no model rewritten. Versions 1 (with user rows) and 2 are still read and serve the blend, as they did;
/// <see cref="ModelArtifactScrubber"/> rewrites version 1.
/// </summary>
public sealed class RecommenderBundle(AlsModel als, PopularityModel popularity, CoOccurrenceModel coOccurrence, long[] productIds,
    ServedCandidate served = ServedCandidate.Blend)
{
    private const string Magic = "PARB";
    public const int FormatVersion = 3;

    public AlsModel Als { get; } = als.UserCount == 0 ? als : als.WithoutUsers();
    public PopularityModel Popularity { get; } = popularity;
    public CoOccurrenceModel CoOccurrence { get; } = coOccurrence;
    public long[] ProductIds { get; } = productIds;
    /// <summary>The candidate that won the held-out comparison when this bundle was trained (the blend for older bundles).</summary>
    public ServedCandidate Served { get; } = Enum.IsDefined(served) ? served : throw new ArgumentOutOfRangeException(nameof(served), served, "unknown candidate");
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
            w.Write((int)Served);
        }
        return ms.ToArray();
    }

    /// <summary>Reads format 3, and formats 2 and 1 (no served candidate: the blend; format 1's ALS blob still has user rows, which are dropped).</summary>
    public static RecommenderBundle FromBytes(byte[] bytes)
    {
        var (r, version) = ModelFormat.ReadHeader(new MemoryStream(bytes), nameof(RecommenderBundle), Magic, 1, FormatVersion);
        var ids = r.ReadLongs("productIds");
        var als = AlsModel.Load(new MemoryStream(r.ReadByteArray("als")));
        var pop = PopularityModel.Load(new MemoryStream(r.ReadByteArray("popularity")));
        var co = CoOccurrenceModel.Load(new MemoryStream(r.ReadByteArray("coOccurrence")));
        var served = version >= 3 ? (ServedCandidate)r.ReadInt32("served", (int)ServedCandidate.Blend, (int)ServedCandidate.Popularity) : ServedCandidate.Blend;
        return new RecommenderBundle(als, pop, co, ids, served);
    }

    private static byte[] Blob(Action<Stream> save)
    {
        using var ms = new MemoryStream();
        save(ms);
        return ms.ToArray();
    }
}
