using System.Xml.Linq;
using static PluginApp.Admin.Charts.Markup;

namespace PluginApp.Admin.Charts;

/// <summary>The svg, legend and table of a <see cref="TimeSeriesChart"/>.</summary>
internal static class LinePlot
{
    private const double Width = 520, Height = 260, Top = 16, Right = 24, Bottom = 40;
    // Why: a "30 Nov" label is about 40px wide; eight across the ~550px plot leave room between them (the svg scales as a whole).
    private const int MaxDayLabels = 8;
    // Why: room left of the tick labels for the y-axis label, which runs rotated along the axis.
    private const double AxisLabelBand = 24;
    // Why: with the 2.5px stroke a ring of this radius reads as a solid dot about 5.5px across.
    private const double DotRadius = 1.6;
    private static readonly string Ring = $"a{N(DotRadius)} {N(DotRadius)} 0 1 0 {N(2 * DotRadius)} 0a{N(DotRadius)} {N(DotRadius)} 0 1 0 {N(-2 * DotRadius)} 0";

    public static XElement Svg(TimeSeriesChart c)
    {
        var scale = AxisScale.Covering(c.Series.SelectMany(s => s.Values).OfType<double>(), c.Format, c.Currency);
        var tickLabels = scale.Ticks.Select(t => c.Format.Format(t, c.Currency)).ToList();
        double left = AxisLabelBand + TextWidth(tickLabels.Max(l => l.Length)) + 8, right = Width - Right, top = Top, bottom = Height - Bottom;
        int first = c.Days[0].DayNumber, span = c.Days[^1].DayNumber - first;
        double X(int i) => span == 0 ? (left + right) / 2 : left + (c.Days[i].DayNumber - first) / (double)span * (right - left);
        double Y(double v) => scale.Map(v, bottom, top);

        var yAxis = new XElement("g", Class("chart-yaxis"), scale.Ticks.Select((t, k) => new XElement[]
        {
            Line("chart-grid", left, Y(t), right, Y(t), Grid),
            Label("chart-tick", left - 6, Y(t), "end", tickLabels[k]),
        }));
        var thin = (c.Days.Count + MaxDayLabels - 1) / MaxDayLabels;
        var xAxis = new XElement("g", Class("chart-xaxis"), Enumerable.Range(0, c.Days.Count).Where(i => i % thin == 0)
            .Select(i => Label("chart-tick", X(i), bottom + 16, "middle", ShortDay(c.Days[i]))));
        var midY = (top + bottom) / 2;
        var yLabel = new XElement("text", Class("chart-axis-label"), A("x", AxisLabelBand - 8), A("y", midY), A("text-anchor", "middle"),
            A("transform", $"rotate(-90 {N(AxisLabelBand - 8)} {N(midY)})"), A("fill", Ink), Text(c.YAxisLabel));
        var zero = scale.Min < 0 ? Line("chart-zero", left, Y(0), right, Y(0), Ink) : null;
        var lines = c.Series.Select((s, k) => s.Values.Any(v => v is not null)
            ? new XElement("path", Class($"chart-series-{k}"), A("d", PathData(s.Values, X, Y)), A("fill", "none"),
                A("stroke", SeriesColours[k]), A("stroke-width", 2.5), A("stroke-linejoin", "round"), A("stroke-linecap", "round"))
            : null);

        return Figure.Svg(c.Id, Width, Height, c.Title, Description(c), yAxis, zero,
            Line("chart-axis", left, top, left, bottom, Axis), Line("chart-axis", left, bottom, right, bottom, Axis),
            xAxis, yLabel, lines);
    }

    public static XElement Legend(TimeSeriesChart c) =>
        new("ul", Class("chart-legend"), c.Series.Select((s, k) => new XElement("li",
            new XElement("svg", Class("chart-swatch"), A("width", 16), A("height", 10), A("aria-hidden", "true"),
                new XElement("line", Class($"chart-series-{k}"), A("x1", 0), A("y1", 5), A("x2", 16), A("y2", 5),
                    A("stroke", SeriesColours[k]), A("stroke-width", 3))),
            " ", Text(s.Name))));

    public static XElement Table(TimeSeriesChart c) =>
        Figure.Table(c.Series.Select(s => s.Name).Prepend("Day"),
            c.Days.Select((d, i) => (LongDay(d), c.Series.Select(s => s.Values[i] is { } v ? c.Format.Format(v, c.Currency) : ""))));

    /// <summary>
    /// One subpath per run of days with values, so a null day leaves a gap. A day alone between gaps becomes a
    /// small ring whose stroke closes it into a dot: part of the same path, so the stylesheet's stroke colours it too.
    /// </summary>
    private static string PathData(IReadOnlyList<double?> values, Func<int, double> x, Func<double, double> y)
    {
        var parts = new List<string>();
        for (var i = 0; i < values.Count; i++)
        {
            if (values[i] is not { } v) continue;
            var joinsPrevious = i > 0 && values[i - 1] is not null;
            var joinsNext = i + 1 < values.Count && values[i + 1] is not null;
            var point = $"{N(x(i))} {N(y(v))}";
            parts.Add(joinsPrevious ? "L" + point : joinsNext ? "M" + point : $"M{N(x(i) - DotRadius)} {N(y(v))}{Ring}");
        }
        return string.Join(' ', parts);
    }

    /// <summary>Per series, in words: its days and its highest value, e.g. "Clicks per day from 1 Nov 2026 to 14 Nov 2026. Highest: 42 on 3 Nov 2026."</summary>
    private static string Description(TimeSeriesChart c) => string.Join(" ", c.Series.Select(s =>
    {
        var range = $"from {LongDay(c.Days[0])} to {LongDay(c.Days[^1])}";
        int? best = null;
        for (var i = 0; i < s.Values.Count; i++)
            if (s.Values[i] is { } v && (best is null || v > s.Values[best.Value]!.Value)) best = i;
        return best is { } b
            ? $"{s.Name} per day {range}. Highest: {c.Format.Format(s.Values[b]!.Value, c.Currency)} on {LongDay(c.Days[b])}."
            : $"{s.Name}: no values {range}.";
    }));
}
