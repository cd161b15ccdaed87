using MathNet.Numerics;

namespace PluginApp.Ml.Churn;

/// <summary>
/// BG/NBD repeat-purchase model (Fader, Hardie and Lee 2005, "Counting your customers the easy way: an alternative to
/// the Pareto/NBD model", Marketing Science 24(2)): while alive a customer buys as a Poisson process with rate
/// λ ~ Gamma(r, α); after each purchase they drop out with probability p ~ Beta(a, b). Fitted by maximum likelihood
/// (eq. 6 of the paper) on log-parameters with MathNet.Numerics. Time is in the unit of the summaries (days here).
/// Known flaw, kept visible: P(alive) is 1 for every customer without a repeat purchase, so 1 − P(alive) is never a
/// churn score; use <see cref="ProbabilityNoOrders"/> or <see cref="ExpectedOrders"/>.
/// </summary>
public sealed class BgNbd
{
    /// <summary>Creates a model from parameters (all finite and &gt; 0).</summary>
    public BgNbd(double r, double alpha, double a, double b, double logLikelihood = double.NaN, int customers = 0, bool interior = true)
    {
        foreach (var (v, n) in new[] { (r, nameof(r)), (alpha, nameof(alpha)), (a, nameof(a)), (b, nameof(b)) })
            if (!(v > 0) || !double.IsFinite(v)) throw new ArgumentOutOfRangeException(n, v, $"BG/NBD parameter {n} must be finite and > 0.");
        (R, Alpha, A, B, LogLikelihood, Customers, Interior) = (r, alpha, a, b, logLikelihood, customers, interior);
    }

    /// <summary>Shape of the purchase-rate Gamma.</summary>
    public double R { get; }
    /// <summary>Scale (rate) of the purchase-rate Gamma, in time units.</summary>
    public double Alpha { get; }
    /// <summary>Drop-out Beta's a.</summary>
    public double A { get; }
    /// <summary>Drop-out Beta's b.</summary>
    public double B { get; }
    /// <summary>Log-likelihood at the fit (summed over customers).</summary>
    public double LogLikelihood { get; }
    /// <summary>Customers fitted on.</summary>
    public int Customers { get; }
    /// <summary>False when a parameter ran to the optimizer's bound (e^±25): the fit degenerated.</summary>
    public bool Interior { get; }

    /// <summary>Maximum-likelihood fit on customers with <see cref="RepeatSummary.Exists"/>.</summary>
    public static BgNbd Fit(IReadOnlyList<RepeatSummary> customers, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(customers);
        var data = customers.Where(c => c.Exists).OrderBy(c => c.Frequency).ToArray();
        if (data.Length == 0) throw new ArgumentException("BG/NBD needs at least one customer with a purchase.", nameof(customers));
        foreach (var c in data)
            if (!(c.Frequency >= 0 && c.Recency >= 0 && c.Recency <= c.Age + 1e-9 && double.IsFinite(c.Age)))
                throw new ArgumentException($"Invalid summary {c}: need 0 <= Recency <= Age and Frequency >= 0.", nameof(customers));
        // Why: a start near the moments (rate ~ (x + 1) / T) keeps Nelder-Mead away from flat regions.
        var meanRate = data.Average(c => (c.Frequency + 1) / c.Age);
        var start = new[] { 0.0, Math.Log(1 / meanRate), 0.0, 0.0 };
        var (p, value, interior) = Optimizer.Minimize(
            v => -LogLikelihoodOf(data, Math.Exp(v[0]), Math.Exp(v[1]), Math.Exp(v[2]), Math.Exp(v[3])), start, ct);
        return new BgNbd(Math.Exp(p[0]), Math.Exp(p[1]), Math.Exp(p[2]), Math.Exp(p[3]), -value, data.Length, interior);
    }

    /// <summary>Summed log-likelihood (eq. 6, in logs, with log-sum-exp for the two terms).</summary>
    public static double LogLikelihoodOf(IReadOnlyList<RepeatSummary> data, double r, double alpha, double a, double b)
    {
        double ll = 0;
        var common = -SpecialFunctions.GammaLn(r) + r * Math.Log(alpha) + SpecialFunctions.GammaLn(a + b) - SpecialFunctions.GammaLn(b);
        double lastX = double.NaN, lastA1 = 0;
        foreach (var c in data)
        {
            var x = c.Frequency;
            // Why: the Gamma-function terms depend on x only; Fit sorts by x, so this cache makes them once per distinct x.
            if (x != lastX)
            {
                lastA1 = SpecialFunctions.GammaLn(r + x) + common + SpecialFunctions.GammaLn(b + x) - SpecialFunctions.GammaLn(a + b + x);
                lastX = x;
            }
            var a1 = lastA1;
            var a3 = -(r + x) * Math.Log(alpha + c.Age);
            double term;
            if (x > 0)
            {
                var a4 = Math.Log(a) - Math.Log(b + x - 1) - (r + x) * Math.Log(alpha + c.Recency);
                var m = Math.Max(a3, a4);
                term = m + Math.Log(Math.Exp(a3 - m) + Math.Exp(a4 - m));
            }
            else term = a3;
            ll += a1 + term;
        }
        return ll;
    }

