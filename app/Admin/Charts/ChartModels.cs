namespace PluginApp.Admin.Charts;

/// <summary>One line of a time-series chart: a value per day, null on a day without one (the line breaks there).</summary>
public sealed record ChartSeries(string Name, IReadOnlyList<double?> Values);

/// <summary>
/// A line chart over days. The constructor rejects what would draw a wrong picture: more than
/// <see cref="MaxSeries"/> series, a series without one value per day, days out of order, NaN or infinity.
/// </summary>
/// <param name="Id">The figure's HTML id; also prefixes the ids the svg's title and description use.</param>
/// <param name="Unit">Shown after the title, e.g. "orders per day".</param>
/// <param name="Days">Strictly ascending; a gap between two days shows as a gap on the x axis.</param>
/// <param name="Currency">Code shown before <see cref="ValueFormat.Money"/> values, e.g. "GBP".</param>
public sealed record TimeSeriesChart(string Id, string Title, string Unit, string YAxisLabel, IReadOnlyList<DateOnly> Days,
    IReadOnlyList<ChartSeries> Series, ValueFormat Format = ValueFormat.Count, string? Currency = null)
{
    /// <summary>More lines than this cannot be told apart by colour.</summary>
    public const int MaxSeries = 4;

    // Why: get-only, so `with` cannot slip in an id, days or series that were never checked.
    public string Id { get; } = ChartChecks.Id(Id);
    public IReadOnlyList<DateOnly> Days { get; } = ChartChecks.Ascending(Days);
    public IReadOnlyList<ChartSeries> Series { get; } = ChartChecks.Series(Series, Days.Count);
}

/// <summary>One horizontal bar; <paramref name="Low"/> and <paramref name="High"/> (both or neither) bound its interval, drawn as a whisker.</summary>
public sealed record Bar(string Label, double Value, double? Low = null, double? High = null);

/// <summary>Horizontal bars measured from a zero line: negative values grow left of it, positive ones right.</summary>
/// <param name="Id">The figure's HTML id; also prefixes the ids the svg's title and description use.</param>
/// <param name="IntervalLevel">The confidence level of the bars' intervals, named in the description and the table.</param>
public sealed record BarChart(string Id, string Title, string Unit, string ValueAxisLabel, IReadOnlyList<Bar> Bars,
    ValueFormat Format = ValueFormat.Count, string? Currency = null, double IntervalLevel = 0.95)
{
    // Why: get-only, so `with` cannot slip in an id or bars that were never checked.
    public string Id { get; } = ChartChecks.Id(Id);
    public IReadOnlyList<Bar> Bars { get; } = ChartChecks.Bars(Bars);
    public double IntervalLevel { get; } = IntervalLevel is > 0 and < 1 ? IntervalLevel
        : throw new ArgumentOutOfRangeException(nameof(IntervalLevel), IntervalLevel, "a confidence level is a fraction between 0 and 1, e.g. 0.95");
}
