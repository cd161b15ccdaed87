using PluginApp.Ml.Churn;
using PluginApp.Ml.Common;

namespace PluginApp.Ml.Tests;

public class ChurnModelParameterTests
{
    // CDNOW cohort estimates (Fader, Hardie and Lee 2005): r 0.243, α 4.414, a 0.793, b 2.426 (weeks).
    private const double R = 0.243, Alpha = 4.414, A = 0.793, B = 2.426;

    /// <summary>4,000 customers (1.7x the CDNOW cohort) acquired over 12 weeks and observed to week 39, as CDNOW was.</summary>
    private static (RepeatSummary[] Summaries, int[] Future) Cohort(ulong seed, int n = 4000, double holdout = 39)
    {
        var rng = new SplitMix64(seed);
        var s = new RepeatSummary[n];
        var f = new int[n];
        for (var i = 0; i < n; i++)
        {
            var age = 39 - 12 * rng.NextDouble();
            (s[i], f[i]) = ChurnSimulation.Summarize(ChurnSimulation.BgNbdCustomer(rng, R, Alpha, A, B, age + holdout), age, holdout);
        }
        return (s, f);
    }

    [Fact]
    public void BgNbd_SimulatedCdnowCohort_RecoversParameters()
    {
        var (data, _) = Cohort(1);

        var sut = BgNbd.Fit(data);

        // Why these tolerances: the sampling spread of the estimates, measured on this simulator with seeds 1 to 7
        // (4,000 customers each): r 0.234-0.256, α 4.28-4.70, a 0.65-0.82, b 2.05-2.50 except 4.15 once (b is weakly
        // identified: the data pin down the mean drop-out probability a/(a+b) far better than b itself). The bounds are
        // about twice that spread; a wrong likelihood term lands far outside them.
        Assert.True(sut.Interior);
        Assert.InRange(sut.R, R - 0.03, R + 0.03);
        Assert.InRange(sut.Alpha, Alpha - 0.6, Alpha + 0.6);
        Assert.InRange(sut.A, A - 0.25, A + 0.25);
        Assert.InRange(sut.B, B - 1.0, B + 1.0);
        Assert.InRange(sut.A / (sut.A + sut.B), A / (A + B) - 0.03, A / (A + B) + 0.03);
        // The optimum really is one: the true parameters do not score higher.
        Assert.True(sut.LogLikelihood >= BgNbd.LogLikelihoodOf(data, R, Alpha, A, B) - 1e-6);
    }

    [Fact]
    public void BgNbd_TrueParameters_ForecastSimulatedHoldout()
    {
        var (data, future) = Cohort(2, 4000, 39);
        var sut = new BgNbd(R, Alpha, A, B);
        var rng = new SplitMix64(99);
        var newCustomers = Enumerable.Range(0, 20_000).Select(_ => ChurnSimulation.BgNbdCustomer(rng, R, Alpha, A, B, 39).Count).Average();

        var expected = data.Sum(s => sut.ExpectedOrders(s, 39));
        var noOrders = data.Average(s => sut.ProbabilityNoOrders(s, 39));
        var fresh = sut.ExpectedOrdersNewCustomer(39);

        // Why 10 %: the 39-week repeat purchases of 4,000 customers are heavy-tailed; over seeds 1 to 11 the ratio of the
        // true model's forecast to the simulated count ranged 0.956-1.09. New customers: 20,000 of them, ratio within 4 %.
        var actual = future.Sum();
        Assert.InRange(expected, actual * 0.9, actual * 1.1);
        Assert.InRange(fresh, newCustomers * 0.95, newCustomers * 1.05);
        Assert.InRange(noOrders, future.Average(f => f == 0 ? 1.0 : 0) - 0.02, future.Average(f => f == 0 ? 1.0 : 0) + 0.02);
    }

    [Theory]
    [InlineData(0.243, 4.414, 0.793, 2.426, 2, 30.0, 38.0, 39.0)]
    [InlineData(0.6, 60, 2.5, 8, 5, 200.0, 250.0, 100.0)]
    [InlineData(0.3, 10, 1.4, 0.9, 0, 0.0, 20.0, 52.0)]
    public void BgNbd_ExpectedOrders_EqualsThePapersUntransformedFormula(double r, double alpha, double a, double b, double x, double tx, double T, double t)
    {
        var sut = new BgNbd(r, alpha, a, b);

        var ours = sut.ExpectedOrders(new RepeatSummary(x, tx, T, 0), t);

        // Eq. 10 as published, where its series converges fast enough to sum directly.
        var z = t / (alpha + T + t);
        var f = BgNbd.Hypergeometric2F1(r + x, b + x, a + b + x - 1, z);
        var paper = (a + b + x - 1) / (a - 1) * (1 - Math.Pow((alpha + T) / (alpha + T + t), r + x) * f)
                    / (1 + (x > 0 ? a / (b + x - 1) * Math.Pow((alpha + T) / (alpha + tx), r + x) : 0));
        Assert.Equal(paper, ours, 1e-9);
    }

