using Microsoft.ML;
using Microsoft.ML.Calibrators;
using Microsoft.ML.Data;
using Microsoft.ML.Trainers;
using Microsoft.ML.Trainers.LightGbm;
using Microsoft.ML.Transforms;
using PluginApp.Ml.Common;

namespace PluginApp.Ml.Tabular;

/// <summary>
/// Trains a binary classifier on rows of a <see cref="TabularSchema"/> as one ML.NET pipeline: one-hot encoding of the
/// categorical features (a "(missing)" level, the most frequent <see cref="TabularOptions.MaxCategoriesPerFeature"/>
/// values), a 0/1 missing indicator for every numeric feature that had missing values in training, mean imputation of
/// the numerics, standardization for logistic regression, then the learner (ML.NET's LightGbm, G. Ke et al.,
/// "LightGBM", NeurIPS 2017; or L-BFGS logistic regression) and ML.NET's calibrator (Platt, "Probabilistic outputs for
/// support vector machines", 1999; or isotonic, Zadrozny and Elkan, KDD 2002). Every step is a fitted ML.NET transformer
/// saved inside the model, so scoring applies exactly the transforms training learned.
/// </summary>
public sealed class TabularTrainer
{
    private readonly TabularOptions _o;
    private static readonly object LightGbmTraining = new();

    /// <summary>Creates a trainer; rejects a bad option with <see cref="ArgumentOutOfRangeException"/> naming it.</summary>
    public TabularTrainer(TabularSchema schema, TabularOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(schema);
        Schema = schema;
        _o = options ?? new TabularOptions();
        _o.Validate();
    }

    /// <summary>The schema every example must belong to.</summary>
    public TabularSchema Schema { get; }

    /// <summary>The validated options.</summary>
    public TabularOptions Options => _o;

    /// <summary>The learner <see cref="Train"/> uses for this many (fit) rows and positives.</summary>
    public TabularLearner ResolveLearner(int rows, int positives) => _o.Learner switch
    {
        TabularLearner.Auto => rows < _o.AutoMinRows || positives < _o.AutoMinPositives ? TabularLearner.LogisticRegression : TabularLearner.LightGbm,
        var l => l,
    };

    /// <summary>
    /// Stratified split of examples into fit and validation parts (see <see cref="SplitIndices"/>). Use it, or
    /// <see cref="SplitIndices"/>, to hand exactly the same rows to another library.
    /// </summary>
    public static (TabularExample[] Fit, TabularExample[] Validation) SplitValidation(IReadOnlyList<TabularExample> examples, double fraction, int seed)
    {
        ArgumentNullException.ThrowIfNull(examples);
        var (fit, valid) = SplitIndices(examples.Select(e => e.Label).ToArray(), fraction, seed);
        return (fit.Select(i => examples[i]).ToArray(), valid.Select(i => examples[i]).ToArray());
    }

    /// <summary>
    /// Stratified split of row indexes: each class is shuffled with the seed (SplitMix64, Fisher-Yates) and its first
    /// round(fraction x class size) rows are held out. Both parts are returned in ascending index order.
    /// </summary>
    public static (int[] Fit, int[] Validation) SplitIndices(IReadOnlyList<bool> labels, double fraction, int seed)
    {
        ArgumentNullException.ThrowIfNull(labels);
        Check.InRange(fraction, 0, 1, nameof(fraction));
        var rng = new SplitMix64(unchecked((ulong)seed));
        var held = new bool[labels.Count];
        foreach (var cls in new[] { false, true })
        {
            var idx = Enumerable.Range(0, labels.Count).Where(i => labels[i] == cls).ToArray();
            rng.Shuffle(idx.AsSpan());
            var take = (int)Math.Round(fraction * idx.Length, MidpointRounding.AwayFromZero);
            for (var j = 0; j < take; j++) held[idx[j]] = true;
        }
        return (Enumerable.Range(0, held.Length).Where(i => !held[i]).ToArray(), Enumerable.Range(0, held.Length).Where(i => held[i]).ToArray());
    }

