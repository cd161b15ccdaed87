using System.Globalization;
using System.Xml.Linq;
using Microsoft.AspNetCore.Html;
using PluginApp.Admin.Charts;

namespace PluginApp.Tests.Admin;

public sealed class ChartsTests
{
    private static readonly DateOnly Start = new(2026, 11, 1);

    private static IReadOnlyList<DateOnly> Days(int n) => Enumerable.Range(0, n).Select(Start.AddDays).ToList();

    private static TimeSeriesChart Chart(params ChartSeries[] series) =>
        new("clicks", "Clicks", "per day", "Clicks", Days(series[0].Values.Count), series);

    private static XElement Parse(IHtmlContent html) => XDocument.Parse(html.ToString()!).Root!;

    private static bool HasClass(XElement e, string cls) => (e.Attribute("class")?.Value ?? "").Split(' ').Contains(cls);

    private static IEnumerable<XElement> WithClass(XElement root, string name, string cls) => root.Descendants(name).Where(e => HasClass(e, cls));

    private static double Num(XElement e, string attribute) => double.Parse(e.Attribute(attribute)!.Value, CultureInfo.InvariantCulture);

    private static XElement Svg(XElement figure) => Assert.Single(figure.Elements("svg"));

    [Fact]
    public void Line_WithTitleAndUnit_CaptionAndAccessibleNameShowThem()
    {
        var figure = Parse(SvgCharts.Line(Chart(new ChartSeries("Clicks", [3, 42, 7]))));

        Assert.Equal("chart", figure.Attribute("class")!.Value);
        Assert.Equal("clicks", figure.Attribute("id")!.Value);
        var caption = figure.Element("figcaption")!;
        Assert.StartsWith("Clicks", caption.Value);
        Assert.Equal("per day", WithClass(caption, "span", "chart-unit").Single().Value);
        var svg = Svg(figure);
        Assert.Equal("img", svg.Attribute("role")!.Value);
        Assert.Equal("clicks-title clicks-desc", svg.Attribute("aria-labelledby")!.Value);
        Assert.Equal("Clicks", svg.Elements("title").Single(t => t.Attribute("id")!.Value == "clicks-title").Value);
        Assert.Single(svg.Elements("desc"), d => d.Attribute("id")!.Value == "clicks-desc");
    }

    [Fact]
    public void Line_Svg_HasFixedAspectRatioSoThePageDoesNotShift()
    {
        var svg = Svg(Parse(SvgCharts.Line(Chart(new ChartSeries("Clicks", [1, 2])))));

        var box = svg.Attribute("viewBox")!.Value.Split(' ');
        Assert.Equal(["0", "0"], box[..2]);
        Assert.Equal($"aspect-ratio: {box[2]} / {box[3]}", svg.Attribute("style")!.Value);
        Assert.Equal("100%", svg.Attribute("width")!.Value);
        Assert.Equal("xMidYMid meet", svg.Attribute("preserveAspectRatio")!.Value);
    }

    [Fact]
    public void Line_Description_NamesTheWindowAndTheHighestDay()
    {
        double?[] values = [5, 8, 42, .. Enumerable.Repeat<double?>(3, 11)];

        var svg = Svg(Parse(SvgCharts.Line(Chart(new ChartSeries("Clicks", values)))));

        Assert.Equal("Clicks per day from 1 Nov 2026 to 14 Nov 2026. Highest: 42 on 3 Nov 2026.", svg.Element("desc")!.Value);
    }

    [Fact]
    public void Line_MoneySeries_TableHasOneRowPerDayWithFormattedValues()
    {
        var chart = new TimeSeriesChart("revenue", "Revenue", "per day", "Revenue", Days(3),
            [new ChartSeries("Orders", [1234.5, null, 20]), new ChartSeries("Refunds", [-12, 0, null])], ValueFormat.Money, "GBP");

        var table = Parse(SvgCharts.Line(chart)).Element("details")!;

        Assert.Equal("chart-table", table.Attribute("class")!.Value);
        Assert.Equal("Show as table", table.Element("summary")!.Value);
        Assert.Equal(["Day", "Orders", "Refunds"], table.Descendants("thead").Descendants("th").Select(th => th.Value));
        var rows = table.Descendants("tbody").Single().Elements("tr").Select(tr => tr.Elements().Select(cell => cell.Value).ToArray()).ToList();
        Assert.Equal(3, rows.Count);
        Assert.Equal(["1 Nov 2026", "GBP 1,234.50", "GBP -12.00"], rows[0]);
        Assert.Equal(["2 Nov 2026", "", "GBP 0.00"], rows[1]);
        Assert.Equal(["3 Nov 2026", "GBP 20.00", ""], rows[2]);
    }

