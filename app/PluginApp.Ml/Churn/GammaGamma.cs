using MathNet.Numerics;

namespace PluginApp.Ml.Churn;

/// <summary>
/// Gamma-Gamma spend model (Fader, Hardie and Lee 2005, "RFM and CLV: using iso-value curves for customer base
/// analysis", JMR 42(4); the note "The Gamma-Gamma model of monetary value", 2013): a customer's transaction values are
/// Gamma(p, ν) with ν ~ Gamma(q, γ). Fitted by maximum likelihood on customers with at least one repeat purchase day,
/// on their mean repeat-day spend. <b>Trust check</b>: on heavy-tailed spend the fit degenerates (p → ∞, γ → 0; on
/// Online Retail p ≈ 4e9 and an implied mean 6x the observed one). A fit is trusted only when the optimum is interior,
/// q &gt; 1 (the population mean exists), p &lt; 1e4, and the implied population mean p·γ/(q−1) is within a factor 1.5 of the
/// observed mean spend. Otherwise it is refitted without the top <c>trimShare</c> of average spenders; if that fails
/// too, <see cref="Trusted"/> is false, <see cref="Reason"/> says why and no spend is ever predicted.
/// </summary>
public sealed class GammaGamma
{
    /// <summary>Creates a model from parameters.</summary>
    public GammaGamma(double p, double q, double gamma, bool trusted, string reason, double logLikelihood = double.NaN, int customers = 0,
        double trimmedAbove = double.PositiveInfinity)
    {
        foreach (var (v, n) in new[] { (p, nameof(p)), (q, nameof(q)), (gamma, nameof(gamma)) })
            if (!(v > 0) || !double.IsFinite(v)) throw new ArgumentOutOfRangeException(n, v, $"Gamma-Gamma parameter {n} must be finite and > 0.");
        (P, Q, Gamma, Trusted, Reason, LogLikelihood, Customers, TrimmedAbove) = (p, q, gamma, trusted, reason, logLikelihood, customers, trimmedAbove);
    }

    /// <summary>Shape of a transaction's value.</summary>
    public double P { get; }
    /// <summary>Shape of ν.</summary>
    public double Q { get; }
    /// <summary>Scale γ of ν (the papers' v).</summary>
    public double Gamma { get; }
    /// <summary>Whether expected spend may be served.</summary>
    public bool Trusted { get; }
    /// <summary>In words: why trusted or not.</summary>
    public string Reason { get; }
    /// <summary>Log-likelihood at the fit.</summary>
    public double LogLikelihood { get; }
    /// <summary>Customers fitted on.</summary>
    public int Customers { get; }
    /// <summary>Average spend above which customers were left out of the fit (infinity = none).</summary>
    public double TrimmedAbove { get; }

    /// <summary>Implied population mean spend per transaction, p·γ/(q−1) (infinite when q ≤ 1).</summary>
    public double PopulationMean => Q > 1 ? P * Gamma / (Q - 1) : double.PositiveInfinity;

    /// <summary>Fits on the customers with Frequency &gt; 0 and AverageSpend &gt; 0 and checks the fit (see the type doc).</summary>
    public static GammaGamma Fit(IReadOnlyList<RepeatSummary> customers, double trimShare = 0.01, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(customers);
        var data = customers.Where(c => c.Frequency > 0 && c.AverageSpend > 0 && double.IsFinite(c.AverageSpend)).OrderBy(c => c.Frequency).ToArray();
        if (data.Length < 2)
            return new GammaGamma(1, 2, 1, false, $"not fitted: {data.Length} customers with a repeat purchase and positive spend");
        var full = FitOnce(data, double.PositiveInfinity, ct);
        var why = full.Problem();
        if (why is null) return full.With(true, $"trusted: {full.Describe()}");
        if (trimShare <= 0 || data.Length < 20) return full.With(false, $"not trusted: {why} ({full.Describe()})");
        var sorted = data.Select(c => c.AverageSpend).OrderBy(v => v).ToArray();
        // Why at least one left out: the top share rounded down was the largest value itself for 100 customers or fewer, so the
        // refit left out no one (until 8 Dec 2026), and one customer too few above that.
        var keep = Math.Clamp((int)Math.Ceiling((1 - trimShare) * sorted.Length), 1, sorted.Length - 1);
        var threshold = sorted[keep - 1];
        var trimmed = data.Where(c => c.AverageSpend <= threshold).ToArray();
        var refit = FitOnce(trimmed, threshold, ct);
        var why2 = refit.Problem();
        var share = trimShare.ToString("P0", System.Globalization.CultureInfo.InvariantCulture);
        return why2 is null
            ? refit.With(true, FormattableString.Invariant($"trusted after leaving out the top {share} of average spenders (above {threshold:F2}): the full fit degenerated ({why}); {refit.Describe()}"))
            : refit.With(false, FormattableString.Invariant($"not trusted: the full fit degenerated ({why}) and so did the fit without the top {share} ({why2})"));
    }