    /// <summary>
    /// Trains a model. Early stopping (LightGbm) and the calibrator use <paramref name="validation"/> when given, else a
    /// stratified <see cref="TabularOptions.ValidationFraction"/> of <paramref name="training"/>; with neither, the
    /// calibrator is fitted on the training rows.
    /// </summary>
    /// <exception cref="ArgumentException">An example of another schema, a non-finite or non-positive weight, no rows,
    /// or a set without positives or without negatives; the message names the set and the example.</exception>
    public TabularModel Train(IReadOnlyList<TabularExample> training, IReadOnlyList<TabularExample>? validation = null)
    {
        CheckSet(training, nameof(training));
        if (validation != null) CheckSet(validation, nameof(validation));
        else if (_o.ValidationFraction > 0)
        {
            (training, validation) = SplitValidation(training, _o.ValidationFraction, _o.Seed);
            // Why: a tiny set can leave a class with no held-out row; then early stopping and the calibrator fall back to the fit rows.
            if (!validation.Any(e => e.Label) || validation.All(e => e.Label)) { training = [.. training, .. validation]; validation = null; }
        }
        var positives = training.Count(e => e.Label);
        var learner = ResolveLearner(training.Count, positives);

        var ml = new MLContext(_o.Seed);
        var layout = new TabularLayout(Schema, MissingIndicators(training), []);
        var fitView = ml.Data.LoadFromEnumerable(training.Select(e => layout.Pack(e.Row, e.Label, Weight(e))), layout.Definition);
        var validView = validation == null ? null : ml.Data.LoadFromEnumerable(validation.Select(e => layout.Pack(e.Row, e.Label, Weight(e))), layout.Definition);

        var featurizer = Featurizer(ml, layout, training, learner).Fit(fitView);
        var fitFeatures = featurizer.Transform(fitView);
        var parts = new List<ITransformer> { featurizer };
        ITransformer predictor;
        int trees;
        double bias;
        if (learner == TabularLearner.LightGbm)
        {
            var useValidation = validView != null && _o.EarlyStoppingRounds > 0;
            var trainer = ml.BinaryClassification.Trainers.LightGbm(LightGbmOptions(useValidation));
            // Why: ML.NET's LightGbm reads the validation rows only through Fit(train, validation); early stopping then
            // watches binary_logloss on them and keeps the best iteration.
            BinaryPredictionTransformer<CalibratedModelParametersBase<LightGbmBinaryModelParameters, PlattCalibrator>> fitted;
            // Why one LightGbm training at a time per process: the native library is not safe for concurrent training in
            // one process (its shared OpenMP state; LightGBM's FAQ and issues report random segfaults), and a crash takes
            // the whole app (or test host) down; the ML tests' host, training in parallel, crashed once on 30 November 2026
            // (cause not captured). Scoring is ML.NET's managed trees and needs no lock.
            lock (LightGbmTraining)
                fitted = useValidation ? trainer.Fit(fitFeatures, featurizer.Transform(validView!)) : trainer.Fit(fitFeatures);
            predictor = fitted;
            trees = fitted.Model.SubModel.TrainedTreeEnsemble.Trees.Count;
            bias = fitted.Model.SubModel.TrainedTreeEnsemble.Bias;
        }
        else
        {
            var fitted = ml.BinaryClassification.Trainers.LbfgsLogisticRegression(new LbfgsLogisticRegressionBinaryTrainer.Options
            {
                LabelColumnName = TabularLayout.LabelColumn,
                FeatureColumnName = TabularLayout.FeaturesColumn,
                ExampleWeightColumnName = TabularLayout.WeightColumn,
                L1Regularization = 0,
                L2Regularization = (float)_o.LogisticL2,
                // Why one thread unless told: L-BFGS sums its gradient in one float per thread's share of the rows, so the
                // model depended on the machine's cores (until 6 Dec 2026 a store's churn model and its calibration came out
                // otherwise on 2 cores than on 8). Small next to LightGbm's training, which is deterministic on any count.
                NumberOfThreads = _o.Threads == 0 ? 1 : _o.Threads,
                Quiet = true,
            }).Fit(fitFeatures);
            predictor = fitted;
            trees = 0;
            bias = fitted.Model.SubModel.Bias;
        }
        parts.Add(predictor);

        if (_o.Calibrator != TabularCalibrator.None)
        {
            // Why: fitted unweighted on rows the learner did not train on, so it also undoes PositiveWeight's shift.
            var calibrationRows = predictor.Transform(validView != null ? featurizer.Transform(validView) : fitFeatures);
            IEstimator<ITransformer> calibrator = _o.Calibrator == TabularCalibrator.Platt
                ? ml.BinaryClassification.Calibrators.Platt(TabularLayout.LabelColumn, TabularLayout.ScoreColumn)
                : ml.BinaryClassification.Calibrators.Isotonic(TabularLayout.LabelColumn, TabularLayout.ScoreColumn);
            parts.Add(calibrator.Fit(calibrationRows));
        }

        var chain = new TransformerChain<ITransformer>(parts.ToArray());
        var features = ((VectorDataViewType)fitFeatures.Schema[TabularLayout.FeaturesColumn].Type).Size;
        var info = new TabularModelInfo(learner, _o.Calibrator, trees, bias, training.Count, positives, validation?.Count ?? 0);
        return new TabularModel(ml, chain, layout.WithSlots(layout.ComputeSlots(features)), info);
    }

    private float Weight(TabularExample e) => (float)(e.Weight * (e.Label ? _o.PositiveWeight : 1));

