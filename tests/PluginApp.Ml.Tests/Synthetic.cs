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
}
