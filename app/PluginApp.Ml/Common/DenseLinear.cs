namespace PluginApp.Ml.Common;

/// <summary>Small dense symmetric positive-definite solves used by ALS fold-in and Newton steps.</summary>
internal static class DenseLinear
{
    /// <summary>Solves A x = b in place (A is n x n row-major, overwritten by its Cholesky factor; b becomes x).
    /// A tiny ridge is added on failure because callers' systems are PD in exact arithmetic.</summary>
    public static void CholeskySolve(Span<double> a, Span<double> b, int n)
    {
        if (!TryFactor(a, n))
            throw new InvalidOperationException("Matrix is not positive definite.");
        SolveFactored(a, b, n);
    }

    /// <summary>b becomes x with L L^T x = b, L the lower triangle of <paramref name="factor"/>.</summary>
    private static void SolveFactored(ReadOnlySpan<double> factor, Span<double> b, int n)
    {
        for (var i = 0; i < n; i++)
        {
            var s = b[i];
            for (var k = 0; k < i; k++) s -= factor[i * n + k] * b[k];
            b[i] = s / factor[i * n + i];
        }
        for (var i = n - 1; i >= 0; i--)
        {
            var s = b[i];
            for (var k = i + 1; k < n; k++) s -= factor[k * n + i] * b[k];
            b[i] = s / factor[i * n + i];
        }
    }

    /// <summary>The inverse of the symmetric positive-definite A (n x n row-major, overwritten by its Cholesky factor):
    /// one factorization, then a forward and a back substitution per column.</summary>
    public static double[] CholeskyInverse(Span<double> a, int n)
    {
        if (!TryFactor(a, n))
            throw new InvalidOperationException("Matrix is not positive definite.");
        var inverse = new double[n * n];
        var x = new double[n];
        for (var c = 0; c < n; c++)
        {
            Array.Clear(x);
            x[c] = 1;
            SolveFactored(a, x, n);
            for (var r = 0; r < n; r++) inverse[r * n + c] = x[r];
        }
        return inverse;
    }

    private static bool TryFactor(Span<double> a, int n)
    {
        for (var j = 0; j < n; j++)
        {
            var d = a[j * n + j];
            for (var k = 0; k < j; k++) d -= a[j * n + k] * a[j * n + k];
            if (!(d > 0)) return false;
            d = Math.Sqrt(d);
            a[j * n + j] = d;
            for (var i = j + 1; i < n; i++)
            {
                var s = a[i * n + j];
                for (var k = 0; k < j; k++) s -= a[i * n + k] * a[j * n + k];
                a[i * n + j] = s / d;
            }
        }
        return true;
    }
}