    private LightGbmBinaryTrainer.Options LightGbmOptions(bool earlyStopping) => new()
    {
        LabelColumnName = TabularLayout.LabelColumn,
        FeatureColumnName = TabularLayout.FeaturesColumn,
        ExampleWeightColumnName = TabularLayout.WeightColumn,
        NumberOfLeaves = _o.NumberOfLeaves,
        LearningRate = _o.LearningRate,
        NumberOfIterations = _o.Iterations,
        MinimumExampleCountPerLeaf = _o.MinExamplesPerLeaf,
        EarlyStoppingRound = earlyStopping ? _o.EarlyStoppingRounds : 0,
        EvaluationMetric = LightGbmBinaryTrainer.Options.EvaluateMetricType.Logloss,
        // Why: ML.NET's default sigmoid 0.5 makes the score half the log-odds; with 1 the score is the log-odds, so the
        // explanation's margin, L2 and MinChildWeight have the units XGBoost and our reports use.
        Sigmoid = 1,
        // Why: the one-hot slots carry ML.NET's categorical annotation, and by default LightGbm would then fold them back into
        // native categorical splits; we keep plain 0/1 splits so contributions stay per one-hot slot.
        UseCategoricalSplit = false,
        Seed = _o.Seed,
        // Why: LightGBM is only reproducible across thread counts with deterministic=true and a forced histogram layout
        // (otherwise it picks row- or column-wise by timing both).
        Deterministic = true,
        ForceRowWise = true,
        NumberOfThreads = _o.Threads == 0 ? null : _o.Threads,
        Silent = true,
        Verbose = false,
        Booster = new GradientBooster.Options
        {
            L2Regularization = _o.L2,
            MinimumChildWeight = _o.MinChildWeight,
            MaximumTreeDepth = _o.MaxDepth,
        },
    };

    private IEstimator<ITransformer> Featurizer(MLContext ml, TabularLayout layout, IReadOnlyList<TabularExample> training, TabularLearner learner)
    {
        var inputs = new List<string>();
        IEstimator<ITransformer> est = new EstimatorChain<ITransformer>();
        if (layout.Numeric.Length > 0)
        {
            est = est.Append(ml.Transforms.ReplaceMissingValues("NumFilled", TabularLayout.NumColumn, MissingValueReplacingEstimator.ReplacementMode.Mean));
            inputs.Add("NumFilled");
        }
        if (layout.MissingIndicators.Length > 0)
        {
            est = est.Append(ml.Transforms.IndicateMissingValues("NumMissingBool", TabularLayout.MissColumn))
                .Append(ml.Transforms.Conversion.ConvertType("NumMissing", "NumMissingBool", DataKind.Single));
            inputs.Add("NumMissing");
        }
        if (layout.Categorical.Length > 0)
        {
            // Why: one vocabulary for the whole text vector (ML.NET's encoder has one per column), each categorical feature
            // gets its own block of slots; the per-feature cap keeps the most frequent values, not the first seen.
            var vocabulary = layout.Categorical
                .SelectMany(f => training.GroupBy(e => e.Row.Categories[f] ?? TabularLayout.MissingCategory, StringComparer.Ordinal)
                    .OrderByDescending(g => g.Count()).ThenBy(g => g.Key, StringComparer.Ordinal)
                    .Take(_o.MaxCategoriesPerFeature).Select(g => g.Key))
                .Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal)
                .Select(v => new TabularMlTerm { Value = v.AsMemory() }).ToArray();
            est = est.Append(ml.Transforms.Categorical.OneHotEncoding("CatOneHot", TabularLayout.CatColumn,
                OneHotEncodingEstimator.OutputKind.Indicator, keyData: ml.Data.LoadFromEnumerable(vocabulary)));
            inputs.Add("CatOneHot");
        }
        est = est.Append(ml.Transforms.Concatenate(TabularLayout.FeaturesColumn, inputs.ToArray()));
        if (learner == TabularLearner.LogisticRegression)
            est = est.Append(ml.Transforms.NormalizeMeanVariance(TabularLayout.FeaturesColumn, fixZero: false));
        return est;
    }

    private int[] MissingIndicators(IReadOnlyList<TabularExample> training) =>
        Enumerable.Range(0, Schema.Count)
            .Where(f => Schema.Features[f].Kind == FeatureKind.Numeric && training.Any(e => float.IsNaN(e.Row.Numbers[f])))
            .ToArray();

    private void CheckSet(IReadOnlyList<TabularExample> set, string name)
    {
        ArgumentNullException.ThrowIfNull(set, name);
        if (set.Count == 0) throw new ArgumentException($"{name} has no examples.", name);
        bool pos = false, neg = false;
        for (var i = 0; i < set.Count; i++)
        {
            var e = set[i] ?? throw new ArgumentException($"{name}[{i}] is null.", name);
            if (e.Row is null) throw new ArgumentException($"{name}[{i}].Row is null.", name);
            if (!e.Row.Schema.Equals(Schema)) throw new ArgumentException($"{name}[{i}] was built against another schema than the trainer's.", name);
            if (!(e.Weight > 0) || float.IsInfinity(e.Weight)) throw new ArgumentException($"{name}[{i}].Weight is {e.Weight}; weights must be finite and > 0.", name);
            if (e.Label) pos = true; else neg = true;
        }
        if (!pos) throw new ArgumentException($"{name} has no positive examples; a binary classifier needs both classes.", name);
        if (!neg) throw new ArgumentException($"{name} has no negative examples; a binary classifier needs both classes.", name);
    }
}
