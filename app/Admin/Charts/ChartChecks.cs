using System.Globalization;
using System.Text.RegularExpressions;

namespace PluginApp.Admin.Charts;

/// <summary>The chart records' constructor checks; each names the argument and the offending item.</summary>
internal static partial class ChartChecks
{
    public static string Id(string id) => id is not null && HtmlId().IsMatch(id) ? id
        : throw new ArgumentException($"chart id '{id}' must be a letter followed by letters, digits, '-' or '_' (it becomes an HTML id)", nameof(TimeSeriesChart.Id));

    public static IReadOnlyList<DateOnly> Ascending(IReadOnlyList<DateOnly> days)
    {
        ArgumentNullException.ThrowIfNull(days, nameof(TimeSeriesChart.Days));
        for (var i = 1; i < days.Count; i++)
            if (days[i] <= days[i - 1])
                throw new ArgumentException($"days must be strictly ascending, but {Iso(days[i])} follows {Iso(days[i - 1])} at index {i}", nameof(TimeSeriesChart.Days));
        return days;
    }

    public static IReadOnlyList<ChartSeries> Series(IReadOnlyList<ChartSeries> series, int days)
    {
        ArgumentNullException.ThrowIfNull(series, nameof(TimeSeriesChart.Series));
        if (series.Count > TimeSeriesChart.MaxSeries)
            throw new ArgumentException($"a chart shows at most {TimeSeriesChart.MaxSeries} series, got {series.Count}", nameof(TimeSeriesChart.Series));
        foreach (var s in series)
        {
            if (s.Values.Count != days)
                throw new ArgumentException($"series '{s.Name}' has {s.Values.Count} values for {days} days; give one per day (null for none)", nameof(TimeSeriesChart.Series));
            for (var i = 0; i < days; i++)
                if (s.Values[i] is { } v && !double.IsFinite(v))
                    throw new ArgumentException($"series '{s.Name}' holds {Num(v)} at index {i}; use null for a day without a value", nameof(TimeSeriesChart.Series));
        }
        return series;
    }

    public static IReadOnlyList<Bar> Bars(IReadOnlyList<Bar> bars)
    {
        ArgumentNullException.ThrowIfNull(bars, nameof(BarChart.Bars));
        foreach (var b in bars)
        {
            if (!double.IsFinite(b.Value))
                throw new ArgumentException($"bar '{b.Label}' has value {Num(b.Value)}; it must be finite", nameof(BarChart.Bars));
            if (b.Low.HasValue != b.High.HasValue)
                throw new ArgumentException($"bar '{b.Label}' has only one end of its interval; give Low and High or neither", nameof(BarChart.Bars));
            if (b is { Low: { } lo, High: { } hi } && !(double.IsFinite(lo) && double.IsFinite(hi) && lo <= hi))
                throw new ArgumentException($"bar '{b.Label}' has interval {Num(lo)} to {Num(hi)}; Low and High must be finite with Low <= High", nameof(BarChart.Bars));
        }
        return bars;
    }

    private static string Iso(DateOnly d) => d.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);
    private static string Num(double v) => v.ToString(CultureInfo.InvariantCulture);

    [GeneratedRegex("^[A-Za-z][A-Za-z0-9_-]*$")]
    private static partial Regex HtmlId();
}
