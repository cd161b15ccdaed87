using System.Buffers;
using System.Numerics.Tensors;
using PluginApp.Ml.Common;
using PluginApp.Ml.Serialization;

namespace PluginApp.Ml.Recommenders;

/// <summary>
/// Trained implicit-feedback factorization. Factors are flat row-major float arrays
/// (user u's vector is UserFactors[u*Factors .. (u+1)*Factors)). Thread-safe for reads.
/// </summary>
public sealed class AlsModel
{
    private const string Magic = "PALS";
    private const int Version = 1;
    private readonly int[] _seenStart;
    private readonly int[] _seen;
    private readonly Lazy<float[]> _gram;
    private readonly Lazy<float[]> _itemNorms;
    private readonly Lazy<double[]> _foldInverse;

    internal AlsModel(int users, int items, int factors, float[] userFactors, float[] itemFactors,
        float regularization, float alpha, int[] seenStart, int[] seen)
    {
        UserCount = users;
        ItemCount = items;
        Factors = factors;
        UserFactors = userFactors;
        ItemFactors = itemFactors;
        Regularization = regularization;
        Alpha = alpha;
        _seenStart = seenStart;
        _seen = seen;
        _gram = new Lazy<float[]>(() => AlsTrainer.Gram(ItemFactors, ItemCount, Factors));
        _foldInverse = new Lazy<double[]>(FoldInverse);
        _itemNorms = new Lazy<float[]>(() =>
        {
            var n = new float[ItemCount];
            for (var i = 0; i < ItemCount; i++) n[i] = TensorPrimitives.Norm(ItemVector(i));
            return n;
        });
    }

    /// <summary>Number of users.</summary>
    public int UserCount { get; }
    /// <summary>Number of items.</summary>
    public int ItemCount { get; }
    /// <summary>Latent dimension.</summary>
    public int Factors { get; }
    /// <summary>User factors, row-major.</summary>
    public float[] UserFactors { get; }
    /// <summary>Item factors, row-major.</summary>
    public float[] ItemFactors { get; }
    /// <summary>Lambda used in training and fold-in.</summary>
    public float Regularization { get; }
    /// <summary>Confidence slope used in training and fold-in.</summary>
    public float Alpha { get; }

    /// <summary>User u's latent vector.</summary>
    public ReadOnlySpan<float> UserVector(int user) => UserFactors.AsSpan(CheckUser(user) * Factors, Factors);

    /// <summary>Item i's latent vector.</summary>
    public ReadOnlySpan<float> ItemVector(int item) => ItemFactors.AsSpan(CheckItem(item) * Factors, Factors);

    /// <summary>Items the user interacted with in training, ascending.</summary>
    public ReadOnlySpan<int> SeenItems(int user)
    {
        CheckUser(user);
        return _seen.AsSpan(_seenStart[user], _seenStart[user + 1] - _seenStart[user]);
    }

    /// <summary>Predicted preference x_u . y_i.</summary>
    public float Score(int user, int item) => TensorPrimitives.Dot(UserVector(user), ItemVector(item));

    /// <summary>Scores of every item for a latent vector.</summary>
    public float[] ScoreAll(ReadOnlySpan<float> userVector)
    {
        var s = new float[ItemCount];
        ScoreAll(userVector, s);
        return s;
    }

    /// <summary>Scores of every item for a latent vector, into the first <see cref="ItemCount"/> entries of <paramref name="scores"/>.</summary>
    public void ScoreAll(ReadOnlySpan<float> userVector, Span<float> scores)
    {
        if (userVector.Length != Factors) throw new ArgumentException($"Vector has {userVector.Length} entries, expected {Factors}.", nameof(userVector));
        if (scores.Length < ItemCount) throw new ArgumentException($"Room for {scores.Length} scores, expected {ItemCount}.", nameof(scores));
        MatrixVector.Multiply(ItemFactors, ItemCount, userVector, scores);
    }

    /// <summary>Top-K items for a known user, excluding what they interacted with in training
    /// and anything <paramref name="exclude"/> rejects.</summary>
    public ScoredItem[] RecommendForUser(int user, int k, Func<int, bool>? exclude = null)
    {
        var scores = ScoreAll(UserVector(user));
        foreach (var i in SeenItems(user)) scores[i] = float.NegativeInfinity;
        return TopK.Select(scores, k, exclude);
    }

    /// <summary>
    /// Latent vector for an anonymous cart or session: the exact least-squares solution the trainer
    /// would give a user with these interactions while items stay fixed. Unknown item ids are ignored.
    /// </summary>
    /// <param name="items">Item indices in the cart.</param>
    /// <param name="weights">Optional weights per item (default 1 each).</param>
    public float[] FoldIn(ReadOnlySpan<int> items, ReadOnlySpan<float> weights = default)
    {
        var x = new float[Factors];
        FoldIn(items, weights, x);
        return x;
    }

