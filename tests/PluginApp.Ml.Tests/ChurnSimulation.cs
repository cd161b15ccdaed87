using PluginApp.Ml.Churn;
using PluginApp.Ml.Common;

namespace PluginApp.Ml.Tests;

/// <summary>Seeded simulators for the churn tests: BG/NBD customers, Gamma-Gamma spend, and whole stores of orders.</summary>
internal static class ChurnSimulation
{
    /// <summary>Gamma(shape, rate) by Marsaglia and Tsang (2000), with the U^(1/shape) boost below shape 1.</summary>
    public static double Gamma(SplitMix64 rng, double shape, double rate)
    {
        if (shape < 1) return Gamma(rng, shape + 1, rate) * Math.Pow(1 - rng.NextDouble(), 1 / shape);
        var d = shape - 1.0 / 3;
        var c = 1 / Math.Sqrt(9 * d);
        while (true)
        {
            double x, v;
            do { x = rng.NextGaussian(); v = 1 + c * x; } while (v <= 0);
            v = v * v * v;
            var u = 1 - rng.NextDouble();
            if (Math.Log(u) < 0.5 * x * x + d - d * v + d * Math.Log(v)) return d * v / rate;
        }
    }

    public static double Beta(SplitMix64 rng, double a, double b)
    {
        var x = Gamma(rng, a, 1);
        return x / (x + Gamma(rng, b, 1));
    }

    public static double Exponential(SplitMix64 rng, double rate) => -Math.Log(1 - rng.NextDouble()) / rate;

    /// <summary>
    /// One BG/NBD customer over (0, horizon]: a purchase at 0, then purchases at Poisson rate λ ~ Gamma(r, α); after each
    /// repeat purchase they drop out with probability p ~ Beta(a, b). Returns repeat purchase times.
    /// </summary>
    public static List<double> BgNbdCustomer(SplitMix64 rng, double r, double alpha, double a, double b, double horizon)
    {
        var lambda = Gamma(rng, r, alpha);
        var p = Beta(rng, a, b);
        var times = new List<double>();
        var t = 0.0;
        while (true)
        {
            t += Exponential(rng, lambda);
            if (t > horizon) return times;
            times.Add(t);
            if (rng.NextDouble() < p) return times;
        }
    }

    /// <summary>Summary at T plus the repeat purchases counted in (T, T + holdout].</summary>
    public static (RepeatSummary Summary, int Future) Summarize(List<double> times, double age, double holdout)
    {
        var past = times.Where(t => t <= age).ToList();
        return (new RepeatSummary(past.Count, past.Count == 0 ? 0 : past[^1], age, 0), times.Count(t => t > age && t <= age + holdout));
    }

    /// <summary>
    /// A store of <paramref name="customers"/> customers acquired uniformly over the <paramref name="days"/> before
    /// <paramref name="now"/>, each a BG/NBD customer in days (r 0.6, α 40: one order per ~67 days on average; a 0.8, b 3)
    /// with Gamma order values; some orders discounted, a few refunded, categories from a small catalogue. Orders run up
    /// to now + 200 days (the tests cut them).
    /// </summary>
    public static CustomerHistory[] Store(int customers, DateTime now, int days, ulong seed)
    {
        var rng = new SplitMix64(seed);
        var result = new CustomerHistory[customers];
        string[] catalogue = ["mugs", "tea", "coffee", "cards", "candles", "toys", "bags", "prints"];
        for (var i = 0; i < customers; i++)
        {
            var start = now.AddDays(-days * rng.NextDouble());
            var horizon = (now - start).TotalDays + 200;
            var times = BgNbdCustomer(rng, 0.6, 40, 0.8, 3, horizon);
            var scale = Gamma(rng, 3, 3.0 / 60);
            var orders = new List<ChurnOrder>();
            foreach (var t in times.Prepend(0))
            {
                var amount = Math.Round(Gamma(rng, 4, 4 / scale), 2) + 1;
                var discount = rng.NextDouble() < 0.2 ? Math.Round(amount * 0.1, 2) : 0;
                var refunded = rng.NextDouble() < 0.05 ? amount : 0;
                orders.Add(new ChurnOrder(start.AddDays(t), amount, discount, refunded, false,
                    [catalogue[rng.NextInt(catalogue.Length)], catalogue[rng.NextInt(catalogue.Length)]]));
            }
            result[i] = new CustomerHistory($"c{i}", orders);
        }
        return result;
    }
}
