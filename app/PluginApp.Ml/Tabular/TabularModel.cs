using System.Collections.Concurrent;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Calibrators;
using Microsoft.ML.Trainers;
using Microsoft.ML.Trainers.LightGbm;
using PluginApp.Ml.Serialization;

namespace PluginApp.Ml.Tabular;

/// <summary>What was trained, kept with the model.</summary>
/// <param name="Learner">The learner actually used (never <see cref="TabularLearner.Auto"/>).</param>
/// <param name="Calibrator">The calibrator appended to the learner.</param>
/// <param name="Trees">LightGbm: trees kept after early stopping; 0 for logistic regression.</param>
/// <param name="Bias">Logistic regression's intercept (log-odds at the mean row); LightGbm's ensemble bias (0: LightGBM
/// folds its starting score into the first tree).</param>
/// <param name="TrainingRows">Rows the learner was fitted on.</param>
/// <param name="TrainingPositives">Positives among them.</param>
/// <param name="ValidationRows">Held-out rows used for early stopping and the calibrator (0 = none).</param>
public sealed record TabularModelInfo(TabularLearner Learner, TabularCalibrator Calibrator, int Trees, double Bias,
    int TrainingRows, int TrainingPositives, int ValidationRows);

/// <summary>A probability and the learner's uncalibrated log-odds score.</summary>
/// <param name="Probability">Calibrated probability of the positive class.</param>
/// <param name="Margin">The learner's raw score, in log-odds (LightGbm runs with sigmoid 1), before the calibrator.</param>
public readonly record struct TabularScore(double Probability, double Margin);

/// <summary>One original feature's share of a prediction.</summary>
/// <param name="Feature">Feature name.</param>
/// <param name="Description">The schema's description of the feature.</param>
/// <param name="Kind">Numeric or categorical.</param>
/// <param name="Value">The row's raw value: a <see cref="float"/> or a <see cref="string"/>, null when missing.</param>
/// <param name="Contribution">ML.NET's feature contribution (un-normalized) in log-odds units, summed over the feature's
/// Features slots (all its one-hot slots, or the value slot plus the missing-indicator slot). Positive pushes towards the
/// positive class.</param>
public sealed record FeatureContribution(string Feature, string Description, FeatureKind Kind, object? Value, double Contribution);

/// <summary>
/// A prediction with per-feature contributions from ML.NET's feature-contribution calculator (<c>normalize: false</c>),
/// largest absolute contribution first.
/// </summary>
/// <remarks>
/// What the contributions add up to depends on the learner (measured, see the README):
/// <list type="bullet">
/// <item>Logistic regression: <c>Bias + sum(Contributions) = Margin</c> (to float rounding, ~1e-6). Each slot's
/// contribution is weight x standardized value, so a feature's contribution is relative to the training mean.</item>
/// <item>LightGbm: no such identity (<see cref="IsAdditive"/> is false). For every split on the row's path in every tree,
/// ML.NET adds to the split feature the difference between the leaf the row reaches and the leaf it would reach had that
/// one split gone the other way. This ranks features by local influence but does not decompose the margin: measured on
/// 2,000 fraud-benchmark rows (131 trees), <c>|Margin - Bias - sum(Contributions)|</c> was 22.8 log-odds units on average
/// and up to 28.5. Use the order and sign of the top contributions, not their sizes.</item>
/// </list>
/// </remarks>
/// <param name="Probability">Calibrated probability.</param>
/// <param name="Margin">Uncalibrated log-odds score.</param>
/// <param name="Bias">See <see cref="TabularModelInfo.Bias"/>.</param>
/// <param name="IsAdditive">True when <c>Bias + sum(Contributions) = Margin</c> holds (logistic regression).</param>
/// <param name="Contributions">One entry per schema feature, by descending absolute contribution, then name.</param>
public sealed record TabularExplanation(double Probability, double Margin, double Bias, bool IsAdditive, IReadOnlyList<FeatureContribution> Contributions)
{
    /// <summary>The n features with the largest absolute non-zero contribution.</summary>
    public IReadOnlyList<FeatureContribution> Top(int n) => Contributions.Where(c => c.Contribution != 0).Take(Math.Max(0, n)).ToArray();
}