    private void FoldIn(ReadOnlySpan<int> items, ReadOnlySpan<float> weights, Span<float> x)
    {
        if (!weights.IsEmpty && weights.Length != items.Length)
            throw new ArgumentException("weights must be empty or as long as items.", nameof(weights));
        Span<int> idx = items.Length <= 64 ? stackalloc int[items.Length] : new int[items.Length];
        Span<float> conf = items.Length <= 64 ? stackalloc float[items.Length] : new float[items.Length];
        var n = 0;
        for (var j = 0; j < items.Length; j++)
        {
            if ((uint)items[j] >= (uint)ItemCount) continue;
            var w = weights.IsEmpty ? 1f : weights[j];
            if (!(w > 0)) continue;
            var at = idx[..n].IndexOf(items[j]);
            if (at >= 0) { conf[at] += Alpha * w; continue; }
            idx[n] = items[j];
            conf[n++] = 1 + Alpha * w;
        }
        x.Clear();
        if (n == 0) return;
        // Why only with a ridge: without one, Y'Y may be near singular and its explicit inverse loses what the factorization keeps.
        if (n <= WoodburyMaxItems && Alpha > 0 && Regularization > 0 && Factors <= 256)
        {
            FoldInFew(idx[..n], conf[..n], x);
            return;
        }
        AlsTrainer.SolveCholesky(x, ItemFactors, _gram.Value, Regularization, idx[..n], conf[..n], new AlsTrainer.Scratch(Factors));
    }

    /// <summary>Carts up to this many distinct items fold in through <see cref="FoldInFew"/>.</summary>
    private const int WoodburyMaxItems = 16;

    /// <summary>
    /// The fold-in's system (A0 + U D U^T) x = U c, where A0 = Y^T Y + lambda I, U holds the cart's item vectors and
    /// D = diag(c - 1), solved with Woodbury's identity and A0's inverse (computed once per model): x = z - Z t, with
    /// Z = A0^-1 U, z = Z c and (D^-1 + U^T Z) t = U^T z, an m x m system. The same solution as the k x k factorization
    /// in exact arithmetic; why: a storefront cart holds a few items, and this is a few matrix-vector products per request
    /// instead of a factorization.
    /// </summary>
    private void FoldInFew(ReadOnlySpan<int> idx, ReadOnlySpan<float> conf, Span<float> x)
    {
        var k = Factors;
        var m = idx.Length;
        var inverse = _foldInverse.Value;
        Span<double> u = m * k <= 2048 ? stackalloc double[m * k] : new double[m * k];
        Span<double> zs = m * k <= 2048 ? stackalloc double[m * k] : new double[m * k];
        for (var j = 0; j < m; j++)
        {
            var yj = ItemFactors.AsSpan(idx[j] * k, k);
            var uj = u.Slice(j * k, k);
            for (var r = 0; r < k; r++) uj[r] = yj[r];
            var zj = zs.Slice(j * k, k);
            for (var r = 0; r < k; r++) zj[r] = TensorPrimitives.Dot(inverse.AsSpan(r * k, k), uj);
        }
        Span<double> z = stackalloc double[k];
        z.Clear();
        for (var j = 0; j < m; j++) TensorPrimitives.MultiplyAdd(zs.Slice(j * k, k), (double)conf[j], z, z);
        Span<double> s = stackalloc double[m * m];
        Span<double> t = stackalloc double[m];
        for (var a = 0; a < m; a++)
        {
            var ua = u.Slice(a * k, k);
            for (var b = 0; b < m; b++) s[a * m + b] = TensorPrimitives.Dot(ua, zs.Slice(b * k, k));
            s[a * m + a] += 1.0 / (conf[a] - 1.0);
            t[a] = TensorPrimitives.Dot(ua, z);
        }
        DenseLinear.CholeskySolve(s, t, m);
        for (var j = 0; j < m; j++) TensorPrimitives.MultiplyAdd(zs.Slice(j * k, k), -t[j], z, z);
        for (var r = 0; r < k; r++) x[r] = (float)z[r];
    }

    /// <summary>(Y^T Y + lambda I)^-1, row-major (used only when lambda &gt; 0).</summary>
    private double[] FoldInverse()
    {
        var k = Factors;
        var gram = _gram.Value;
        var a = new double[k * k];
        for (var i = 0; i < k * k; i++) a[i] = gram[i];
        for (var i = 0; i < k; i++) a[i * k + i] += Regularization;
        return DenseLinear.CholeskyInverse(a, k);
    }