    private static GammaGamma FitOnce(RepeatSummary[] data, double trimmedAbove, CancellationToken ct)
    {
        var mean = data.Average(c => c.AverageSpend);
        var (v, value, interior) = Optimizer.Minimize(p => -LogLikelihoodOf(data, Math.Exp(p[0]), Math.Exp(p[1]), Math.Exp(p[2])),
            [0.0, Math.Log(2), Math.Log(mean)], ct);
        var gg = new GammaGamma(Math.Exp(v[0]), Math.Exp(v[1]), Math.Exp(v[2]), false, "", -value, data.Length, trimmedAbove);
        gg._observedMean = mean;
        gg._interior = interior;
        return gg;
    }

    private double _observedMean = double.NaN;
    private bool _interior = true;

    private string? Problem()
    {
        if (!_interior) return "a parameter ran to the optimizer's bound";
        if (!(Q > 1)) return FormattableString.Invariant($"q = {Q:G3} <= 1, so the mean spend does not exist");
        if (P >= 1e4) return FormattableString.Invariant($"p = {P:G3} ran away (v = {Gamma:G3})");
        var ratio = PopulationMean / _observedMean;
        if (!(ratio >= 1 / 1.5 && ratio <= 1.5))
            return FormattableString.Invariant($"implied mean spend {PopulationMean:F2} vs observed {_observedMean:F2}");
        return null;
    }

    private string Describe() => FormattableString.Invariant($"p {P:G4}, q {Q:G4}, v {Gamma:G4}, implied mean {PopulationMean:F2} vs observed {_observedMean:F2}, {Customers} customers");

    private GammaGamma With(bool trusted, string reason) => new(P, Q, Gamma, trusted, reason, LogLikelihood, Customers, TrimmedAbove);

    /// <summary>Summed log-likelihood of the customers' mean spends m given x transactions each.</summary>
    public static double LogLikelihoodOf(IReadOnlyList<RepeatSummary> data, double p, double q, double gamma)
    {
        double ll = 0;
        var common = -SpecialFunctions.GammaLn(q) + q * Math.Log(gamma);
        double lastX = double.NaN, lastG = 0;
        foreach (var c in data)
        {
            double x = c.Frequency, m = c.AverageSpend;
            // Why: the Gamma-function terms depend on x only; Fit sorts by x, so they are computed once per distinct x.
            if (x != lastX) (lastX, lastG) = (x, SpecialFunctions.GammaLn(p * x + q) - SpecialFunctions.GammaLn(p * x));
            ll += lastG + common + (p * x - 1) * Math.Log(m)
                  + p * x * Math.Log(x) - (p * x + q) * Math.Log(gamma + m * x);
        }
        return ll;
    }

    /// <summary>E[spend per transaction | x, m] = p(γ + m·x)/(p·x + q − 1); the population mean for x = 0. Null when not trusted.</summary>
    public double? ExpectedAverageSpend(RepeatSummary s)
    {
        if (!Trusted) return null;
        var x = s.Frequency > 0 && s.AverageSpend > 0 ? s.Frequency : 0;
        return P * (Gamma + s.AverageSpend * x) / (P * x + Q - 1);
    }

    /// <inheritdoc/>
    public override string ToString() => FormattableString.Invariant($"Gamma-Gamma p {P:G4}, q {Q:G4}, v {Gamma:G4} ({(Trusted ? "trusted" : "NOT trusted")})");
}
