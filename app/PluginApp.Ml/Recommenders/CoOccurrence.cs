using System.Buffers;
using PluginApp.Ml.Common;
using PluginApp.Ml.Serialization;

namespace PluginApp.Ml.Recommenders;

/// <summary>Options of <see cref="CoOccurrenceTrainer"/>.</summary>
public sealed record CoOccurrenceOptions
{
    /// <summary>Neighbours kept per item (by lift).</summary>
    public int MaxNeighbors { get; init; } = 100;

    /// <summary>Minimum number of baskets holding both items; lift on one or two shared baskets is noise.</summary>
    public int MinCoCount { get; init; } = 2;

    /// <summary>Scores are lift * n_ij / (n_ij + SupportShrinkage): lift alone ranks pairs seen once or twice
    /// among rare items first, which is noise. 0 gives plain lift.</summary>
    public double SupportShrinkage { get; init; } = 10;

    /// <summary>Worker threads; 0 means Environment.ProcessorCount. Results do not depend on it.</summary>
    public int Threads { get; init; }

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the first bad option.</summary>
    public void Validate()
    {
        Check.Positive(MaxNeighbors, nameof(MaxNeighbors));
        Check.Positive(MinCoCount, nameof(MinCoCount));
        Check.NonNegative(SupportShrinkage, nameof(SupportShrinkage));
        Check.NonNegative(Threads, nameof(Threads));
    }
}

/// <summary>
/// "Frequently bought together": counts baskets holding both i and j and ranks neighbours by lift
/// = P(i, j) / (P(i) P(j)) = n_ij N / (n_i n_j) (Agrawal, Imielinski, Swami 1993; Brin et al. 1997).
/// </summary>
public sealed class CoOccurrenceTrainer
{
    private readonly CoOccurrenceOptions _options;

    /// <summary>Creates a trainer; rejects bad options by name.</summary>
    public CoOccurrenceTrainer(CoOccurrenceOptions? options = null)
    {
        _options = options ?? new CoOccurrenceOptions();
        _options.Validate();
    }

    /// <summary>Trains from (basket, item) pairs; the User field is the basket (an order or a customer).</summary>
    public CoOccurrenceModel Train(ReadOnlySpan<Interaction> interactions, int basketCount, int itemCount)
    {
        var byBasket = SparseRows.Build(interactions, basketCount, itemCount, transpose: false);
        var byItem = SparseRows.Build(interactions, itemCount, basketCount, transpose: true);
        var support = new int[itemCount];
        var nonEmpty = 0;
        for (var b = 0; b < basketCount; b++) if (byBasket.RowStart[b + 1] > byBasket.RowStart[b]) nonEmpty++;
        for (var i = 0; i < itemCount; i++) support[i] = byItem.RowStart[i + 1] - byItem.RowStart[i];
        var neighbors = new ScoredItem[itemCount][];
        var threads = _options.Threads == 0 ? Environment.ProcessorCount : _options.Threads;
        Parallel.For(0, itemCount, new ParallelOptions { MaxDegreeOfParallelism = threads }, () => new int[itemCount], (i, _, co) =>
        {
            var touched = new List<int>();
            foreach (var b in byItem.RowIndex(i))
                foreach (var j in byBasket.RowIndex(b))
                {
                    if (j == i) continue;
                    if (co[j]++ == 0) touched.Add(j);
                }
            var lift = new float[touched.Count];
            var cand = new ScoredItem[touched.Count];
            var n = 0;
            foreach (var j in touched)
            {
                if (co[j] >= _options.MinCoCount)
                    cand[n++] = new ScoredItem(j, (float)((double)co[j] * nonEmpty / ((double)support[i] * support[j]) * co[j] / (co[j] + _options.SupportShrinkage)));
                co[j] = 0;
            }
            var scores = new float[itemCount];
            Array.Fill(scores, float.NegativeInfinity);
            for (var t = 0; t < n; t++) scores[cand[t].Item] = cand[t].Score;
            neighbors[i] = TopK.Select(scores, Math.Min(_options.MaxNeighbors, n));
            return co;
        }, _ => { });
        return new CoOccurrenceModel(support, neighbors);
    }
}

/// <summary>Item-to-item lift table.</summary>
public sealed class CoOccurrenceModel
{
    private const string Magic = "PCOO";
    private const int Version = 1;
    private readonly ScoredItem[][] _neighbors;
    private readonly int _maxSupport;

    internal CoOccurrenceModel(int[] support, ScoredItem[][] neighbors)
    {
        Support = support;
        _neighbors = neighbors;
        _maxSupport = Math.Max(1, support.Length == 0 ? 0 : support.Max());
    }

    /// <summary>Baskets holding each item.</summary>
    public int[] Support { get; }

    /// <summary>Number of items.</summary>
    public int ItemCount => Support.Length;

    /// <summary>Neighbours of an item by descending (shrunk) lift.</summary>
    public IReadOnlyList<ScoredItem> Neighbors(int item) => _neighbors[item];

    /// <summary>Top-K for a cart: sum of lifts from every cart item; ties and empty carts fall back to support.</summary>
    public ScoredItem[] RecommendForCart(ReadOnlySpan<int> items, int k, Func<int, bool>? exclude = null)
    {
        var rented = ArrayPool<float>.Shared.Rent(ItemCount);
        try
        {
            var scores = rented.AsSpan(0, ItemCount);
            // Why: a tiny popularity term orders items no cart item co-occurs with, so K results always come back.
            for (var i = 0; i < scores.Length; i++) scores[i] = 1e-3f * Support[i] / _maxSupport;
            foreach (var c in items)
            {
                if ((uint)c >= (uint)ItemCount) continue;
                foreach (var n in _neighbors[c]) scores[n.Item] += n.Score;
            }
            foreach (var c in items)
                if ((uint)c < (uint)ItemCount) scores[c] = float.NegativeInfinity;
            return TopK.Select(scores, k, exclude);
        }
        finally { ArrayPool<float>.Shared.Return(rented); }
    }

    /// <summary>
    /// Layout: "PCOO" | int32 version=1 | int32[] support (length items) | per item: int32 count,
    /// then count x (int32 item, float32 lift).
    /// </summary>
    public void Save(Stream stream)
    {
        using var w = new BinaryWriter(stream, System.Text.Encoding.UTF8, leaveOpen: true);
        ModelFormat.WriteHeader(w, Magic, Version);
        ModelFormat.WriteInts(w, Support);
        foreach (var list in _neighbors)
        {
            w.Write(list.Length);
            foreach (var n in list) { w.Write(n.Item); w.Write(n.Score); }
        }
    }

    /// <summary>Reads a model written by <see cref="Save"/>.</summary>
    public static CoOccurrenceModel Load(Stream stream)
    {
        var r = ModelFormat.ReadHeader(stream, nameof(CoOccurrenceModel), Magic, Version);
        var support = r.ReadInts("support");
        var items = support.Length;
        var neighbors = new ScoredItem[items][];
        for (var i = 0; i < items; i++)
        {
            var n = r.ReadInt32("neighbor count", 0, items);
            var list = new ScoredItem[n];
            for (var t = 0; t < n; t++) list[t] = new ScoredItem(r.ReadInt32("neighbor item", 0, items - 1), r.ReadSingle("neighbor lift"));
            neighbors[i] = list;
        }
        return new CoOccurrenceModel(support, neighbors);
    }
}