    /// <summary>A yen store's revenue reads in whole yen, on the axis too, which never steps by less than one yen (until 5
    /// Dec 2026 every amount had two decimals, "JPY 3.00", and a small range got ticks of 0.50 yen).</summary>
    [Fact]
    public void Line_MoneySeriesInYen_ReadsInWholeYen()
    {
        var chart = new TimeSeriesChart("revenue", "Revenue", "per day", "Revenue", Days(3),
            [new ChartSeries("Orders", [3, 1, 2])], ValueFormat.Money, "JPY");

        var html = Parse(SvgCharts.Line(chart));
        var rows = html.Element("details")!.Descendants("tbody").Single().Elements("tr").Select(tr => tr.Elements().Last().Value).ToList();
        Assert.Equal(["JPY 3", "JPY 1", "JPY 2"], rows);
        var ticks = WithClass(Svg(html), "g", "chart-yaxis").Single().Elements("text").Select(t => t.Value).ToList();
        Assert.All(ticks, t => Assert.DoesNotContain(".", t));
        Assert.Equal(ticks.Count, ticks.Distinct().Count());
    }

    [Fact]
    public void Line_EmptyCell_IsWrittenWithAClosingTagForHtmlParsers()
    {
        var html = SvgCharts.Line(Chart(new ChartSeries("Clicks", [1, null, 3]))).ToString()!;

        Assert.Contains("<td></td>", html);
        Assert.DoesNotContain("<td />", html);
    }

    [Fact]
    public void Line_NonNegativeData_YTicksStartAtZeroAndCoverTheMaximum()
    {
        var svg = Svg(Parse(SvgCharts.Line(Chart(new ChartSeries("Clicks", [3, 42, 17, 0])))));

        var ticks = WithClass(svg, "g", "chart-yaxis").Single().Elements("text")
            .Select(t => double.Parse(t.Value, NumberStyles.Number, CultureInfo.InvariantCulture)).ToList();
        Assert.Equal(0, ticks[0]);
        Assert.True(ticks[^1] >= 42, $"top tick {ticks[^1]} is below the maximum 42");
        var step = ticks[1] - ticks[0];
        Assert.All(ticks.Zip(ticks.Skip(1)), p => Assert.Equal(step, p.Second - p.First, 9));
        var mantissa = step / Math.Pow(10, Math.Floor(Math.Log10(step)));
        Assert.Contains(Math.Round(mantissa, 6), new[] { 1.0, 2.0, 5.0 });
        Assert.Equal(ticks.Count, WithClass(svg, "line", "chart-grid").Count());
    }

    [Fact]
    public void Line_SmallCounts_NeverRepeatATickLabel()
    {
        var svg = Svg(Parse(SvgCharts.Line(Chart(new ChartSeries("Orders", [0, 1, 2])))));

        var labels = WithClass(svg, "g", "chart-yaxis").Single().Elements("text").Select(t => t.Value).ToList();
        Assert.Equal(labels.Distinct().Count(), labels.Count);
        Assert.Equal(["0", "1", "2"], labels);
    }

    [Fact]
    public void Line_NegativeValues_DrawAZeroLineInsideTheTicks()
    {
        var svg = Svg(Parse(SvgCharts.Line(Chart(new ChartSeries("Net", [-30, 10, 55])))));

        var ticks = WithClass(svg, "g", "chart-yaxis").Single().Elements("text")
            .Select(t => double.Parse(t.Value, NumberStyles.Number, CultureInfo.InvariantCulture)).ToList();
        Assert.True(ticks[0] <= -30 && ticks[^1] >= 55, $"ticks {string.Join(", ", ticks)} do not cover -30..55");
        Assert.Single(WithClass(svg, "line", "chart-zero"));
    }

