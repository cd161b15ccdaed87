namespace PluginApp.Ml.Experiments;

/// <summary>
/// Sufficient statistics of one experiment arm: the unit count and the sums of the per-unit outcome Y, the
/// pre-experiment covariate X and their squares and cross product. Why sums and not the units: they add up, so the app
/// can aggregate per arm in SQL (<c>COUNT(*), SUM(y), SUM(y*y), SUM(x), SUM(x*x), SUM(x*y)</c>) or per day and add the
/// days with <c>+</c>; every estimate in <see cref="ExperimentAnalysis"/> needs only these six numbers.
/// </summary>
/// <param name="N">Units (visitors, carts) in the arm.</param>
/// <param name="SumY">Sum of the outcome (a conversion is Y in {0, 1}; revenue or margin per unit, zeros included).</param>
/// <param name="SumY2">Sum of Y².</param>
/// <param name="SumX">Sum of the covariate, e.g. the unit's revenue in the 30 days before its first exposure (0 when it
/// has no history). All three X sums are 0 when there is no covariate; CUPED is then simply not used.</param>
/// <param name="SumX2">Sum of X².</param>
/// <param name="SumXY">Sum of X·Y.</param>
public readonly record struct ArmSample(long N, double SumY, double SumY2, double SumX = 0, double SumX2 = 0, double SumXY = 0)
{
    /// <summary>Mean outcome; NaN without units.</summary>
    public double MeanY => N == 0 ? double.NaN : SumY / N;

    /// <summary>Mean covariate; NaN without units.</summary>
    public double MeanX => N == 0 ? double.NaN : SumX / N;

    /// <summary>Sample variance of Y (n − 1); NaN below 2 units.</summary>
    public double VarianceY => N < 2 ? double.NaN : CenteredYY / (N - 1);

    /// <summary>Sample variance of X (n − 1); NaN below 2 units.</summary>
    public double VarianceX => N < 2 ? double.NaN : CenteredXX / (N - 1);

    /// <summary>Sample covariance of X and Y (n − 1); NaN below 2 units.</summary>
    public double CovarianceXY => N < 2 ? double.NaN : CenteredXY / (N - 1);

    /// <summary>Σ(y − ȳ)², clamped at 0: with large sums the subtraction can round a constant outcome slightly negative.</summary>
    internal double CenteredYY => N == 0 ? 0 : Math.Max(0, SumY2 - SumY * SumY / N);

    /// <summary>Σ(x − x̄)², clamped at 0.</summary>
    internal double CenteredXX => N == 0 ? 0 : Math.Max(0, SumX2 - SumX * SumX / N);

    /// <summary>Σ(x − x̄)(y − ȳ).</summary>
    internal double CenteredXY => N == 0 ? 0 : SumXY - SumX * SumY / N;

    /// <summary>This sample with one more unit (the struct is immutable: use the returned value).</summary>
    /// <exception cref="ArgumentException"><paramref name="y"/> or <paramref name="x"/> is NaN or infinite.</exception>
    public ArmSample Add(double y, double x = 0)
    {
        if (!double.IsFinite(y)) throw new ArgumentException($"The outcome must be a finite number; got {y}.", nameof(y));
        if (!double.IsFinite(x)) throw new ArgumentException($"The covariate must be a finite number; got {x}.", nameof(x));
        return new ArmSample(N + 1, SumY + y, SumY2 + y * y, SumX + x, SumX2 + x * x, SumXY + x * y);
    }

    /// <summary>The units of both samples together (e.g. two days of one arm, or two shards of a query).</summary>
    public static ArmSample operator +(ArmSample a, ArmSample b) =>
        new(a.N + b.N, a.SumY + b.SumY, a.SumY2 + b.SumY2, a.SumX + b.SumX, a.SumX2 + b.SumX2, a.SumXY + b.SumXY);

    /// <summary>Sums over (outcome, covariate) pairs, one per unit.</summary>
    public static ArmSample From(IEnumerable<(double y, double x)> units)
    {
        ArgumentNullException.ThrowIfNull(units);
        var s = default(ArmSample);
        foreach (var (y, x) in units) s = s.Add(y, x);
        return s;
    }

    /// <summary>Sums over outcomes only (no covariate).</summary>
    public static ArmSample FromOutcomes(IEnumerable<double> outcomes)
    {
        ArgumentNullException.ThrowIfNull(outcomes);
        var s = default(ArmSample);
        foreach (var y in outcomes) s = s.Add(y);
        return s;
    }

    /// <summary>
    /// Throws <see cref="ArgumentException"/> (parameter <paramref name="name"/>) when these cannot be the sums of one set
    /// of units: a negative count, a NaN or infinite sum, sums without units, a negative sum of squares, or a sum of
    /// squares below what the plain sum forces (n·ΣY² ≥ (ΣY)², n·ΣX² ≥ (ΣX)², (ΣXY)² ≤ ΣX²·ΣY², with a relative
    /// tolerance for rounding). Why check: a query that swaps two columns would otherwise give a confident wrong answer.
    /// </summary>
    internal void Validate(string name)
    {
        if (N < 0) throw new ArgumentException($"{name}.N is {N}; a count of units cannot be negative.", name);
        Finite(SumY, nameof(SumY)); Finite(SumY2, nameof(SumY2)); Finite(SumX, nameof(SumX));
        Finite(SumX2, nameof(SumX2)); Finite(SumXY, nameof(SumXY));
        if (N == 0)
        {
            if (SumY != 0 || SumY2 != 0 || SumX != 0 || SumX2 != 0 || SumXY != 0)
                throw new ArgumentException($"{name} has no units (N = 0) but non-zero sums.", name);
            return;
        }

        if (SumY2 < 0) throw new ArgumentException($"{name}.SumY2 is {SumY2}; a sum of squares cannot be negative.", name);
        if (SumX2 < 0) throw new ArgumentException($"{name}.SumX2 is {SumX2}; a sum of squares cannot be negative.", name);
        const double tol = 1e-9;
        if (N * SumY2 < SumY * SumY * (1 - tol))
            throw new ArgumentException($"{name}.SumY2 ({SumY2}) is below SumY²/N ({SumY * SumY / N}); these are not the sums of one set of units.", name);
        if (N * SumX2 < SumX * SumX * (1 - tol))
            throw new ArgumentException($"{name}.SumX2 ({SumX2}) is below SumX²/N ({SumX * SumX / N}); these are not the sums of one set of units.", name);
        if (SumXY * SumXY > SumX2 * SumY2 * (1 + tol))
            throw new ArgumentException($"{name}.SumXY ({SumXY}) exceeds √(SumX2·SumY2) (Cauchy-Schwarz); these are not the sums of one set of units.", name);

        void Finite(double v, string field)
        {
            if (!double.IsFinite(v)) throw new ArgumentException($"{name}.{field} is {v}; sums must be finite numbers.", name);
        }
    }
}
