namespace PluginApp.Ml.Trees;

/// <summary>
/// One tree in flat arrays. Node 0 is the root; a leaf has Feature = -1. Every node keeps the value the
/// tree would output if it stopped there, which is what path attributions (Saabas) need.
/// </summary>
internal sealed class RegressionTree
{
    public required int[] Feature { get; init; }
    public required float[] Threshold { get; init; }
    public required byte[] ThresholdBin { get; init; }
    public required bool[] DefaultLeft { get; init; }
    public required int[] Left { get; init; }
    public required int[] Right { get; init; }
    public required double[] Value { get; init; }

    public int NodeCount => Feature.Length;

    public int Leaf(ReadOnlySpan<float> row)
    {
        var n = 0;
        while (Feature[n] >= 0)
        {
            var x = row[Feature[n]];
            var left = float.IsNaN(x) ? DefaultLeft[n] : x <= Threshold[n];
            n = left ? Left[n] : Right[n];
        }
        return n;
    }

    /// <summary>Same walk on binned data; the missing bin is the feature's last bin index.</summary>
    public int LeafBinned(ReadOnlySpan<byte> row, byte[] missingBin)
    {
        var n = 0;
        while (Feature[n] >= 0)
        {
            var f = Feature[n];
            var b = row[f];
            var left = b == missingBin[f] ? DefaultLeft[n] : b <= ThresholdBin[n];
            n = left ? Left[n] : Right[n];
        }
        return n;
    }

    public void AddContributions(ReadOnlySpan<float> row, Span<double> contributions)
    {
        var n = 0;
        while (Feature[n] >= 0)
        {
            var f = Feature[n];
            var x = row[f];
            var left = float.IsNaN(x) ? DefaultLeft[n] : x <= Threshold[n];
            var child = left ? Left[n] : Right[n];
            contributions[f] += Value[child] - Value[n];
            n = child;
        }
    }
}
