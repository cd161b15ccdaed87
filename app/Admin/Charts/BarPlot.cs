using System.Xml.Linq;
using static PluginApp.Admin.Charts.Markup;

namespace PluginApp.Admin.Charts;

/// <summary>The svg and table of a <see cref="BarChart"/>: one row per bar, values along the bottom, a zero line.</summary>
internal static class BarPlot
{
    private const double Width = 520, Top = 12, Right = 24, Bottom = 48, Row = 32, BarHeight = 18, CapHalf = 5;
    // Why: a long category name would squeeze the plot to nothing; it is cut here and given in full in the table.
    private const int MaxLabelChars = 32;

    public static XElement Svg(BarChart c)
    {
        var scale = AxisScale.Covering(c.Bars.SelectMany(b => new[] { b.Value, b.Low, b.High }).OfType<double>(), c.Format, c.Currency);
        var labels = c.Bars.Select(b => b.Label.Length > MaxLabelChars ? b.Label[..(MaxLabelChars - 1)] + "…" : b.Label).ToList();
        double left = Math.Clamp(TextWidth(labels.Max(l => l.Length)) + 16, 64, 260), right = Width - Right;
        double top = Top, bottom = Top + c.Bars.Count * Row, height = bottom + Bottom;
        double X(double v) => scale.Map(v, left, right);
        double RowMiddle(int i) => top + (i + 0.5) * Row;

        var valueAxis = new XElement("g", Class("chart-xaxis"), scale.Ticks.Select(t => new XElement[]
        {
            Line("chart-grid", X(t), top, X(t), bottom, Grid),
            Label("chart-tick", X(t), bottom + 16, "middle", c.Format.Format(t, c.Currency)),
        }));
        var categories = new XElement("g", Class("chart-yaxis"),
            labels.Select((l, i) => Label("chart-tick", left - 8, RowMiddle(i), "end", l)));
        var bars = c.Bars.Select((b, i) => new XElement?[]
        {
            new("rect", Class(b.Value < 0 ? "chart-bar chart-bar--negative" : "chart-bar"),
                A("x", Math.Min(X(0), X(b.Value))), A("y", RowMiddle(i) - BarHeight / 2),
                A("width", Math.Abs(X(b.Value) - X(0))), A("height", BarHeight), A("fill", b.Value < 0 ? Negative : SeriesColours[0])),
            b is { Low: { } lo, High: { } hi } ? Whisker(X(lo), X(hi), RowMiddle(i)) : null,
        });
        var axisLabel = new XElement("text", Class("chart-axis-label"), A("x", (left + right) / 2), A("y", height - 8),
            A("text-anchor", "middle"), A("fill", Ink), Text(c.ValueAxisLabel));

        return Figure.Svg(c.Id, Width, height, c.Title, Description(c), valueAxis,
            Line("chart-axis", left, bottom, right, bottom, Axis), categories, bars,
            Line("chart-zero", X(0), top, X(0), bottom, Ink), axisLabel);
    }

    public static XElement Table(BarChart c)
    {
        var level = ValueFormat.Percent.Format(c.IntervalLevel);
        var withInterval = c.Bars.Any(b => b.Low is not null);
        string[] headers = withInterval ? ["Category", c.ValueAxisLabel, $"{level} interval low", $"{level} interval high"] : ["Category", c.ValueAxisLabel];
        return Figure.Table(headers, c.Bars.Select(b => (b.Label, Cells(b, c, withInterval))));
    }

    private static IEnumerable<string> Cells(Bar b, BarChart c, bool withInterval)
    {
        yield return c.Format.Format(b.Value, c.Currency);
        if (!withInterval) yield break;
        yield return b.Low is { } lo ? c.Format.Format(lo, c.Currency) : "";
        yield return b.High is { } hi ? c.Format.Format(hi, c.Currency) : "";
    }

    /// <summary>The interval as a horizontal line from low to high with an upright cap at each end.</summary>
    private static XElement Whisker(double low, double high, double y) =>
        new("g", Class("chart-whisker"), A("stroke", Ink), A("stroke-width", 1.5),
            Line("chart-whisker", low, y, high, y, Ink),
            Line("chart-whisker", low, y - CapHalf, low, y + CapHalf, Ink),
            Line("chart-whisker", high, y - CapHalf, high, y + CapHalf, Ink));

    /// <summary>Per bar, in words: "Model arm: 12.3% (95% interval 4.1% to 20.5%)."</summary>
    private static string Description(BarChart c)
    {
        var level = ValueFormat.Percent.Format(c.IntervalLevel);
        return string.Join(" ", c.Bars.Select(b => $"{b.Label}: {c.Format.Format(b.Value, c.Currency)}" + (b is { Low: { } lo, High: { } hi }
            ? $" ({level} interval {c.Format.Format(lo, c.Currency)} to {c.Format.Format(hi, c.Currency)})."
            : ".")));
    }
}
