using PluginApp.Ml.Common;
using PluginApp.Ml.Serialization;

namespace PluginApp.Ml.Linear;

/// <summary>
/// L2-regularized logistic regression on standardized features, fitted by Newton's method with
/// backtracking (iteratively reweighted least squares; e.g. Hastie, Tibshirani, Friedman, ESL 4.4).
/// Missing values (NaN) are imputed with the training mean, i.e. 0 after standardization.
/// </summary>
public sealed class LogisticRegressionTrainer
{
    private readonly LogisticRegressionOptions _o;

    /// <summary>Creates a trainer; rejects bad options by name.</summary>
    public LogisticRegressionTrainer(LogisticRegressionOptions? options = null)
    {
        _o = options ?? new LogisticRegressionOptions();
        _o.Validate();
    }

    /// <summary>Fits the model.</summary>
    public LogisticRegressionModel Train(FeatureTable data, bool[] labels)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(labels);
        if (labels.Length != data.Rows) throw new ArgumentException("labels must have one entry per row.", nameof(labels));
        int n = data.Rows, d = data.Columns, p = d + 1;
        var mean = new double[d];
        var std = new double[d];
        for (var f = 0; f < d; f++)
        {
            double s = 0, s2 = 0;
            var c = 0;
            for (var i = 0; i < n; i++)
            {
                var v = data.Values[i * d + f];
                if (float.IsNaN(v)) continue;
                s += v; s2 += (double)v * v; c++;
            }
            mean[f] = c > 0 ? s / c : 0;
            var var = c > 0 ? s2 / c - mean[f] * mean[f] : 0;
            std[f] = var > 1e-24 ? Math.Sqrt(var) : 1;
        }
        var z = new double[n * p];
        for (var i = 0; i < n; i++)
        {
            for (var f = 0; f < d; f++)
            {
                var v = data.Values[i * d + f];
                z[i * p + f] = float.IsNaN(v) ? 0 : (v - mean[f]) / std[f];
            }
            z[i * p + d] = 1;
        }
        var w = new double[p];
        var rowWeight = labels.Select(l => l ? _o.PositiveWeight : 1.0).ToArray();
        var obj = Objective(w, z, labels, rowWeight, n, p);
        var hess = new double[p * p];
        var grad = new double[p];
        var trial = new double[p];
        for (var it = 0; it < _o.MaxIterations; it++)
        {
            Array.Clear(hess);
            Array.Clear(grad);
            for (var i = 0; i < n; i++)
            {
                var row = z.AsSpan(i * p, p);
                var m = 0.0;
                for (var j = 0; j < p; j++) m += row[j] * w[j];
                var pr = ClassifierExtensions.Sigmoid(m);
                var g = rowWeight[i] * (pr - (labels[i] ? 1 : 0));
                var h = rowWeight[i] * Math.Max(pr * (1 - pr), 1e-12);
                for (var a = 0; a < p; a++)
                {
                    grad[a] += g * row[a];
                    var ha = h * row[a];
                    if (ha == 0) continue;
                    for (var b = 0; b <= a; b++) hess[a * p + b] += ha * row[b];
                }
            }
            for (var a = 0; a < p; a++)
                for (var b = a + 1; b < p; b++) hess[a * p + b] = hess[b * p + a];
            for (var a = 0; a < d; a++) { grad[a] += _o.L2 * w[a]; hess[a * p + a] += _o.L2; }
            // Why: with L2 = 0 and separable data the Hessian can become singular; a tiny ridge keeps it solvable.
            for (var a = 0; a < p; a++) hess[a * p + a] += 1e-9;
            var step = (double[])grad.Clone();
            DenseLinear.CholeskySolve(hess, step, p);
            var t = 1.0;
            double next;
            while (true)
            {
                for (var j = 0; j < p; j++) trial[j] = w[j] - t * step[j];
                next = Objective(trial, z, labels, rowWeight, n, p);
                if (next <= obj || t < 1e-8) break;
                t *= 0.5;
            }
            if (next > obj) break;
            Array.Copy(trial, w, p);
            var done = obj - next <= _o.Tolerance * Math.Max(1, Math.Abs(obj));
            obj = next;
            if (done) break;
        }
        return new LogisticRegressionModel(data.FeatureNames, mean, std, w[..d], w[d]);
    }

    private double Objective(double[] w, double[] z, bool[] labels, double[] rowWeight, int n, int p)
    {
        var loss = 0.0;
        for (var i = 0; i < n; i++)
        {
            var m = 0.0;
            for (var j = 0; j < p; j++) m += z[i * p + j] * w[j];
            var s = labels[i] ? -m : m;
            loss += rowWeight[i] * (s > 0 ? s + Math.Log(1 + Math.Exp(-s)) : Math.Log(1 + Math.Exp(s)));
        }
        var reg = 0.0;
        for (var j = 0; j < p - 1; j++) reg += w[j] * w[j];
        return loss + 0.5 * _o.L2 * reg;
    }
}
