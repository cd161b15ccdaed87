using System.Numerics.Tensors;
using PluginApp.Ml.Common;

namespace PluginApp.Ml.Trees;

/// <summary>
/// Histogram gradient-boosted decision trees for binary log loss (J. H. Friedman, "Greedy function
/// approximation: a gradient boosting machine", Ann. Statist. 2001; second-order split gain and learned
/// missing-value direction as in T. Chen and C. Guestrin, "XGBoost", KDD 2016).
/// </summary>
public sealed class GbdtTrainer
{
    private readonly GbdtOptions _o;

    /// <summary>Creates a trainer; rejects bad options by name.</summary>
    public GbdtTrainer(GbdtOptions? options = null)
    {
        _o = options ?? new GbdtOptions();
        _o.Validate();
    }

    /// <summary>Number of rounds the last <see cref="Train"/> call kept (after early stopping).</summary>
    public int BestRounds { get; private set; }

    /// <summary>
    /// Trains on a table and 0/1 labels. Early stopping uses <paramref name="validation"/> when given,
    /// else a stratified <see cref="GbdtOptions.ValidationFraction"/> of the training rows.
    /// </summary>
    public GbdtModel Train(FeatureTable data, bool[] labels, FeatureTable? validation = null, bool[]? validationLabels = null)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(labels);
        if (labels.Length != data.Rows) throw new ArgumentException("labels must have one entry per row.", nameof(labels));
        if (validation != null && (validationLabels == null || validationLabels.Length != validation.Rows))
            throw new ArgumentException("validationLabels must have one entry per validation row.", nameof(validationLabels));
        var rng = new SplitMix64(_o.Seed);
        if (validation == null && _o.ValidationFraction > 0)
        {
            var (trainRows, validRows) = StratifiedSplit(labels, _o.ValidationFraction, rng);
            validation = data.Subset(validRows);
            validationLabels = validRows.Select(i => labels[i]).ToArray();
            labels = trainRows.Select(i => labels[i]).ToArray();
            data = data.Subset(trainRows);
        }
        int n = data.Rows, cols = data.Columns;
        if (n == 0) throw new ArgumentException("No training rows.", nameof(data));
        var threads = _o.Threads == 0 ? Environment.ProcessorCount : _o.Threads;
        var binner = FeatureBinner.Fit(data.Values, n, cols, _o.MaxBins);
        var bins = binner.Transform(data.Values, n, cols);
        var missingBin = new byte[cols];
        for (var f = 0; f < cols; f++) missingBin[f] = (byte)binner.MissingBin(f);

        double wPos = 0, wAll = 0;
        for (var i = 0; i < n; i++) { var w = labels[i] ? _o.PositiveWeight : 1; wAll += w; if (labels[i]) wPos += w; }
        var prior = Math.Clamp(wPos / wAll, 1e-6, 1 - 1e-6);
        var baseScore = Math.Log(prior / (1 - prior));

        var target = new double[n];
        var weight = new double[n];
        for (var i = 0; i < n; i++) { target[i] = labels[i] ? 1 : 0; weight[i] = labels[i] ? _o.PositiveWeight : 1; }
        var work = new double[n];
        var margin = new double[n];
        Array.Fill(margin, baseScore);
        var grad = new double[n];
        var hess = new double[n];
        var rows = new int[n];
        var grower = new TreeGrower(_o, bins, cols, binner.Upper, threads);
        var trees = new List<RegressionTree>();

        byte[]? vBins = null;
        double[]? vMargin = null;
        double[]? vProb = null;
        if (validation != null)
        {
            if (validation.Columns != cols) throw new ArgumentException("validation has a different column count.", nameof(validation));
            vBins = binner.Transform(validation.Values, validation.Rows, cols);
            vMargin = new double[validation.Rows];
            vProb = new double[validation.Rows];
            Array.Fill(vMargin, baseScore);
        }
        var bestLoss = double.PositiveInfinity;
        var allowed = _o.ColumnSubsample < 1 ? new bool[cols] : null;
        var oob = new int[_o.RowSubsample < 1 ? n : 0];
        var outOfBag = 0;
        var bestRounds = 0;