/// <summary>
/// A trained tabular classifier: an ML.NET transformer chain (featurization, learner, calibrator) plus the schema.
/// Every member is safe to call from many threads at once: batch calls run <c>Transform</c> on a fresh view (ML.NET
/// transformers are immutable), single-row calls borrow a <see cref="PredictionEngine{TSrc,TDst}"/> from a pool
/// (an engine is not thread-safe, so each is used by one thread at a time).
/// </summary>
public sealed class TabularModel : IDisposable
{
    private const string Magic = "TABM";
    private const int Version = 1;
    private const string Name = nameof(TabularModel);

    private readonly MLContext _ml;
    private readonly ITransformer _chain;
    private readonly TabularLayout _layout;
    private readonly ITransformer _predictor;
    private readonly ConcurrentBag<PredictionEngine<TabularMlInput, TabularMlOutput>> _engines = [];
    private readonly Lazy<ITransformer> _explainer;
    private volatile bool _disposed;

    internal TabularModel(MLContext ml, ITransformer chain, TabularLayout layout, TabularModelInfo info)
    {
        _ml = ml;
        _chain = chain;
        _layout = layout;
        Info = info;
        _predictor = FindPredictor(chain) ?? throw new InvalidOperationException("The chain has no learner that ML.NET can explain.");
        _explainer = new Lazy<ITransformer>(BuildExplainer, LazyThreadSafetyMode.ExecutionAndPublication);
    }

    /// <summary>The features the model reads.</summary>
    public TabularSchema Schema => _layout.Schema;

    /// <summary>Learner, calibrator and training facts.</summary>
    public TabularModelInfo Info { get; }

    /// <summary>Probability of the positive class for one row (pooled prediction engine; thread-safe).</summary>
    public double PredictProbability(TabularRow row) => Predict(row).Probability;

    /// <summary>Probability and margin for one row (pooled prediction engine; thread-safe).</summary>
    public TabularScore Predict(TabularRow row)
    {
        CheckRow(row, nameof(row));
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (!_engines.TryTake(out var engine))
            engine = _ml.Model.CreatePredictionEngine<TabularMlInput, TabularMlOutput>(_chain, ignoreMissingColumns: true, inputSchemaDefinition: _layout.Definition);
        try
        {
            var o = engine.Predict(_layout.Pack(row));
            return new TabularScore(o.Probability, o.Score);
        }
        finally
        {
            // Why: at most one idle engine per core is kept; a burst beyond that is disposed rather than hoarded.
            if (_disposed || _engines.Count >= Environment.ProcessorCount * 2) engine.Dispose();
            else _engines.Add(engine);
        }
    }

    /// <summary>Probabilities for many rows in one ML.NET <c>Transform</c> (thread-safe).</summary>
    public double[] PredictProbabilities(IReadOnlyList<TabularRow> rows) => Predict(rows).Select(s => s.Probability).ToArray();

    /// <summary>Probabilities and margins for many rows in one ML.NET <c>Transform</c> (thread-safe).</summary>
    public TabularScore[] Predict(IReadOnlyList<TabularRow> rows)
    {
        var scored = _chain.Transform(View(rows));
        var result = new TabularScore[rows.Count];
        using var cursor = scored.GetRowCursor([scored.Schema[TabularLayout.ScoreColumn], scored.Schema[TabularLayout.ProbabilityColumn]]);
        var score = cursor.GetGetter<float>(scored.Schema[TabularLayout.ScoreColumn]);
        var prob = cursor.GetGetter<float>(scored.Schema[TabularLayout.ProbabilityColumn]);
        float s = 0, p = 0;
        var i = 0;
        while (cursor.MoveNext())
        {
            score(ref s);
            prob(ref p);
            result[i++] = new TabularScore(p, s);
        }
        return result;
    }

    /// <summary>Explanation of one row; see <see cref="TabularExplanation"/> for what the contributions mean.</summary>
    public TabularExplanation Explain(TabularRow row) => Explain([row])[0];