    [Fact]
    public void Line_HostileSeriesName_IsEncodedAndReadsAsText()
    {
        const string hostile = "<script>alert(1)</script>";
        var chart = new TimeSeriesChart("hostile", "A & B", "per day", "<b>", Days(2),
            [new ChartSeries(hostile, [1, 2]), new ChartSeries("Other", [2, 1])]);

        var html = SvgCharts.Line(chart).ToString()!;
        var figure = XDocument.Parse(html).Root!;

        Assert.DoesNotContain("<script", html);
        Assert.Contains("&lt;script&gt;", html);
        Assert.Empty(figure.Descendants("script"));
        Assert.Empty(figure.Descendants("b"));
        Assert.Contains(figure.Element("ul")!.Elements("li"), li => li.Value.Trim() == hostile);
        Assert.Contains(figure.Descendants("th"), th => th.Value == hostile);
        Assert.StartsWith("A & B", figure.Element("figcaption")!.Value);
        Assert.Contains(hostile, Svg(figure).Element("desc")!.Value);
    }

    [Fact]
    public void Line_ControlCharacterInAName_IsDroppedSoThePageStillRenders()
    {
        var chart = new TimeSeriesChart("ctl", "Bell\u0007 title", "", "Clicks", Days(2), [new ChartSeries("Tab\u0001name 😀", [1, 2])]);

        var figure = Parse(SvgCharts.Line(chart));

        Assert.Equal("Bell title", figure.Element("figcaption")!.Value);
        Assert.Contains(figure.Descendants("th"), th => th.Value == "Tabname 😀");
    }

    [Fact]
    public void Line_NoDays_RendersTheEmptyStateWithoutSvg()
    {
        var figure = Parse(SvgCharts.Line(new TimeSeriesChart("none", "Clicks", "per day", "Clicks", [], [new ChartSeries("Clicks", [])])));

        Assert.Equal("chart chart--empty", figure.Attribute("class")!.Value);
        Assert.Equal("none", figure.Attribute("id")!.Value);
        Assert.StartsWith("Clicks", figure.Element("figcaption")!.Value);
        Assert.Equal("No data in this window yet.", WithClass(figure, "p", "chart-empty").Single().Value);
        Assert.Empty(figure.Descendants("svg"));
        Assert.Empty(figure.Descendants("table"));
    }

    [Fact]
    public void Line_EveryValueNull_RendersTheEmptyState()
    {
        var figure = Parse(SvgCharts.Line(Chart(new ChartSeries("Clicks", [null, null]), new ChartSeries("Views", [null, null]))));

        Assert.True(HasClass(figure, "chart--empty"));
        Assert.Empty(figure.Descendants("svg"));
    }

    [Fact]
    public void Line_NullInTheMiddle_BreaksTheLineIntoTwoSegments()
    {
        var svg = Svg(Parse(SvgCharts.Line(Chart(new ChartSeries("Clicks", [1, 2, null, 4, 5])))));

        var d = WithClass(svg, "path", "chart-series-0").Single().Attribute("d")!.Value;
        Assert.Equal(2, d.Count(ch => ch == 'M'));
        Assert.Equal(2, d.Count(ch => ch == 'L'));
    }

