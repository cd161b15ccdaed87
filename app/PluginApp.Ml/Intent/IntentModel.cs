using PluginApp.Ml.Serialization;
using PluginApp.Ml.Tabular;

namespace PluginApp.Ml.Intent;

/// <summary>
/// A store's purchase-intent model: the calibrated classifier on <see cref="IntentFeatures"/>. Scores a live cart with
/// P(it becomes an order) and the reasons in merchant words. Thread-safe (the ML.NET parts are); Dispose releases the
/// classifier's pooled engines.
/// </summary>
public sealed class IntentModel : IDisposable
{
    private const string Name = "IntentModel", Magic = "INTN";
    private const int Version = 1;
    private readonly TabularModel _classifier;

    internal IntentModel(TabularModel classifier, int trainingCarts, int trainingOrders)
    {
        if (!classifier.Schema.Equals(IntentFeatures.Schema)) throw new ArgumentException("The classifier was not trained on the intent features.", nameof(classifier));
        (_classifier, TrainingCarts, TrainingOrders) = (classifier, trainingCarts, trainingOrders);
    }

    /// <summary>Learner, calibrator, trees and row counts of the classifier.</summary>
    public TabularModelInfo Info => _classifier.Info;

    /// <summary>Carts the served model was trained on (all of them after a refit, the earlier part otherwise).</summary>
    public int TrainingCarts { get; }

    /// <summary>Orders among <see cref="TrainingCarts"/>.</summary>
    public int TrainingOrders { get; }

    /// <summary>Share of the training carts that became orders ("a typical cart converts 28 % of the time").</summary>
    public double BaseRate => TrainingCarts == 0 ? double.NaN : (double)TrainingOrders / TrainingCarts;

    /// <summary>P(the cart becomes an order), without reasons (one pooled prediction engine; the cheapest call).</summary>
    public double PredictProbability(CartSnapshot cart) => _classifier.PredictProbability(IntentFeatures.Build(cart));

    /// <summary>Probability and the top <paramref name="reasons"/> reasons for one cart.</summary>
    public IntentScore Score(CartSnapshot cart, int reasons = 3)
    {
        ArgumentNullException.ThrowIfNull(cart);
        ArgumentOutOfRangeException.ThrowIfNegative(reasons);
        return Score([IntentFeatures.Build(cart)], reasons)[0];
    }

    /// <summary>
    /// Probabilities and reasons for many carts in one ML.NET pass, aligned with the input. Reasons: each feature's
    /// contribution (<see cref="TabularModel.Explain(IReadOnlyList{TabularRow})"/>) put into words by
    /// <see cref="IntentFeatures.Reason"/>; features that state the same fact (value and value ratio, returning customer and
    /// earlier orders) are merged into one reason with their contributions summed; largest absolute first, zero
    /// contributions left out. The sign says which way: positive raises the chance of an order.
    /// </summary>
    public IntentScore[] Score(IReadOnlyList<CartSnapshot> carts, int reasons = 3)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(reasons);
        return Score(IntentFeatures.Build(carts), reasons);
    }

    private IntentScore[] Score(TabularRow[] rows, int reasons)
    {
        if (rows.Length == 0) return [];
        var explained = _classifier.Explain(rows);
        var result = new IntentScore[rows.Length];
        for (var i = 0; i < rows.Length; i++)
        {
            var row = rows[i];
            var list = explained[i].Contributions.Where(c => c.Contribution != 0)
                .Select(c => new IntentReason(c.Feature, IntentFeatures.Reason(c.Feature, row), c.Contribution))
                .GroupBy(r => r.Text, StringComparer.Ordinal)
                .Select(g => g.First() with { Contribution = g.Sum(r => r.Contribution) })
                .OrderByDescending(r => Math.Abs(r.Contribution)).ThenBy(r => r.Feature, StringComparer.Ordinal)
                .Take(reasons).ToArray();
            result[i] = new IntentScore(explained[i].Probability, list);
        }
        return result;
    }

    /// <summary>
    /// Writes the model. Layout (little-endian): magic "INTN", int32 version 1; string[] feature names; int32 training
    /// carts; int32 training orders; byte[] classifier (<see cref="TabularModel"/> blob). Changing a feature or its
    /// description is a format change: bump the version (a stored model of another schema is refused on load).
    /// </summary>
    public void Save(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        using var blob = new MemoryStream();
        _classifier.Save(blob);
        using var w = new BinaryWriter(stream, System.Text.Encoding.UTF8, leaveOpen: true);
        ModelFormat.WriteHeader(w, Magic, Version);
        ModelFormat.WriteStrings(w, IntentFeatures.Names);
        w.Write(TrainingCarts);
        w.Write(TrainingOrders);
        ModelFormat.WriteBytes(w, blob.ToArray());
    }

    /// <summary>Reads a model written by <see cref="Save"/>; a wrong, truncated or corrupt blob, or one whose features are
    /// not this build's, throws <see cref="InvalidDataException"/> naming the field.</summary>
    public static IntentModel Load(Stream stream)
    {
        var r = ModelFormat.ReadHeader(stream, Name, Magic, Version);
        var names = r.ReadStrings("feature names");
        if (!names.SequenceEqual(IntentFeatures.Names, StringComparer.Ordinal))
            throw new InvalidDataException($"{Name}: field 'feature names' ({string.Join(", ", names)}) does not match this build's features ({string.Join(", ", IntentFeatures.Names)}).");
        var carts = r.ReadInt32("training carts", 0, int.MaxValue);
        var orders = r.ReadInt32("training orders", 0, carts);
        var bytes = r.ReadByteArray("classifier");
        TabularModel classifier;
        try { classifier = TabularModel.Load(new MemoryStream(bytes, writable: false)); }
        catch (InvalidDataException e) { throw new InvalidDataException($"{Name}: field 'classifier': {e.Message}", e); }
        if (!classifier.Schema.Equals(IntentFeatures.Schema))
        {
            classifier.Dispose();
            throw new InvalidDataException($"{Name}: field 'classifier' has another schema than this build's intent features.");
        }
        return new IntentModel(classifier, carts, orders);
    }

    /// <summary>Disposes the classifier.</summary>
    public void Dispose() => _classifier.Dispose();
}