    [Fact]
    public void BgNbd_WhereABPlusXBelowOne_GivesFiniteIncreasingForecasts()
    {
        // model-notes: a + b + x < 1 happens on Online Retail, and the log of the hypergeometric term is NaN there.
        var sut = new BgNbd(0.622, 6.76, 0.046, 0.5);
        var s = new RepeatSummary(0, 0, 30, 0);

        var e30 = sut.ExpectedOrders(s, 30);
        var e365 = sut.ExpectedOrders(s, 365);

        Assert.True(double.IsFinite(e30) && e30 > 0, $"E[X(30)] = {e30}");
        Assert.True(e365 > e30, $"E[X(365)] = {e365} <= E[X(30)] = {e30}");
    }

    [Fact]
    public void BgNbd_OneTimeBuyer_AliveIsOneButNoOrderProbabilityGrowsWithAge()
    {
        var sut = new BgNbd(R, Alpha, A, B);
        var young = new RepeatSummary(0, 0, 2, 0);
        var old = new RepeatSummary(0, 0, 39, 0);

        // The trap: P(alive) is 1 for both, so 1 - P(alive) cannot rank them; P(no order in the horizon) does.
        Assert.Equal(1, sut.ProbabilityAlive(young));
        Assert.Equal(1, sut.ProbabilityAlive(old));
        Assert.True(sut.ProbabilityNoOrders(old, 13) > sut.ProbabilityNoOrders(young, 13) + 0.05);
    }

    [Fact]
    public void GammaGamma_SimulatedPublishedParameters_RecoversThemAndIsTrusted()
    {
        const double p = 6.25, q = 3.74, v = 15.44;
        var rng = new SplitMix64(3);
        var data = new RepeatSummary[4000];
        for (var i = 0; i < data.Length; i++)
        {
            var x = 1 + rng.NextInt(8);
            var nu = ChurnSimulation.Gamma(rng, q, v);
            var mean = Enumerable.Range(0, x).Select(_ => ChurnSimulation.Gamma(rng, p, nu)).Average();
            data[i] = new RepeatSummary(x, 1, 2, mean);
        }

        var sut = GammaGamma.Fit(data);

        // Why: CDNOW's 946 repeat buyers give standard errors near 0.6 (p), 0.35 (q) and 2.5 (v); with 4,000 customers
        // and a margin of about 3 of them, ±0.9, ±0.5 and ±3.5.
        Assert.True(sut.Trusted, sut.Reason);
        Assert.InRange(sut.P, p - 0.9, p + 0.9);
        Assert.InRange(sut.Q, q - 0.5, q + 0.5);
        Assert.InRange(sut.Gamma, v - 3.5, v + 3.5);
        Assert.NotNull(sut.ExpectedAverageSpend(data[0]));
    }

    [Fact]
    public void GammaGamma_NoSpendVariationWithinCustomers_IsNotTrustedAndPredictsNothing()
    {
        // Every order of a customer costs the same and customers differ by a heavy (log-normal) tail: the within-customer
        // Gamma collapses to a point (p runs away, v -> 0), the degeneration model-notes reports on Online Retail.
        var rng = new SplitMix64(5);
        var data = Enumerable.Range(0, 2000).Select(_ => new RepeatSummary(1 + rng.NextInt(6), 1, 2, Math.Exp(4 + 1.5 * rng.NextGaussian()))).ToArray();

        var sut = GammaGamma.Fit(data);

        Assert.False(sut.Trusted);
        Assert.Contains("not trusted", sut.Reason);
        Assert.Null(sut.ExpectedAverageSpend(data[0]));
    }

    /// <summary>
    /// The refit after a degenerate fit leaves out the top 1 % of average spenders, at least one: until 8 Dec 2026 a store of
    /// 100 repeat customers or fewer had none left out (the cut was the largest value) and the refit was the fit again, and
    /// 1,000 customers had 9 left out.
    /// </summary>
    [Theory]
    [InlineData(50, 49)]
    [InlineData(1000, 990)]
    public void GammaGamma_TheRefitLeavesOutTheTopShare_AtLeastOneCustomer(int customers, int fitted)
    {
        // Every customer's orders cost the same, with a heavy tail across customers: both fits degenerate (as above).
        var rng = new SplitMix64(9);
        var data = Enumerable.Range(0, customers).Select(_ => new RepeatSummary(1 + rng.NextInt(6), 1, 2, Math.Exp(4 + 2.5 * rng.NextGaussian()))).ToArray();

        var sut = GammaGamma.Fit(data);

        Assert.Contains("without the top 1", sut.Reason);
        Assert.Equal(fitted, sut.Customers);
        Assert.True(sut.TrimmedAbove < data.Max(c => c.AverageSpend));
    }
}