    /// <summary>Explanations of many rows in one pass of ML.NET's feature-contribution transform (thread-safe).</summary>
    public TabularExplanation[] Explain(IReadOnlyList<TabularRow> rows)
    {
        var view = _explainer.Value.Transform(_chain.Transform(View(rows)));
        var schema = view.Schema;
        var result = new TabularExplanation[rows.Count];
        using var cursor = view.GetRowCursor([schema[TabularLayout.ScoreColumn], schema[TabularLayout.ProbabilityColumn], schema[TabularLayout.ContributionsColumn]]);
        var score = cursor.GetGetter<float>(schema[TabularLayout.ScoreColumn]);
        var prob = cursor.GetGetter<float>(schema[TabularLayout.ProbabilityColumn]);
        var contrib = cursor.GetGetter<VBuffer<float>>(schema[TabularLayout.ContributionsColumn]);
        float s = 0, p = 0;
        VBuffer<float> buffer = default;
        var slots = _layout.SlotFeature;
        var features = Schema.Features;
        var i = 0;
        while (cursor.MoveNext())
        {
            score(ref s);
            prob(ref p);
            contrib(ref buffer);
            // Why: the getter reuses its buffer on the next row, so the slots are summed into a fresh array right here.
            var perFeature = new double[features.Count];
            var values = buffer.GetValues();
            if (buffer.IsDense)
                for (var j = 0; j < values.Length; j++) perFeature[slots[j]] += values[j];
            else
            {
                var indices = buffer.GetIndices();
                for (var j = 0; j < values.Length; j++) perFeature[slots[indices[j]]] += values[j];
            }
            var row = rows[i];
            var list = Enumerable.Range(0, features.Count)
                .Select(f => new FeatureContribution(features[f].Name, features[f].Description, features[f].Kind, row.Value(f), perFeature[f]))
                .OrderByDescending(c => Math.Abs(c.Contribution)).ThenBy(c => c.Feature, StringComparer.Ordinal)
                .ToArray();
            result[i++] = new TabularExplanation(p, s, Info.Bias, Info.Learner == TabularLearner.LogisticRegression, list);
        }
        return result;
    }

    private IDataView View(IReadOnlyList<TabularRow> rows)
    {
        ArgumentNullException.ThrowIfNull(rows);
        for (var i = 0; i < rows.Count; i++) CheckRow(rows[i], $"rows[{i}]");
        return _ml.Data.LoadFromEnumerable(rows.Select(r => _layout.Pack(r)), _layout.Definition);
    }

    private void CheckRow(TabularRow row, string name)
    {
        if (row is null) throw new ArgumentNullException(name);
        if (!row.Schema.Equals(Schema)) throw new ArgumentException($"{name} was built against another schema than the model's.", name);
    }

    private ITransformer BuildExplainer()
    {
        var slots = _layout.SlotFeature.Length;
        var empty = _chain.Transform(_ml.Data.LoadFromEnumerable(Array.Empty<TabularMlInput>(), _layout.Definition));
        // Why: normalize=false keeps log-odds units (ML.NET's default rescales each row to [-1, 1]); asking for as many
        // positive and negative contributions as there are slots keeps every slot instead of the top 10 each way.
        var estimator = _predictor switch
        {
            ISingleFeaturePredictionTransformer<CalibratedModelParametersBase<LightGbmBinaryModelParameters, PlattCalibrator>> trees =>
                _ml.Transforms.CalculateFeatureContribution(trees, slots, slots, normalize: false),
            ISingleFeaturePredictionTransformer<CalibratedModelParametersBase<LinearBinaryModelParameters, PlattCalibrator>> linear =>
                _ml.Transforms.CalculateFeatureContribution(linear, slots, slots, normalize: false),
            _ => throw new InvalidOperationException("unreachable: FindPredictor accepts only these two learners"),
        };
        return estimator.Fit(empty);
    }

    // Why: ML.NET's contribution calculator is typed by the model parameters, so the two learners this class trains are
    // matched by their concrete (calibrated) types, which ML.NET restores on load.
    private static ITransformer? FindPredictor(ITransformer chain) =>
        chain is IEnumerable<ITransformer> parts
            ? parts.LastOrDefault(t => t is ISingleFeaturePredictionTransformer<CalibratedModelParametersBase<LightGbmBinaryModelParameters, PlattCalibrator>>
                or ISingleFeaturePredictionTransformer<CalibratedModelParametersBase<LinearBinaryModelParameters, PlattCalibrator>>)
            : null;

