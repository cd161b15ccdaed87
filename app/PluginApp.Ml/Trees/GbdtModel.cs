using PluginApp.Ml.Common;
using PluginApp.Ml.Serialization;

namespace PluginApp.Ml.Trees;

/// <summary>Boosted trees for binary classification; margin = BaseScore + sum of leaf values.</summary>
public sealed class GbdtModel : IBinaryClassifier
{
    private const string Magic = "PGBT";
    private const int Version = 1;
    private readonly RegressionTree[] _trees;

    internal GbdtModel(string[] featureNames, double baseScore, RegressionTree[] trees)
    {
        FeatureNames = featureNames;
        BaseScore = baseScore;
        _trees = trees;
    }

    /// <summary>Column names the model was trained on.</summary>
    public string[] FeatureNames { get; }
    /// <summary>Prior log-odds.</summary>
    public double BaseScore { get; }
    /// <summary>Number of trees.</summary>
    public int TreeCount => _trees.Length;
    /// <inheritdoc />
    public int FeatureCount => FeatureNames.Length;

    /// <inheritdoc />
    public double PredictMargin(ReadOnlySpan<float> row)
    {
        CheckRow(row);
        var m = BaseScore;
        foreach (var t in _trees) m += t.Value[t.Leaf(row)];
        return m;
    }

    /// <inheritdoc />
    public double PredictProbability(ReadOnlySpan<float> row) => ClassifierExtensions.Sigmoid(PredictMargin(row));

    /// <summary>
    /// Path attributions (A. Saabas, "Interpreting random forests", 2014): every split on the path credits its
    /// feature with the change of node value, so Bias + sum(contributions) equals the margin exactly.
    /// </summary>
    public Explanation Explain(ReadOnlySpan<float> row)
    {
        CheckRow(row);
        var c = new double[FeatureCount];
        var bias = BaseScore;
        foreach (var t in _trees)
        {
            bias += t.Value[0];
            t.AddContributions(row, c);
        }
        return new Explanation(bias, c, FeatureNames);
    }

    /// <summary>Total split gain is not kept; this counts splits per feature, a cheap importance.</summary>
    public int[] SplitCounts()
    {
        var c = new int[FeatureCount];
        foreach (var t in _trees)
            foreach (var f in t.Feature)
                if (f >= 0) c[f]++;
        return c;
    }

    private void CheckRow(ReadOnlySpan<float> row)
    {
        if (row.Length != FeatureCount) throw new ArgumentException($"Row has {row.Length} values, the model expects {FeatureCount}.", nameof(row));
    }

    /// <summary>
    /// Layout (little-endian): "PGBT" | int32 version=1 | string[] featureNames (int32 count, then
    /// 7-bit-length-prefixed UTF-8) | float64 baseScore | int32 treeCount | per tree: int32 nodeCount, then per
    /// node: int32 feature (-1 = leaf), float32 threshold, uint8 thresholdBin, uint8 defaultLeft, int32 left,
    /// int32 right, float64 value.
    /// </summary>
    public void Save(Stream stream)
    {
        using var w = new BinaryWriter(stream, System.Text.Encoding.UTF8, leaveOpen: true);
        ModelFormat.WriteHeader(w, Magic, Version);
        ModelFormat.WriteStrings(w, FeatureNames);
        w.Write(BaseScore);
        w.Write(_trees.Length);
        foreach (var t in _trees)
        {
            w.Write(t.NodeCount);
            for (var i = 0; i < t.NodeCount; i++)
            {
                w.Write(t.Feature[i]);
                w.Write(t.Threshold[i]);
                w.Write(t.ThresholdBin[i]);
                w.Write((byte)(t.DefaultLeft[i] ? 1 : 0));
                w.Write(t.Left[i]);
                w.Write(t.Right[i]);
                w.Write(t.Value[i]);
            }
        }
    }

    /// <summary>Reads a model written by <see cref="Save"/>; throws <see cref="InvalidDataException"/> on a bad blob.</summary>
    public static GbdtModel Load(Stream stream)
    {
        const string name = nameof(GbdtModel);
        var r = ModelFormat.ReadHeader(stream, name, Magic, Version);
        var names = r.ReadStrings("featureNames");
        var baseScore = r.ReadDouble("baseScore");
        var treeCount = r.ReadInt32("treeCount", 0, 1_000_000);
        var trees = new RegressionTree[treeCount];
        for (var t = 0; t < treeCount; t++)
        {
            var n = r.ReadInt32("nodeCount", 1, 1 << 24);
            var tree = new RegressionTree
            {
                Feature = new int[n], Threshold = new float[n], ThresholdBin = new byte[n], DefaultLeft = new bool[n],
                Left = new int[n], Right = new int[n], Value = new double[n],
            };
            for (var i = 0; i < n; i++)
            {
                tree.Feature[i] = r.ReadInt32("node feature", -1, names.Length - 1);
                tree.Threshold[i] = r.ReadSingle("node threshold");
                tree.ThresholdBin[i] = r.ReadBytes(1, "node threshold bin")[0];
                tree.DefaultLeft[i] = r.ReadBytes(1, "node default direction")[0] != 0;
                tree.Left[i] = r.ReadInt32("node left", -1, n - 1);
                tree.Right[i] = r.ReadInt32("node right", -1, n - 1);
                tree.Value[i] = r.ReadDouble("node value");
                // Children always come after their parent, which also rules out cycles.
                if (tree.Feature[i] >= 0 && (tree.Left[i] <= i || tree.Right[i] <= i))
                    throw new InvalidDataException($"{name}: tree {t} node {i} has an invalid child index.");
            }
            trees[t] = tree;
        }
        return new GbdtModel(names, baseScore, trees);
    }
}
