using System.Numerics.Tensors;
using PluginApp.Ml.Common;

namespace PluginApp.Ml.Recommenders;

/// <summary>
/// Weighted alternating least squares for implicit feedback.
/// Minimizes sum_{u,i} c_ui (p_ui - x_u . y_i)^2 + lambda (|x_u|^2 + |y_i|^2) with p_ui = 1 when r_ui &gt; 0
/// and c_ui = 1 + alpha r_ui (Y. Hu, Y. Koren, C. Volinsky, "Collaborative Filtering for Implicit Feedback
/// Datasets", ICDM 2008). Each row is solved with a few warm-started conjugate-gradient steps
/// (G. Takacs, I. Pilaszy, D. Tikk, "Applications of the conjugate gradient method for implicit feedback
/// collaborative filtering", RecSys 2011) or exactly by Cholesky.
/// </summary>
public sealed class AlsTrainer
{
    private readonly AlsOptions _options;

    /// <summary>Creates a trainer; rejects bad options by name.</summary>
    public AlsTrainer(AlsOptions? options = null)
    {
        _options = options ?? new AlsOptions();
        _options.Validate();
    }

    /// <summary>Trains on (user, item, weight) triples. Duplicated pairs are summed.</summary>
    public AlsModel Train(ReadOnlySpan<Interaction> interactions, int userCount, int itemCount)
    {
        Check.Positive(userCount, nameof(userCount));
        Check.Positive(itemCount, nameof(itemCount));
        var o = _options;
        int k = o.Factors;
        var byUser = SparseRows.Build(interactions, userCount, itemCount, transpose: false);
        var byItem = SparseRows.Build(interactions, itemCount, userCount, transpose: true);
        var conf = ToConfidence(byUser.Value, o.Alpha);
        var confT = ToConfidence(byItem.Value, o.Alpha);

        var rng = new SplitMix64(o.Seed);
        var scale = o.InitScale / Math.Sqrt(k);
        var x = new float[userCount * k];
        var y = new float[itemCount * k];
        for (var i = 0; i < x.Length; i++) x[i] = (float)(rng.NextGaussian() * scale);
        for (var i = 0; i < y.Length; i++) y[i] = (float)(rng.NextGaussian() * scale);

        var threads = o.Threads == 0 ? Environment.ProcessorCount : o.Threads;
        for (var it = 0; it < o.Iterations; it++)
        {
            SolveSide(x, y, byUser, conf, threads);
            SolveSide(y, x, byItem, confT, threads);
        }
        return new AlsModel(userCount, itemCount, k, x, y, (float)o.Regularization, (float)o.Alpha, byUser.RowStart, byUser.Index);
    }

    private static float[] ToConfidence(float[] weights, double alpha)
    {
        var c = new float[weights.Length];
        for (var i = 0; i < c.Length; i++) c[i] = (float)(1 + alpha * weights[i]);
        return c;
    }

    /// <summary>Gram matrix Y^T Y, accumulated in double and in a fixed order so it is reproducible.</summary>
    internal static float[] Gram(float[] y, int rows, int k)
    {
        var g = new double[k * k];
        for (var r = 0; r < rows; r++)
        {
            var v = y.AsSpan(r * k, k);
            for (var a = 0; a < k; a++)
            {
                var va = (double)v[a];
                if (va == 0) continue;
                var row = g.AsSpan(a * k, k);
                for (var b = a; b < k; b++) row[b] += va * v[b];
            }
        }
        var f = new float[k * k];
        for (var a = 0; a < k; a++)
            for (var b = a; b < k; b++)
                f[a * k + b] = f[b * k + a] = (float)g[a * k + b];
        return f;
    }

    private void SolveSide(float[] x, float[] y, SparseRows rows, float[] conf, int threads)
    {
        var k = _options.Factors;
        var gram = Gram(y, rows.Columns, k);
        var lambda = (float)_options.Regularization;
        var chunk = Math.Max(16, rows.Rows / (threads * 8));
        var chunks = (rows.Rows + chunk - 1) / chunk;
        var cholesky = _options.Solver == AlsSolver.Cholesky;
        var steps = _options.ConjugateGradientSteps;
        Parallel.For(0, chunks, new ParallelOptions { MaxDegreeOfParallelism = threads }, () => new Scratch(k), (c, _, s) =>
        {
            var end = Math.Min(rows.Rows, (c + 1) * chunk);
            for (var r = c * chunk; r < end; r++)
            {
                var xr = x.AsSpan(r * k, k);
                int start = rows.RowStart[r], len = rows.RowStart[r + 1] - start;
                var idx = rows.Index.AsSpan(start, len);
                var cf = conf.AsSpan(start, len);
                if (cholesky) SolveCholesky(xr, y, gram, lambda, idx, cf, s);
                else SolveCg(xr, y, gram, lambda, idx, cf, steps, s);
            }
            return s;
        }, _ => { });
    }

