namespace PluginApp.Ml.Recommenders;

/// <summary>One implicit-feedback event: a user (or basket) touched an item.</summary>
/// <param name="User">Dense user (or basket) index, 0-based.</param>
/// <param name="Item">Dense item index, 0-based.</param>
/// <param name="Weight">Strength r of the signal (count, quantity...). Duplicates are summed.</param>
/// <param name="Timestamp">Unix seconds; only the popularity baseline uses it.</param>
public readonly record struct Interaction(int User, int Item, float Weight = 1f, long Timestamp = 0);

/// <summary>Compressed sparse rows built from interactions; duplicates are merged by summing weights.</summary>
internal sealed class SparseRows
{
    public required int Rows { get; init; }
    public required int Columns { get; init; }
    public required int[] RowStart { get; init; }
    public required int[] Index { get; init; }
    public required float[] Value { get; init; }

    public ReadOnlySpan<int> RowIndex(int r) => Index.AsSpan(RowStart[r], RowStart[r + 1] - RowStart[r]);

    public static SparseRows Build(ReadOnlySpan<Interaction> data, int rows, int columns, bool transpose)
    {
        var counts = new int[rows + 1];
        foreach (var x in data)
        {
            int r = transpose ? x.Item : x.User, c = transpose ? x.User : x.Item;
            if ((uint)r >= (uint)rows || (uint)c >= (uint)columns)
                throw new ArgumentOutOfRangeException(nameof(data), $"Interaction ({x.User}, {x.Item}) is outside {(transpose ? columns : rows)} users x {(transpose ? rows : columns)} items.");
            if (!(x.Weight >= 0) || float.IsInfinity(x.Weight))
                throw new ArgumentOutOfRangeException(nameof(data), $"Interaction ({x.User}, {x.Item}) has weight {x.Weight}; weights must be finite and >= 0.");
            counts[r + 1]++;
        }
        for (var i = 0; i < rows; i++) counts[i + 1] += counts[i];
        var fill = (int[])counts.Clone();
        var idx = new int[data.Length];
        var val = new float[data.Length];
        foreach (var x in data)
        {
            int r = transpose ? x.Item : x.User, c = transpose ? x.User : x.Item;
            var p = fill[r]++;
            idx[p] = c;
            val[p] = x.Weight;
        }
        // Sort each row by column and merge duplicates so the layout is canonical whatever the input order.
        var start = new int[rows + 1];
        var w = 0;
        for (var r = 0; r < rows; r++)
        {
            int s = counts[r], e = counts[r + 1];
            Array.Sort(idx, val, s, e - s);
            start[r] = w;
            for (var p = s; p < e; p++)
            {
                if (w > start[r] && idx[w - 1] == idx[p]) { val[w - 1] += val[p]; continue; }
                idx[w] = idx[p];
                val[w] = val[p];
                w++;
            }
        }
        start[rows] = w;
        return new SparseRows { Rows = rows, Columns = columns, RowStart = start, Index = idx[..w], Value = val[..w] };
    }
}