    [Fact]
    public void Line_DayAloneBetweenGaps_IsDrawnAsADot()
    {
        var svg = Svg(Parse(SvgCharts.Line(Chart(new ChartSeries("Clicks", [1, null, 3, null, 5, 6])))));

        var subpaths = WithClass(svg, "path", "chart-series-0").Single().Attribute("d")!.Value.Split('M', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(3, subpaths.Length);
        Assert.All(subpaths[..2], dot => Assert.Contains("a", dot));
        Assert.DoesNotContain("a", subpaths[2]);
    }

    [Fact]
    public void Line_NinetyDays_ShowsAtMostEightDayLabelsThatDoNotOverlap()
    {
        var svg = Svg(Parse(SvgCharts.Line(Chart(new ChartSeries("Clicks", Enumerable.Range(0, 90).Select(i => (double?)i).ToList())))));

        var labels = WithClass(svg, "g", "chart-xaxis").Single().Elements("text").ToList();
        Assert.InRange(labels.Count, 2, 8);
        Assert.Equal("1 Nov", labels[0].Value);
        Assert.All(labels, l => Assert.Matches(@"^\d{1,2} [A-Z][a-z]{2}$", l.Value));
        var xs = labels.Select(l => Num(l, "x")).ToList();
        // A "30 Nov" label is about 40px wide at the chart's font size.
        Assert.All(xs.Zip(xs.Skip(1)), p => Assert.True(p.Second - p.First >= 48, $"labels at {p.First} and {p.Second} overlap"));
    }

    [Fact]
    public void Line_TwoSeries_ShowsALegendWithOneSwatchPerSeries()
    {
        var figure = Parse(SvgCharts.Line(Chart(new ChartSeries("Clicks", [1, 2]), new ChartSeries("Views", [3, 4]))));

        var items = figure.Element("ul")!.Elements("li").ToList();
        Assert.Equal(["Clicks", "Views"], items.Select(li => li.Value.Trim()));
        Assert.Single(WithClass(items[1], "line", "chart-series-1"));
        Assert.Single(WithClass(Svg(figure), "path", "chart-series-1"));
        Assert.Equal(["figcaption", "svg", "ul", "details"], figure.Elements().Select(e => e.Name.LocalName));
    }

    [Fact]
    public void Line_OneSeries_HasNoLegend()
    {
        var figure = Parse(SvgCharts.Line(Chart(new ChartSeries("Clicks", [1, 2]))));

        Assert.Empty(figure.Elements("ul"));
    }

    [Fact]
    public void Line_UnderGermanCulture_WritesInvariantNumbers()
    {
        // Why: the tests run with invariant globalization, where "de-DE" cannot be created; this culture carries
        // its number separators, which is what could leak into attributes and labels.
        var german = (CultureInfo)CultureInfo.InvariantCulture.Clone();
        german.NumberFormat.NumberDecimalSeparator = ",";
        german.NumberFormat.NumberGroupSeparator = ".";
        var previous = CultureInfo.CurrentCulture;
        try
        {
            CultureInfo.CurrentCulture = german;
            Assert.Equal("1,5", 1.5.ToString());
            var chart = new TimeSeriesChart("ratio", "Ratio", "", "Ratio", Days(7),
                [new ChartSeries("Ratio", [1234.5678, 0.3333, 2.71828, null, 1.1, 7.25, 3.3])], ValueFormat.Decimal);

            var figure = Parse(SvgCharts.Line(chart));

            var attributes = Svg(figure).DescendantsAndSelf().Attributes().ToList();
            Assert.All(attributes, a => Assert.DoesNotContain(",", a.Value));
            Assert.Contains(attributes, a => a.Name == "d" && a.Value.Contains('.'));
            Assert.Contains(figure.Descendants("td"), td => td.Value == "1,234.568");
            Assert.Contains(WithClass(figure, "g", "chart-yaxis").Single().Elements("text"), t => t.Value == "1,000");
        }
        finally
        {
            CultureInfo.CurrentCulture = previous;
        }
    }

    [Fact]
    public void TimeSeriesChart_SeriesShorterThanDays_ThrowsNamingTheSeries()
    {
        var ex = Assert.Throws<ArgumentException>(() =>
            new TimeSeriesChart("c", "T", "", "Y", Days(3), [new ChartSeries("Clicks", [1, 2])]));

        Assert.Equal("Series", ex.ParamName);
        Assert.Contains("'Clicks'", ex.Message);
    }

    [Fact]
    public void TimeSeriesChart_FiveSeries_ThrowsNamingSeries()
    {
        var five = Enumerable.Range(0, 5).Select(i => new ChartSeries($"S{i}", [1])).ToList();

        var ex = Assert.Throws<ArgumentException>(() => new TimeSeriesChart("c", "T", "", "Y", Days(1), five));

        Assert.Equal("Series", ex.ParamName);
    }

    [Theory]
    [InlineData("has space")]
    [InlineData("1st")]
    [InlineData("")]
    public void TimeSeriesChart_IdThatIsNotAnHtmlId_ThrowsNamingId(string id)
    {
        var ex = Assert.Throws<ArgumentException>(() => new TimeSeriesChart(id, "T", "", "Y", Days(1), [new ChartSeries("S", [1])]));

        Assert.Equal("Id", ex.ParamName);
    }

    [Fact]
    public void Bars_NegativeAndPositiveValues_SitEitherSideOfTheZeroLine()
    {
        var chart = new BarChart("lift", "Lift", "vs control", "Lift", [new Bar("Loss", -0.2), new Bar("Gain", 0.3)], ValueFormat.Percent);

        var svg = Svg(Parse(SvgCharts.Bars(chart)));

        var zero = Num(WithClass(svg, "line", "chart-zero").Single(), "x1");
        var rects = WithClass(svg, "rect", "chart-bar").ToList();
        Assert.Equal(2, rects.Count);
        Assert.True(HasClass(rects[0], "chart-bar--negative"));
        Assert.Equal(zero, Num(rects[0], "x") + Num(rects[0], "width"), 1);
        Assert.True(Num(rects[0], "x") < zero);
        Assert.False(HasClass(rects[1], "chart-bar--negative"));
        Assert.Equal(zero, Num(rects[1], "x"), 1);
        Assert.True(Num(rects[1], "width") > Num(rects[0], "width"), "a 30% bar should be longer than a 20% one");
    }

    [Fact]
    public void Bars_Interval_WhiskerSpansLowToHighAroundTheBarEnd()
    {
        var chart = new BarChart("arms", "Conversion lift", "", "Lift", [new Bar("Model arm", 0.1, -0.05, 0.2)], ValueFormat.Percent);

        var svg = Svg(Parse(SvgCharts.Bars(chart)));

        var whisker = WithClass(svg, "g", "chart-whisker").Single().Elements("line").ToList();
        var (low, high) = (Num(whisker[0], "x1"), Num(whisker[0], "x2"));
        var zero = Num(WithClass(svg, "line", "chart-zero").Single(), "x1");
        var bar = WithClass(svg, "rect", "chart-bar").Single();
        var barEnd = Num(bar, "x") + Num(bar, "width");
        Assert.True(low < zero && zero < barEnd && barEnd < high, $"expected low {low} < zero {zero} < bar end {barEnd} < high {high}");
        Assert.Equal([low, high], whisker.Skip(1).Select(cap => Num(cap, "x1")));
    }

    [Fact]
    public void Bars_WithInterval_DescriptionAndTableStateValueAndInterval()
    {
        var chart = new BarChart("arms", "Conversion", "", "Conversion rate",
            [new Bar("Model arm", 0.123, 0.041, 0.205), new Bar("Control", 0.08)], ValueFormat.Percent);

        var figure = Parse(SvgCharts.Bars(chart));

        Assert.Equal("Model arm: 12.3% (95% interval 4.1% to 20.5%). Control: 8%.", Svg(figure).Element("desc")!.Value);
        Assert.Equal(["Category", "Conversion rate", "95% interval low", "95% interval high"], figure.Descendants("thead").Descendants("th").Select(th => th.Value));
        var rows = figure.Descendants("tbody").Single().Elements("tr").Select(tr => tr.Elements().Select(c => c.Value)).ToList();
        Assert.Equal(["Model arm", "12.3%", "4.1%", "20.5%"], rows[0]);
        Assert.Equal(["Control", "8%", "", ""], rows[1]);
    }

    [Fact]
    public void Bars_NoBars_RendersTheEmptyStateWithoutSvg()
    {
        var figure = Parse(SvgCharts.Bars(new BarChart("arms", "Conversion", "", "Rate", [])));

        Assert.Equal("chart chart--empty", figure.Attribute("class")!.Value);
        Assert.Equal("No data in this window yet.", WithClass(figure, "p", "chart-empty").Single().Value);
        Assert.Empty(figure.Descendants("svg"));
    }

    [Fact]
    public void BarChart_IntervalWithOnlyOneEnd_ThrowsNamingTheBar()
    {
        var ex = Assert.Throws<ArgumentException>(() => new BarChart("arms", "T", "", "V", [new Bar("Model arm", 0.1, Low: 0.05)]));

        Assert.Equal("Bars", ex.ParamName);
        Assert.Contains("'Model arm'", ex.Message);
    }

    [Theory]
    [InlineData(ValueFormat.Count, 1234567.4, null, "1,234,567")]
    [InlineData(ValueFormat.Count, -0.2, null, "0")]
    [InlineData(ValueFormat.Money, 1234.5, "GBP", "GBP 1,234.50")]
    [InlineData(ValueFormat.Money, -3, "EUR", "EUR -3.00")]
    [InlineData(ValueFormat.Money, 12000.4, "JPY", "JPY 12,000")]
    [InlineData(ValueFormat.Money, 12.5, "KWD", "KWD 12.500")]
    [InlineData(ValueFormat.Percent, 0.123, null, "12.3%")]
    [InlineData(ValueFormat.Percent, 0.5, null, "50%")]
    [InlineData(ValueFormat.Decimal, 1.23456, null, "1.235")]
    [InlineData(ValueFormat.Decimal, 2, null, "2")]
    public void ValueFormat_Format_ReadsAsAMerchantExpects(ValueFormat format, double value, string? currency, string expected)
    {
        Assert.Equal(expected, format.Format(value, currency));
    }
}