    /// <summary>Top-K for an anonymous cart: fold-in then rank, never returning the cart's own items.</summary>
    public ScoredItem[] RecommendForCart(ReadOnlySpan<int> items, int k, Func<int, bool>? exclude = null)
    {
        Span<float> x = Factors <= 256 ? stackalloc float[Factors] : new float[Factors];
        FoldIn(items, default, x);
        var rented = ArrayPool<float>.Shared.Rent(ItemCount);
        try
        {
            var scores = rented.AsSpan(0, ItemCount);
            ScoreAll(x, scores);
            foreach (var i in items)
                if ((uint)i < (uint)ItemCount) scores[i] = float.NegativeInfinity;
            return TopK.Select(scores, k, exclude);
        }
        finally { ArrayPool<float>.Shared.Return(rented); }
    }

    /// <summary>Items with the most similar factors (cosine), excluding the item itself.</summary>
    public ScoredItem[] SimilarItems(int item, int k)
    {
        var v = ItemVector(item);
        var norms = _itemNorms.Value;
        var rented = ArrayPool<float>.Shared.Rent(ItemCount);
        try
        {
            var scores = rented.AsSpan(0, ItemCount);
            ScoreAll(v, scores);
            for (var i = 0; i < scores.Length; i++)
                scores[i] = norms[i] > 0 && norms[item] > 0 ? scores[i] / (norms[i] * norms[item]) : float.NegativeInfinity;
            scores[item] = float.NegativeInfinity;
            return TopK.Select(scores, k);
        }
        finally { ArrayPool<float>.Shared.Return(rented); }
    }

    /// <summary>
    /// The same item side with no user rows: what serving needs (it folds carts in), and nothing that belongs
    /// to one shopper. Why: a model kept in a registry must not hold a customer who later asked to be erased.
    /// </summary>
    public AlsModel WithoutUsers() =>
        new(0, ItemCount, Factors, [], ItemFactors, Regularization, Alpha, [0], []);

    private int CheckUser(int u) => (uint)u < (uint)UserCount ? u : throw new ArgumentOutOfRangeException(nameof(u), u, $"User index must be in [0, {UserCount}).");

    private int CheckItem(int i) => (uint)i < (uint)ItemCount ? i : throw new ArgumentOutOfRangeException(nameof(i), i, $"Item index must be in [0, {ItemCount}).");

    /// <summary>
    /// Layout (little-endian): "PALS" | int32 version=1 | int32 users | int32 items | int32 factors |
    /// float32 regularization | float32 alpha | float32[] userFactors (int32 length = users*factors, then values) |
    /// float32[] itemFactors (length items*factors) | int32[] seenStart (length users+1) | int32[] seenItems.
    /// </summary>
    public void Save(Stream stream)
    {
        using var w = new BinaryWriter(stream, System.Text.Encoding.UTF8, leaveOpen: true);
        ModelFormat.WriteHeader(w, Magic, Version);
        w.Write(UserCount);
        w.Write(ItemCount);
        w.Write(Factors);
        w.Write(Regularization);
        w.Write(Alpha);
        ModelFormat.WriteFloats(w, UserFactors);
        ModelFormat.WriteFloats(w, ItemFactors);
        ModelFormat.WriteInts(w, _seenStart);
        ModelFormat.WriteInts(w, _seen);
    }

    /// <summary>Reads a model written by <see cref="Save"/>; throws <see cref="InvalidDataException"/> on a bad blob.</summary>
    public static AlsModel Load(Stream stream)
    {
        var r = ModelFormat.ReadHeader(stream, nameof(AlsModel), Magic, Version);
        var users = r.ReadInt32("users", 0, int.MaxValue);
        var items = r.ReadInt32("items", 1, int.MaxValue);
        var factors = r.ReadInt32("factors", 1, 1024);
        var reg = r.ReadSingle("regularization");
        var alpha = r.ReadSingle("alpha");
        var uf = r.ReadFloats("userFactors", checked(users * factors));
        var itf = r.ReadFloats("itemFactors", checked(items * factors));
        var seenStart = r.ReadInts("seenStart", users + 1);
        var seen = r.ReadInts("seenItems", seenStart[^1]);
        for (var u = 0; u < users; u++)
            if (seenStart[u] > seenStart[u + 1] || seenStart[u] < 0)
                throw new InvalidDataException($"{nameof(AlsModel)}: field 'seenStart' is not monotone at user {u}.");
        foreach (var i in seen)
            if ((uint)i >= (uint)items) throw new InvalidDataException($"{nameof(AlsModel)}: field 'seenItems' holds item {i} outside [0, {items}).");
        return new AlsModel(users, items, factors, uf, itf, reg, alpha, seenStart, seen);
    }
}
