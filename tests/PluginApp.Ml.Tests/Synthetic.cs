using PluginApp.Ml.Common;
using PluginApp.Ml.Recommenders;

namespace PluginApp.Ml.Tests;

/// <summary>Small generated data sets with a known answer.</summary>
internal static class Synthetic
{
    public const int Blocks = 3, UsersPerBlock = 30, ItemsPerBlock = 20;
    public const int Users = Blocks * UsersPerBlock, Items = Blocks * ItemsPerBlock;

    public static int BlockOfUser(int u) => u / UsersPerBlock;
    public static int BlockOfItem(int i) => i / ItemsPerBlock;

    /// <summary>Each user touches about half of the items of its own block and nothing else.</summary>
    public static Interaction[] BlockInteractions(ulong seed = 7)
    {
        var rng = new SplitMix64(seed);
        var list = new List<Interaction>();
        for (var u = 0; u < Users; u++)
            for (var j = 0; j < ItemsPerBlock; j++)
                if (rng.NextDouble() < 0.5) list.Add(new Interaction(u, BlockOfUser(u) * ItemsPerBlock + j, 1f, 1000 + u));
        return list.ToArray();
    }

    /// <summary>Label = sign(x0 * x1) plus two noise columns: no single feature (or linear mix) carries signal.</summary>
    public static (FeatureTable Table, bool[] Labels) Xor(int rows, ulong seed)
    {
        var rng = new SplitMix64(seed);
        var v = new float[rows * 4];
        var y = new bool[rows];
        for (var r = 0; r < rows; r++)
        {
            for (var f = 0; f < 4; f++) v[r * 4 + f] = (float)(rng.NextDouble() * 2 - 1);
            y[r] = v[r * 4] * v[r * 4 + 1] > 0;
        }
        return (new FeatureTable(v, rows, ["x0", "x1", "noise0", "noise1"]), y);
    }

    /// <summary>Linear signal in x0 with x1 missing (NaN) for a fifth of rows; missing rows are mostly positive.</summary>
    public static (FeatureTable Table, bool[] Labels) WithMissing(int rows, ulong seed)
    {
        var rng = new SplitMix64(seed);
        var v = new float[rows * 3];
        var y = new bool[rows];
        for (var r = 0; r < rows; r++)
        {
            var x0 = rng.NextGaussian();
            var missing = rng.NextDouble() < 0.2;
            v[r * 3] = (float)x0;
            v[r * 3 + 1] = missing ? float.NaN : (float)rng.NextGaussian();
            v[r * 3 + 2] = (float)rng.NextGaussian();
            var logit = 1.5 * x0 + (missing ? 2.0 : -0.5);
            y[r] = rng.NextDouble() < 1 / (1 + Math.Exp(-logit));
        }
        return (new FeatureTable(v, rows, ["x0", "x1", "x2"]), y);
    }
}