        for (var round = 0; round < _o.Rounds; round++)
        {
            ComputeGradients(margin, target, weight, grad, hess, work, threads);
            var count = 0;
            if (_o.RowSubsample < 1)
            {
                // Branch-free Bernoulli draw: keep-or-overwrite instead of a 50/50-unpredictable branch.
                var threshold = (ulong)(_o.RowSubsample * (1UL << 53));
                outOfBag = 0;
                for (var i = 0; i < n; i++)
                {
                    var keep = (rng.NextUInt64() >> 11) < threshold ? 1 : 0;
                    rows[count] = i;
                    oob[outOfBag] = i;
                    count += keep;
                    outOfBag += 1 - keep;
                }
                if (count == 0)
                {
                    // Nothing drawn: grow on one row; every row is out of bag, so oob[i] == i and the pick is swapped out.
                    rows[count++] = rng.NextInt(n);
                    oob[rows[0]] = oob[--outOfBag];
                }
            }
            else
            {
                for (var i = 0; i < n; i++) rows[i] = i;
                count = n;
            }
            var tree = grower.Grow(rows, count, grad, hess, DrawFeatures(cols, rng, allowed));
            trees.Add(tree);
            // Rows that went through the tree while growing sit in leaf ranges; only the others need a walk.
            foreach (var (b, e, leaf) in grower.LeafRanges)
                for (var j = b; j < e; j++) margin[rows[j]] += tree.Value[leaf];
            if (count < n)
            {
                for (var j = 0; j < outOfBag; j++)
                {
                    var i = oob[j];
                    margin[i] += tree.Value[tree.LeafBinned(bins.AsSpan(i * cols, cols), missingBin)];
                }
            }
            if (vMargin == null) { bestRounds = trees.Count; continue; }
            for (var i = 0; i < vMargin.Length; i++)
                vMargin[i] += tree.Value[tree.LeafBinned(vBins.AsSpan(i * cols, cols), missingBin)];
            var loss = ValidationLoss(vMargin, validationLabels!, vProb!);
            if (loss < bestLoss - 1e-12) { bestLoss = loss; bestRounds = trees.Count; }
            else if (trees.Count - bestRounds >= _o.EarlyStoppingRounds) break;
        }
        BestRounds = bestRounds;
        return new GbdtModel(data.FeatureNames, baseScore, trees.Take(bestRounds).ToArray());
    }

    /// <summary>Marks round(ColumnSubsample * columns) features (at least one) for this tree; null = all.</summary>
    private bool[]? DrawFeatures(int cols, SplitMix64 rng, bool[]? allowed)
    {
        if (allowed == null) return null;
        var order = new int[cols];
        for (var f = 0; f < cols; f++) order[f] = f;
        rng.Shuffle(order.AsSpan());
        var keep = Math.Max(1, (int)Math.Round(_o.ColumnSubsample * cols));
        Array.Clear(allowed);
        for (var j = 0; j < keep; j++) allowed[order[j]] = true;
        return allowed;
    }

    private static double ValidationLoss(double[] margin, bool[] labels, double[] prob)
    {
        System.Numerics.Tensors.TensorPrimitives.Sigmoid(margin, prob);
        for (var i = 0; i < prob.Length; i++) prob[i] = Math.Clamp(labels[i] ? prob[i] : 1 - prob[i], 1e-15, 1);
        System.Numerics.Tensors.TensorPrimitives.Log(prob, prob);
        return -System.Numerics.Tensors.TensorPrimitives.Sum<double>(prob);
    }

    /// <summary>g = w (p - y), h = w p (1 - p), as whole-array SIMD passes; every step is elementwise, so
    /// chunking across threads cannot change the result.</summary>
    private static void ComputeGradients(double[] margin, double[] target, double[] weight, double[] grad, double[] hess, double[] work, int threads)
    {
        var n = margin.Length;
        var chunk = Math.Max(8192, (n + threads - 1) / threads);
        var chunks = (n + chunk - 1) / chunk;
        Parallel.For(0, chunks, new ParallelOptions { MaxDegreeOfParallelism = threads }, t =>
        {
            int b = t * chunk, len = Math.Min(n, b + chunk) - b;
            var p = hess.AsSpan(b, len);
            var g = grad.AsSpan(b, len);
            var w = weight.AsSpan(b, len);
            var q = work.AsSpan(b, len);
            TensorPrimitives.Sigmoid(margin.AsSpan(b, len), p);
            TensorPrimitives.Subtract(p, target.AsSpan(b, len), g);
            TensorPrimitives.Multiply(g, w, g);
            TensorPrimitives.Subtract(1.0, p, q);
            TensorPrimitives.Multiply(p, q, p);
            TensorPrimitives.Multiply(p, w, p);
            TensorPrimitives.Max(p, 1e-16, p);
        });
    }

    /// <summary>The split <see cref="Train"/> uses for early stopping when no validation set is given, for callers
    /// that want to hand the same rows to another library.</summary>
    public static (int[] Train, int[] Valid) ValidationSplit(bool[] labels, double fraction, ulong seed) =>
        StratifiedSplit(labels, fraction, new SplitMix64(seed));

    /// <summary>Stratified random split so rare positives appear on both sides.</summary>
    internal static (int[] Train, int[] Valid) StratifiedSplit(bool[] labels, double fraction, SplitMix64 rng)
    {
        var train = new List<int>();
        var valid = new List<int>();
        foreach (var cls in new[] { false, true })
        {
            var idx = Enumerable.Range(0, labels.Length).Where(i => labels[i] == cls).ToArray();
            rng.Shuffle(idx.AsSpan());
            var nv = (int)Math.Round(idx.Length * fraction);
            valid.AddRange(idx.Take(nv));
            train.AddRange(idx.Skip(nv));
        }
        train.Sort();
        valid.Sort();
        return (train.ToArray(), valid.ToArray());
    }
}
