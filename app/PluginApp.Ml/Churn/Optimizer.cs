using MathNet.Numerics.LinearAlgebra;
using MathNet.Numerics.Optimization;

namespace PluginApp.Ml.Churn;

/// <summary>Maximum likelihood on log-parameters with MathNet.Numerics: Nelder-Mead, restarted from its own optimum
/// (a collapsed simplex is the usual way Nelder-Mead stops early), then a BFGS polish on central-difference gradients
/// that is kept only when it improves the objective.</summary>
internal static class Optimizer
{
    /// <summary>Bound on |log parameter|; beyond it the objective is +infinity-like, so a parameter that runs away to 0 or
    /// infinity stops at e^±Bound and the caller can see it.</summary>
    public const double Bound = 25;

    public static (double[] LogParameters, double Value, bool Interior) Minimize(Func<double[], double> negLogLik, double[] start,
        CancellationToken ct)
    {
        double F(Vector<double> v)
        {
            ct.ThrowIfCancellationRequested();
            var a = v.ToArray();
            foreach (var x in a) if (!(Math.Abs(x) <= Bound)) return 1e300;
            var f = negLogLik(a);
            return double.IsFinite(f) ? f : 1e300;
        }
        var objective = ObjectiveFunction.Value(F);
        var x = Vector<double>.Build.DenseOfArray(start);
        var best = F(x);
        for (var round = 0; round < 3; round++)
        {
            try
            {
                var nm = new NelderMeadSimplex(1e-10, 20_000).FindMinimum(objective, x,
                    Vector<double>.Build.Dense(start.Length, round == 0 ? 0.5 : 0.1));
                if (nm.FunctionInfoAtMinimum.Value <= best)
                {
                    best = nm.FunctionInfoAtMinimum.Value;
                    x = nm.MinimizingPoint;
                }
            }
            catch (MaximumIterationsException) { }
        }
        try
        {
            Vector<double> Grad(Vector<double> v)
            {
                var g = Vector<double>.Build.Dense(v.Count);
                for (var i = 0; i < v.Count; i++)
                {
                    var h = 1e-5 * Math.Max(1, Math.Abs(v[i]));
                    var up = v.Clone(); up[i] += h;
                    var dn = v.Clone(); dn[i] -= h;
                    g[i] = (F(up) - F(dn)) / (2 * h);
                }
                return g;
            }
            var bfgs = new BfgsMinimizer(1e-7, 1e-12, 1e-14, 500).FindMinimum(ObjectiveFunction.Gradient(F, Grad), x);
            if (bfgs.FunctionInfoAtMinimum.Value < best)
            {
                best = bfgs.FunctionInfoAtMinimum.Value;
                x = bfgs.MinimizingPoint;
            }
        }
        catch (Exception e) when (e is OptimizationException or MaximumIterationsException or ArgumentException) { }
        // Why: "converged" here means an interior optimum; a parameter at the bound is a model that degenerated.
        return (x.ToArray(), best, best < 1e300 && x.All(v => Math.Abs(v) < Bound - 0.5));
    }
}
