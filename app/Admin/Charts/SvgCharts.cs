using Microsoft.AspNetCore.Html;

namespace PluginApp.Admin.Charts;

/// <summary>
/// Charts for the embedded admin, rendered on the server as SVG inside a &lt;figure&gt;: no JavaScript, readable by
/// screen readers (a title, a description in words, and a table of every value) and well-formed XML.
/// Colours come from the stylesheet through these classes; each element also carries a stroke or fill so an
/// unstyled chart still reads: chart-series-0 … chart-series-3 (lines and legend swatches), chart-bar,
/// chart-bar--negative, chart-whisker, chart-axis, chart-grid, chart-zero, chart-tick, chart-axis-label.
/// </summary>
public static class SvgCharts
{
    /// <summary>A line per series over the chart's days; an empty state when there is no value to draw.</summary>
    public static IHtmlContent Line(TimeSeriesChart c)
    {
        ArgumentNullException.ThrowIfNull(c);
        if (c.Series.All(s => s.Values.All(v => v is null))) return Figure.Empty(c.Id, c.Title, c.Unit);
        return Figure.Of(c.Id, c.Title, c.Unit, LinePlot.Svg(c), c.Series.Count > 1 ? LinePlot.Legend(c) : null, LinePlot.Table(c));
    }

    /// <summary>Horizontal bars around a zero line, with whiskers for intervals; an empty state when there are no bars.</summary>
    public static IHtmlContent Bars(BarChart c)
    {
        ArgumentNullException.ThrowIfNull(c);
        if (c.Bars.Count == 0) return Figure.Empty(c.Id, c.Title, c.Unit);
        return Figure.Of(c.Id, c.Title, c.Unit, BarPlot.Svg(c), null, BarPlot.Table(c));
    }
}
