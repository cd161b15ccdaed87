using PluginApp.Ml.Common;
using PluginApp.Ml.Serialization;

namespace PluginApp.Ml.Recommenders;

/// <summary>Options of <see cref="PopularityTrainer"/>.</summary>
public sealed record PopularityOptions
{
    /// <summary>Half-life of an interaction's weight, in days, measured back from the newest timestamp
    /// in the data (never the clock). 0 disables decay.</summary>
    public double HalfLifeDays { get; init; }

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the first bad option.</summary>
    public void Validate() => Check.NonNegative(HalfLifeDays, nameof(HalfLifeDays));
}

/// <summary>Popularity with exponential recency decay: score_i = sum w * 2^(-(t_max - t) / halfLife).</summary>
public sealed class PopularityTrainer
{
    private readonly PopularityOptions _options;

    /// <summary>Creates a trainer; rejects bad options by name.</summary>
    public PopularityTrainer(PopularityOptions? options = null)
    {
        _options = options ?? new PopularityOptions();
        _options.Validate();
    }

    /// <summary>Sums decayed weights per item.</summary>
    public PopularityModel Train(ReadOnlySpan<Interaction> interactions, int itemCount)
    {
        Check.Positive(itemCount, nameof(itemCount));
        var newest = long.MinValue;
        foreach (var x in interactions) newest = Math.Max(newest, x.Timestamp);
        var halfLifeSeconds = _options.HalfLifeDays * 86400.0;
        var scores = new double[itemCount];
        foreach (var x in interactions)
        {
            if ((uint)x.Item >= (uint)itemCount) throw new ArgumentOutOfRangeException(nameof(interactions), $"Item {x.Item} is outside [0, {itemCount}).");
            var decay = halfLifeSeconds > 0 ? Math.Pow(2, -(newest - x.Timestamp) / halfLifeSeconds) : 1.0;
            scores[x.Item] += x.Weight * decay;
        }
        return new PopularityModel(Array.ConvertAll(scores, s => (float)s));
    }
}

/// <summary>Item scores independent of the user.</summary>
public sealed class PopularityModel
{
    private const string Magic = "PPOP";
    private const int Version = 1;

    internal PopularityModel(float[] scores) => Scores = scores;

    /// <summary>Score per item.</summary>
    public float[] Scores { get; }

    /// <summary>Top-K most popular items that <paramref name="exclude"/> does not reject.</summary>
    public ScoredItem[] Recommend(int k, Func<int, bool>? exclude = null) => TopK.Select(Scores, k, exclude);

    /// <summary>Layout: "PPOP" | int32 version=1 | float32[] scores (int32 length, values).</summary>
    public void Save(Stream stream)
    {
        using var w = new BinaryWriter(stream, System.Text.Encoding.UTF8, leaveOpen: true);
        ModelFormat.WriteHeader(w, Magic, Version);
        ModelFormat.WriteFloats(w, Scores);
    }

    /// <summary>Reads a model written by <see cref="Save"/>.</summary>
    public static PopularityModel Load(Stream stream)
    {
        var r = ModelFormat.ReadHeader(stream, nameof(PopularityModel), Magic, Version);
        return new PopularityModel(r.ReadFloats("scores"));
    }
}
