namespace PluginApp.Admin.Charts;

/// <summary>
/// A value axis whose ticks step by 1, 2 or 5 times a power of ten and cover every value. It always includes
/// zero, because a line or bar measured from anywhere else exaggerates changes.
/// </summary>
internal sealed class AxisScale
{
    private const int TargetIntervals = 5;
    // Why: a value divided by the step lands a hair off a whole number (0.3 / 0.1 = 2.9999999999999996); no extra tick for that.
    private const double Slack = 1e-9;

    private AxisScale(IReadOnlyList<double> ticks) => Ticks = ticks;

    /// <summary>Ascending, at least two; the first is at or below every value and zero, the last at or above.</summary>
    public IReadOnlyList<double> Ticks { get; }
    public double Min => Ticks[0];
    public double Max => Ticks[^1];

    /// <param name="format">Steps never go below what the format can show, so no two tick labels read the same.</param>
    public static AxisScale Covering(IEnumerable<double> values, ValueFormat format, string? currency = null)
    {
        double lo = 0, hi = 0;
        foreach (var v in values) (lo, hi) = (Math.Min(lo, v), Math.Max(hi, v));
        var step = Math.Max(NiceStep((hi - lo) / TargetIntervals), format.Resolution(currency));
        var first = (long)Math.Floor(lo / step + Slack);
        var last = Math.Max((long)Math.Ceiling(hi / step - Slack), first + 1);
        var ticks = new List<double>();
        // Why: k * step rather than adding step up, so rounding errors do not pile up along the axis.
        for (var k = first; k <= last; k++) ticks.Add(k * step);
        return new AxisScale(ticks);
    }

    /// <summary>Where <paramref name="value"/> falls on a pixel range that runs from <paramref name="atMin"/> to <paramref name="atMax"/>.</summary>
    public double Map(double value, double atMin, double atMax) => atMin + (value - Min) / (Max - Min) * (atMax - atMin);

    private static double NiceStep(double raw)
    {
        if (raw <= 0) return 0;
        var magnitude = Math.Pow(10, Math.Floor(Math.Log10(raw)));
        var f = raw / magnitude;
        return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * magnitude;
    }
}