    /// <summary>P(alive at the end of the summary) (eq. 11). 1 when Frequency is 0: the model's flaw, see the type doc.</summary>
    public double ProbabilityAlive(RepeatSummary s)
    {
        if (s.Frequency <= 0) return 1;
        var x = s.Frequency;
        var logRatio = (R + x) * (Math.Log(Alpha + s.Age) - Math.Log(Alpha + s.Recency));
        return 1 / (1 + A / (B + x - 1) * Math.Exp(logRatio));
    }

    /// <summary>P(no purchase in the next <paramref name="t"/> units) = 1 − PA + PA · ((α+T)/(α+T+t))^(r+x): a dead
    /// customer buys nothing; an alive one with rate λ stays alive until their next purchase (BG/NBD drops out only right
    /// after a purchase), so they buy nothing with probability e^(−λt), and λ | data ~ Gamma(r + x, α + T).</summary>
    public double ProbabilityNoOrders(RepeatSummary s, double t)
    {
        if (t <= 0) return 1;
        var pa = ProbabilityAlive(s);
        return 1 - pa + pa * Math.Exp((R + s.Frequency) * (Math.Log(Alpha + s.Age) - Math.Log(Alpha + s.Age + t)));
    }

    /// <summary>
    /// Expected purchases in the next <paramref name="t"/> units (eq. 10). The paper's form has
    /// ((α+T)/(α+T+t))^(r+x) · 2F1(r+x, b+x; a+b+x−1; z), z = t/(α+T+t). We apply Euler's transformation
    /// 2F1(A,B;C;z) = (1−z)^(C−A−B) 2F1(C−A, C−B; C; z), which turns it into ((α+T)/(α+T+t))^(a−1) · 2F1(a+b−1−r, a−1;
    /// a+b+x−1; z): same value, but a series whose terms shrink like n^(a−r−x−2) instead of growing with x, and no log of
    /// the hypergeometric term anywhere (its log is NaN when a + b + x &lt; 1, where the term can be negative).
    /// </summary>
    public double ExpectedOrders(RepeatSummary s, double t)
    {
        if (t <= 0) return 0;
        var x = s.Frequency;
        // Why: (a+b+x−1)/(a−1) · [1 − (…)^(a−1) · F] is 0/0 at a = 1; nudge a off it (the limit is continuous).
        var a = Math.Abs(A - 1) < 1e-6 ? 1 + 1e-6 : A;
        var c = a + B + x - 1;
        var z = t / (Alpha + s.Age + t);
        var f = Hypergeometric2F1(a + B - 1 - R, a - 1, c, z);
        var head = Math.Exp((a - 1) * (Math.Log(Alpha + s.Age) - Math.Log(Alpha + s.Age + t)));
        var numerator = c / (a - 1) * (1 - head * f);
        var denominator = x > 0 ? 1 + a / (B + x - 1) * Math.Exp((R + x) * (Math.Log(Alpha + s.Age) - Math.Log(Alpha + s.Recency))) : 1;
        return Math.Max(0, numerator / denominator);
    }

    /// <summary>Expected purchases in (0, t] of a customer just acquired (eq. 7): the x = 0, T = 0 case of <see cref="ExpectedOrders"/>.</summary>
    public double ExpectedOrdersNewCustomer(double t) => ExpectedOrders(new RepeatSummary(0, 0, 0, 0), t);

    /// <summary>Gauss hypergeometric series for 0 ≤ z &lt; 1, summed directly (no logs): terms may change sign when c &lt; 0.</summary>
    public static double Hypergeometric2F1(double a, double b, double c, double z)
    {
        double term = 1, sum = 1;
        for (var n = 0; n < 1_000_000; n++)
        {
            term *= (a + n) * (b + n) / ((c + n) * (n + 1)) * z;
            sum += term;
            if (Math.Abs(term) <= 1e-15 * Math.Abs(sum) && n > 2) return sum;
            if (!double.IsFinite(sum)) break;
        }
        throw new ArithmeticException($"2F1({a}, {b}; {c}; {z}) did not converge.");
    }

    /// <inheritdoc/>
    public override string ToString() => FormattableString.Invariant($"BG/NBD r {R:G4}, alpha {Alpha:G4}, a {A:G4}, b {B:G4} (LL {LogLikelihood:F1}, {Customers} customers)");
}
