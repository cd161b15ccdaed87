namespace PluginApp.Ml.Monitoring;

/// <summary>How far a feature's distribution moved, by the population stability index, with the field's usual reading.</summary>
/// <param name="Psi">Σ (a − e) · ln(a / e) over the reference's quantile bins; 0 when nothing moved.</param>
/// <param name="ReferenceMean">Mean of the reference sample.</param>
/// <param name="CurrentMean">Mean of the current sample.</param>
public sealed record DriftResult(double Psi, int ReferenceCount, int CurrentCount, double ReferenceMean, double CurrentMean)
{
    /// <summary>Below 0.1: stable; 0.1 to 0.25: moderate shift, watch it; above 0.25: major shift, act (the credit-scoring convention).</summary>
    public const double Moderate = 0.1, Major = 0.25;

    public string Reading => Psi >= Major ? "major shift" : Psi >= Moderate ? "moderate shift" : "stable";
}

/// <summary>
/// Population stability index between a reference sample (the model's training window) and a current one. Bins are the
/// reference's deciles, so each holds about a tenth of it; repeated values (counts, flags) merge bins rather than split a
/// value across two, a value holding two deciles or more keeps the values above it out of its bin, and so does the
/// reference's largest value when it holds a decile or more. Empty bins get a small share so the logarithm stays finite.
/// </summary>
public static class Drift
{
    public const int DefaultBins = 10;
    private const double Floor = 1e-4;

    public static DriftResult Psi(IReadOnlyList<double> reference, IReadOnlyList<double> current, int bins = DefaultBins)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(bins, 2);
        var r = reference.Where(double.IsFinite).Order().ToArray();
        var c = current.Where(double.IsFinite).ToArray();
        if (r.Length == 0 || c.Length == 0) return new DriftResult(double.NaN, r.Length, c.Length, Mean(r), Mean(c));
        var cuts = new SortedSet<double>();
        double? previous = null;
        for (var i = 1; i < bins; i++)
        {
            var q = r[Math.Min(r.Length - 1, (int)Math.Floor(i * (double)r.Length / bins))];
            // A value holding two deciles or more (a flag's 0, a count's 0) is a bin of its own, and the values above it
            // another: until 5 Dec 2026 they shared one, and a flag set on 5 % of the reference and half of the current week
            // read as stable (PSI 0).
            if (q == previous)
            {
                var above = UpperBound(r, q);
                if (above < r.Length) cuts.Add(r[above]);
            }
            cuts.Add(q);
            previous = q;
        }
        // Values above all of the reference's are a bin of their own when its largest value holds a decile or more (a flag, a
        // count): until 8 Dec 2026 they shared the top bin, so a flag never set in the training window (a card's failed
        // security code, before a card-testing burst) read as stable (PSI 0) when set on half of the current week. Why not
        // for every field: a continuous one's new highs would weigh against a reference share of nothing (floored), and a
        // few percent of them read as a major shift.
        if (r.Length - Array.IndexOf(r, r[^1]) >= r.Length / (double)bins) cuts.Add(Math.BitIncrement(r[^1]));
        var edges = cuts.ToList();
        var expected = Shares(r, edges);
        var actual = Shares(c, edges);
        var psi = 0.0;
        for (var i = 0; i < expected.Length; i++)
        {
            var e = Math.Max(expected[i], Floor);
            var a = Math.Max(actual[i], Floor);
            psi += (a - e) * Math.Log(a / e);
        }
        return new DriftResult(psi, r.Length, c.Length, Mean(r), Mean(c));
    }

    /// <summary>Share of values in each bin: (-∞, e0), [e0, e1), …, [e_last, ∞).</summary>
    private static double[] Shares(IReadOnlyList<double> values, List<double> edges)
    {
        var counts = new double[edges.Count + 1];
        foreach (var v in values)
        {
            var i = edges.BinarySearch(v);
            counts[i >= 0 ? i + 1 : ~i]++;
        }
        for (var i = 0; i < counts.Length; i++) counts[i] /= values.Count;
        return counts;
    }

    /// <summary>The index of the first value of the sorted <paramref name="xs"/> above <paramref name="x"/> (its length when none is).</summary>
    private static int UpperBound(double[] xs, double x)
    {
        int lo = 0, hi = xs.Length;
        while (lo < hi)
        {
            var mid = (lo + hi) / 2;
            if (xs[mid] <= x) lo = mid + 1; else hi = mid;
        }
        return lo;
    }

    private static double Mean(double[] xs) => xs.Length == 0 ? double.NaN : xs.Average();
}