    /// <summary>
    /// Writes the model. Layout (little-endian): magic "TABM", int32 version 1; int32 feature count, then per feature
    /// name, int32 kind, description (length-prefixed UTF-8); int32 learner, int32 calibrator, int32 trees, float64 bias,
    /// int32 training rows, int32 training positives, int32 validation rows; int32[] missing-indicator features;
    /// int32[] Features slot -> feature; byte[] ML.NET model (<c>MLContext.Model.Save</c>, a zip).
    /// </summary>
    public void Save(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        using var ml = new MemoryStream();
        _ml.Model.Save(_chain, _ml.Data.LoadFromEnumerable(Array.Empty<TabularMlInput>(), _layout.Definition).Schema, ml);
        using var w = new BinaryWriter(stream, System.Text.Encoding.UTF8, leaveOpen: true);
        ModelFormat.WriteHeader(w, Magic, Version);
        w.Write(Schema.Count);
        foreach (var f in Schema.Features)
        {
            w.Write(f.Name);
            w.Write((int)f.Kind);
            w.Write(f.Description);
        }
        w.Write((int)Info.Learner);
        w.Write((int)Info.Calibrator);
        w.Write(Info.Trees);
        w.Write(Info.Bias);
        w.Write(Info.TrainingRows);
        w.Write(Info.TrainingPositives);
        w.Write(Info.ValidationRows);
        ModelFormat.WriteInts(w, _layout.MissingIndicators);
        ModelFormat.WriteInts(w, _layout.SlotFeature);
        ModelFormat.WriteBytes(w, ml.ToArray());
    }

    /// <summary>Reads a model written by <see cref="Save"/>; a wrong, truncated or corrupt blob throws
    /// <see cref="InvalidDataException"/> naming the field.</summary>
    public static TabularModel Load(Stream stream)
    {
        var r = ModelFormat.ReadHeader(stream, Name, Magic, Version);
        var count = r.ReadInt32("feature count", 1, 1_000_000);
        var features = new TabularFeature[count];
        for (var i = 0; i < count; i++)
            features[i] = new TabularFeature(r.ReadString("feature name"), (FeatureKind)r.ReadInt32("feature kind", 0, 1), r.ReadString("feature description"));
        TabularSchema schema;
        try { schema = new TabularSchema(features); }
        catch (ArgumentException e) { throw new InvalidDataException($"{Name}: the stored schema is invalid: {e.Message}", e); }
        var info = new TabularModelInfo((TabularLearner)r.ReadInt32("learner", 0, 1), (TabularCalibrator)r.ReadInt32("calibrator", 0, 2),
            r.ReadInt32("trees", 0, int.MaxValue), r.ReadDouble("bias"), r.ReadInt32("training rows", 0, int.MaxValue),
            r.ReadInt32("training positives", 0, int.MaxValue), r.ReadInt32("validation rows", 0, int.MaxValue));
        var missing = r.ReadInts("missing indicators");
        var slots = r.ReadInts("slot map");
        var bytes = r.ReadByteArray("ML.NET model");
        if (missing.Any(f => f < 0 || f >= count || features[f].Kind != FeatureKind.Numeric) || slots.Any(f => f < 0 || f >= count))
            throw new InvalidDataException($"{Name}: field 'missing indicators' or 'slot map' names a feature outside the schema.");
        var ml = new MLContext(0);
        ITransformer chain;
        try { chain = ml.Model.Load(new MemoryStream(bytes, writable: false), out _); }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw new InvalidDataException($"{Name}: field 'ML.NET model' could not be loaded by ML.NET: {e.Message}", e);
        }
        var layout = new TabularLayout(schema, missing, slots);
        var output = chain.GetOutputSchema(ml.Data.LoadFromEnumerable(Array.Empty<TabularMlInput>(), layout.Definition).Schema);
        var size = (output.GetColumnOrNull(TabularLayout.FeaturesColumn)?.Type as VectorDataViewType)?.Size;
        if (size != slots.Length)
            throw new InvalidDataException($"{Name}: field 'slot map' has {slots.Length} slots but the ML.NET model's Features has {size?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "none"}.");
        try { return new TabularModel(ml, chain, layout, info); }
        catch (InvalidOperationException e) { throw new InvalidDataException($"{Name}: {e.Message}", e); }
    }

    /// <summary>Disposes the pooled prediction engines.</summary>
    public void Dispose()
    {
        _disposed = true;
        while (_engines.TryTake(out var e)) e.Dispose();
    }
}
