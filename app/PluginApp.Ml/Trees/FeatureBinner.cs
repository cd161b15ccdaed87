namespace PluginApp.Ml.Trees;

/// <summary>
/// Quantile bins per feature. Bin b holds values in (upper[b-1], upper[b]]; the last upper bound is +inf
/// and NaN goes to an extra bin after the real ones. A split "bin &lt;= t" is therefore exactly
/// "x &lt;= upper[t]", which is what the saved model evaluates on raw floats.
/// </summary>
internal sealed class FeatureBinner
{
    public required float[][] Upper { get; init; }

    public int MissingBin(int f) => Upper[f].Length;

    public static FeatureBinner Fit(float[] values, int rows, int columns, int maxBins)
    {
        var upper = new float[columns][];
        Parallel.For(0, columns, () => new float[rows], (f, _, column) =>
        {
            var n = 0;
            for (var r = 0; r < rows; r++)
            {
                var v = values[r * columns + f];
                if (!float.IsNaN(v)) column[n++] = v;
            }
            var sorted = column.AsSpan(0, n);
            sorted.Sort();
            var distinct = new List<float>();
            var counts = new List<int>();
            for (var i = 0; i < n; i++)
            {
                if (distinct.Count > 0 && distinct[^1] == sorted[i]) counts[^1]++;
                else { distinct.Add(sorted[i]); counts.Add(1); }
            }
            var bounds = new List<float>();
            if (distinct.Count <= maxBins)
            {
                bounds.AddRange(distinct);
            }
            else
            {
                // Equal-frequency cut points over distinct values; a heavy value gets a bin of its own.
                var perBin = (double)n / maxBins;
                var acc = 0L;
                var next = perBin;
                for (var i = 0; i < distinct.Count - 1 && bounds.Count < maxBins - 1; i++)
                {
                    acc += counts[i];
                    if (acc >= next)
                    {
                        bounds.Add(distinct[i]);
                        while (next <= acc) next += perBin;
                    }
                }
            }
            if (bounds.Count == 0 || !float.IsPositiveInfinity(bounds[^1]))
            {
                if (bounds.Count >= maxBins) bounds.RemoveAt(bounds.Count - 1);
                bounds.Add(float.PositiveInfinity);
            }
            upper[f] = bounds.ToArray();
            return column;
        }, _ => { });
        return new FeatureBinner { Upper = upper };
    }

    public byte Bin(int f, float v)
    {
        if (float.IsNaN(v)) return (byte)Upper[f].Length;
        var u = Upper[f];
        int lo = 0, hi = u.Length - 1;
        while (lo < hi)
        {
            var mid = (lo + hi) >> 1;
            if (v <= u[mid]) hi = mid; else lo = mid + 1;
        }
        return (byte)lo;
    }

    /// <summary>Row-major bins: histogram building walks one node's rows, so a row's bins should sit together.</summary>
    public byte[] Transform(float[] values, int rows, int columns)
    {
        var b = new byte[values.Length];
        Parallel.For(0, columns, f =>
        {
            for (var r = 0; r < rows; r++) b[r * columns + f] = Bin(f, values[r * columns + f]);
        });
        return b;
    }
}
