using PluginApp.Ml.Common;

namespace PluginApp.Ml.Recommenders;

/// <summary>
/// Log-scaled confidence for implicit ALS: an interaction of weight r is handed to <see cref="AlsTrainer"/> as
/// log(1 + r / Epsilon), so its confidence becomes c = 1 + alpha * log(1 + r / Epsilon), the alternative Hu, Koren and
/// Volinsky propose next to the linear 1 + alpha * r ("Collaborative Filtering for Implicit Feedback Datasets", ICDM 2008,
/// section 4). Why: with raw counts as weights (quantities, repeat purchases, play counts in the thousands) a few heavy
/// pairs dominate every row's least-squares fit and ALS falls back towards popularity; compressing restores its lift.
/// </summary>
/// <param name="Epsilon">The weight at which compression starts to bite: r much below Epsilon stays about r / Epsilon.</param>
public sealed record ConfidenceCompression(double Epsilon)
{
    /// <summary>Raw weights, unchanged (confidence 1 + alpha * r): what the recommender trained on before compression.</summary>
    public static readonly ConfidenceCompression None = new(0);

    /// <summary>log(1 + r) with Epsilon 1.</summary>
    public static readonly ConfidenceCompression Log = new(1);

    /// <summary>Whether weights are compressed at all (Epsilon &gt; 0).</summary>
    public bool Compresses => Epsilon > 0;

    /// <summary>The compressed weight of one interaction.</summary>
    public float Apply(float weight)
    {
        Check.NonNegative(Epsilon, nameof(Epsilon));
        return Compresses ? (float)Math.Log(1 + weight / Epsilon) : weight;
    }

    /// <summary>The same interactions with compressed weights. Compress after merging duplicates (log of a sum, not a sum of logs).</summary>
    public Interaction[] Apply(ReadOnlySpan<Interaction> interactions)
    {
        var result = interactions.ToArray();
        if (!Compresses) return result;
        for (var i = 0; i < result.Length; i++) result[i] = result[i] with { Weight = Apply(result[i].Weight) };
        return result;
    }

    /// <summary>In words, for parameters and reports.</summary>
    public override string ToString() =>
        Compresses ? FormattableString.Invariant($"log(1 + w / {Epsilon})") : "raw weights";
}
