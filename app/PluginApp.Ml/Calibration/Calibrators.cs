using PluginApp.Ml.Common;
using PluginApp.Ml.Serialization;

namespace PluginApp.Ml.Calibration;

/// <summary>Maps a raw score (margin or probability) to a calibrated probability. Fit on held-out rows.</summary>
public interface ICalibrator
{
    /// <summary>Calibrated probability.</summary>
    double Calibrate(double score);
    /// <summary>Writes the calibrator.</summary>
    void Save(Stream stream);
}

/// <summary>
/// Platt scaling: p = 1 / (1 + exp(A s + B)) fitted by Newton's method on Platt's smoothed targets
/// (J. Platt, "Probabilistic outputs for support vector machines", 1999; H.-T. Lin, C.-J. Lin, R. Weng, 2007).
/// </summary>
public sealed class PlattCalibrator : ICalibrator
{
    private const string Magic = "PPLT";
    private const int Version = 1;

    private PlattCalibrator(double a, double b) { A = a; B = b; }

    /// <summary>Slope (negative when higher scores mean positive).</summary>
    public double A { get; }
    /// <summary>Offset.</summary>
    public double B { get; }

    /// <summary>Fits A and B.</summary>
    public static PlattCalibrator Fit(ReadOnlySpan<double> scores, ReadOnlySpan<bool> labels)
    {
        if (scores.Length != labels.Length || scores.Length == 0) throw new ArgumentException("scores and labels must be non-empty and equally long.", nameof(labels));
        double nPos = 0, nNeg = 0;
        foreach (var l in labels) if (l) nPos++; else nNeg++;
        double hi = (nPos + 1) / (nPos + 2), lo = 1 / (nNeg + 2);
        double a = 0, b = Math.Log((nNeg + 1) / (nPos + 1));
        for (var it = 0; it < 100; it++)
        {
            double g1 = 0, g2 = 0, h11 = 1e-12, h22 = 1e-12, h21 = 0;
            for (var i = 0; i < scores.Length; i++)
            {
                var t = labels[i] ? hi : lo;
                var p = 1 / (1 + Math.Exp(a * scores[i] + b));
                var d = t - p; // derivative of the negative log likelihood w.r.t. (a s + b)
                var w = p * (1 - p);
                g1 += scores[i] * d; g2 += d;
                h11 += scores[i] * scores[i] * w; h22 += w; h21 += scores[i] * w;
            }
            var det = h11 * h22 - h21 * h21;
            if (Math.Abs(det) < 1e-300) break;
            var da = -(h22 * g1 - h21 * g2) / det;
            var db = -(-h21 * g1 + h11 * g2) / det;
            a += da; b += db;
            if (Math.Abs(da) + Math.Abs(db) < 1e-10) break;
        }
        return new PlattCalibrator(a, b);
    }

    /// <inheritdoc />
    public double Calibrate(double score) => ClassifierExtensions.Sigmoid(-(A * score + B));

    /// <summary>Layout: "PPLT" | int32 version=1 | float64 A | float64 B.</summary>
    public void Save(Stream stream)
    {
        using var w = new BinaryWriter(stream, System.Text.Encoding.UTF8, leaveOpen: true);
        ModelFormat.WriteHeader(w, Magic, Version);
        w.Write(A);
        w.Write(B);
    }

    /// <summary>Reads a calibrator written by <see cref="Save"/>.</summary>
    public static PlattCalibrator Load(Stream stream)
    {
        var r = ModelFormat.ReadHeader(stream, nameof(PlattCalibrator), Magic, Version);
        return new PlattCalibrator(r.ReadDouble("A"), r.ReadDouble("B"));
    }
}

/// <summary>
/// Isotonic regression by pool-adjacent-violators (B. Zadrozny, C. Elkan, "Transforming classifier scores
/// into accurate multiclass probability estimates", KDD 2002); linear interpolation between blocks.
/// </summary>
public sealed class IsotonicCalibrator : ICalibrator
{
    private const string Magic = "PISO";
    private const int Version = 1;
    private readonly double[] _x;
    private readonly double[] _y;

    private IsotonicCalibrator(double[] x, double[] y) { _x = x; _y = y; }

    /// <summary>Fits a non-decreasing step map.</summary>
    public static IsotonicCalibrator Fit(ReadOnlySpan<double> scores, ReadOnlySpan<bool> labels)
    {
        if (scores.Length != labels.Length || scores.Length == 0) throw new ArgumentException("scores and labels must be non-empty and equally long.", nameof(labels));
        var order = Enumerable.Range(0, scores.Length).ToArray();
        var s = scores.ToArray();
        Array.Sort(order, (i, j) => s[i].CompareTo(s[j]) is var c && c != 0 ? c : i.CompareTo(j));
        var sum = new List<double>(); var cnt = new List<double>(); var lo = new List<double>(); var hi = new List<double>();
        var i0 = 0;
        while (i0 < order.Length)
        {
            // Equal scores must share one value, so they start as one block.
            var i1 = i0;
            double ys = 0;
            while (i1 < order.Length && s[order[i1]] == s[order[i0]]) { ys += labels[order[i1]] ? 1 : 0; i1++; }
            sum.Add(ys); cnt.Add(i1 - i0); lo.Add(s[order[i0]]); hi.Add(s[order[i0]]);
            while (sum.Count > 1 && sum[^2] / cnt[^2] >= sum[^1] / cnt[^1])
            {
                sum[^2] += sum[^1]; cnt[^2] += cnt[^1]; hi[^2] = hi[^1];
                sum.RemoveAt(sum.Count - 1); cnt.RemoveAt(cnt.Count - 1); lo.RemoveAt(lo.Count - 1); hi.RemoveAt(hi.Count - 1);
            }
            i0 = i1;
        }
        var x = new List<double>(); var y = new List<double>();
        for (var b = 0; b < sum.Count; b++)
        {
            var v = sum[b] / cnt[b];
            x.Add(lo[b]); y.Add(v);
            if (hi[b] > lo[b]) { x.Add(hi[b]); y.Add(v); }
        }
        return new IsotonicCalibrator(x.ToArray(), y.ToArray());
    }

    /// <inheritdoc />
    public double Calibrate(double score)
    {
        if (score <= _x[0]) return _y[0];
        if (score >= _x[^1]) return _y[^1];
        var j = Array.BinarySearch(_x, score);
        if (j >= 0) return _y[j];
        j = ~j;
        var t = (score - _x[j - 1]) / (_x[j] - _x[j - 1]);
        return _y[j - 1] + t * (_y[j] - _y[j - 1]);
    }

    /// <summary>Layout: "PISO" | int32 version=1 | float64[] x (ascending knots) | float64[] y (same length).</summary>
    public void Save(Stream stream)
    {
        using var w = new BinaryWriter(stream, System.Text.Encoding.UTF8, leaveOpen: true);
        ModelFormat.WriteHeader(w, Magic, Version);
        ModelFormat.WriteDoubles(w, _x);
        ModelFormat.WriteDoubles(w, _y);
    }

    /// <summary>Reads a calibrator written by <see cref="Save"/>.</summary>
    public static IsotonicCalibrator Load(Stream stream)
    {
        var r = ModelFormat.ReadHeader(stream, nameof(IsotonicCalibrator), Magic, Version);
        var x = r.ReadDoubles("x");
        if (x.Length == 0) throw new InvalidDataException($"{nameof(IsotonicCalibrator)}: field 'x' is empty.");
        var y = r.ReadDoubles("y", x.Length);
        return new IsotonicCalibrator(x, y);
    }
}
