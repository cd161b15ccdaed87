using PluginApp.Ml.Recommenders;

namespace PluginApp.Recommendations;

/// <summary>
/// What serving needs for one shop: the ALS item side, bestsellers, bought-together neighbours, and the product
/// id of every item index. Layout (little-endian): magic "PARB", int32 version (2), int32 n, n int64 product
/// ids, then three length-prefixed blobs (int32 length + bytes): ALS, popularity, co-occurrence.
/// Version 2 holds no user rows (serving folds carts in), so no stored model keeps a shopper, and a customer erased
/// later needs no model rewritten. Version 1 (with user rows) is still read; <see cref="ModelArtifactScrubber"/> rewrites it.
/// </summary>
public sealed class RecommenderBundle(AlsModel als, PopularityModel popularity, CoOccurrenceModel coOccurrence, long[] productIds)
{
    private const uint Magic = 0x42524150; // "PARB"
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
            w.Write(Magic);
            w.Write(FormatVersion);
            w.Write(ProductIds.Length);
            foreach (var id in ProductIds) w.Write(id);
            WriteBlob(w, Als.Save);
            WriteBlob(w, Popularity.Save);
            WriteBlob(w, CoOccurrence.Save);
        }
        return ms.ToArray();
    }

    public static RecommenderBundle FromBytes(byte[] bytes)
    {
        using var r = new BinaryReader(new MemoryStream(bytes));
        try
        {
            if (r.ReadUInt32() != Magic) throw new InvalidDataException("not a recommender bundle (magic)");
            var version = r.ReadInt32();
            if (version is not (1 or FormatVersion)) throw new InvalidDataException($"recommender bundle version {version} is not supported (expected {FormatVersion})");
            var ids = new long[r.ReadInt32()];
            for (var i = 0; i < ids.Length; i++) ids[i] = r.ReadInt64();
            var als = AlsModel.Load(ReadBlob(r));
            var pop = PopularityModel.Load(ReadBlob(r));
            var co = CoOccurrenceModel.Load(ReadBlob(r));
            return new RecommenderBundle(als, pop, co, ids);
        }
        catch (EndOfStreamException) { throw new InvalidDataException("recommender bundle is truncated"); }
    }

    private static void WriteBlob(BinaryWriter w, Action<Stream> save)
    {
        using var ms = new MemoryStream();
        save(ms);
        w.Write((int)ms.Length);
        w.Write(ms.GetBuffer(), 0, (int)ms.Length);
    }

    private static MemoryStream ReadBlob(BinaryReader r)
    {
        var length = r.ReadInt32();
        var bytes = r.ReadBytes(length);
        if (bytes.Length != length) throw new EndOfStreamException();
        return new MemoryStream(bytes);
    }
}