    internal sealed class Scratch(int k)
    {
        public readonly float[] R = new float[k], P = new float[k], Ap = new float[k];
        public readonly double[] A = new double[k * k], B = new double[k];
    }

    /// <summary>A v = (Y^T Y + lambda I) v + sum_i (c_i - 1)(y_i . v) y_i, never forming A.</summary>
    private static void MultiplyA(ReadOnlySpan<float> v, Span<float> result, float[] y, float[] gram, float lambda,
        ReadOnlySpan<int> idx, ReadOnlySpan<float> cf)
    {
        var k = v.Length;
        for (var a = 0; a < k; a++) result[a] = TensorPrimitives.Dot(gram.AsSpan(a * k, k), v) + lambda * v[a];
        for (var j = 0; j < idx.Length; j++)
        {
            var yi = y.AsSpan(idx[j] * k, k);
            var w = (cf[j] - 1f) * TensorPrimitives.Dot(yi, v);
            TensorPrimitives.MultiplyAdd(yi, w, result, result);
        }
    }

    private static void SolveCg(Span<float> x, float[] y, float[] gram, float lambda, ReadOnlySpan<int> idx,
        ReadOnlySpan<float> cf, int steps, Scratch s)
    {
        var k = x.Length;
        Span<float> r = s.R, p = s.P, ap = s.Ap;
        // r = b - A x with b = sum_i c_i y_i (p_ui = 1 on observed items only).
        MultiplyA(x, ap, y, gram, lambda, idx, cf);
        r.Clear();
        for (var j = 0; j < idx.Length; j++) TensorPrimitives.MultiplyAdd(y.AsSpan(idx[j] * k, k), cf[j], r, r);
        TensorPrimitives.Subtract(r, ap, r);
        r.CopyTo(p);
        var rs = TensorPrimitives.Dot(r, r);
        for (var it = 0; it < steps && rs > 1e-20f; it++)
        {
            MultiplyA(p, ap, y, gram, lambda, idx, cf);
            var pap = TensorPrimitives.Dot(p, ap);
            if (!(pap > 0)) break;
            var step = rs / pap;
            TensorPrimitives.MultiplyAdd(p, step, x, x);
            TensorPrimitives.MultiplyAdd(ap, -step, r, r);
            var rsNew = TensorPrimitives.Dot(r, r);
            TensorPrimitives.MultiplyAdd(p, rsNew / rs, r, p);
            rs = rsNew;
        }
    }

    internal static void SolveCholesky(Span<float> x, float[] y, float[] gram, float lambda, ReadOnlySpan<int> idx,
        ReadOnlySpan<float> cf, Scratch s)
    {
        var k = x.Length;
        var a = s.A.AsSpan();
        var b = s.B.AsSpan();
        for (var i = 0; i < k * k; i++) a[i] = gram[i];
        for (var i = 0; i < k; i++) a[i * k + i] += lambda;
        b.Clear();
        for (var j = 0; j < idx.Length; j++)
        {
            var yi = y.AsSpan(idx[j] * k, k);
            var c = cf[j];
            var w = c - 1.0;
            for (var p = 0; p < k; p++)
            {
                var wp = w * yi[p];
                b[p] += c * yi[p];
                if (wp == 0) continue;
                var row = a.Slice(p * k, k);
                for (var q = 0; q <= p; q++) row[q] += wp * yi[q];
            }
        }
        // Only the lower triangle was accumulated; mirror it for the factorization.
        for (var p = 0; p < k; p++)
            for (var q = p + 1; q < k; q++) a[p * k + q] = a[q * k + p];
        if (lambda <= 0)
            for (var i = 0; i < k; i++) a[i * k + i] += 1e-6;
        DenseLinear.CholeskySolve(a, b, k);
        for (var i = 0; i < k; i++) x[i] = (float)b[i];
    }
}
