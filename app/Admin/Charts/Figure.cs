using System.Xml.Linq;
using Microsoft.AspNetCore.Html;
using static PluginApp.Admin.Charts.Markup;

namespace PluginApp.Admin.Charts;

/// <summary>The figure every chart sits in: caption, svg, optional legend, and the same numbers as a table.</summary>
internal static class Figure
{
    public static HtmlString Of(string id, string title, string unit, XElement svg, XElement? legend, XElement table) =>
        Html(new XElement("figure", Class("chart"), A("id", id), Caption(title, unit), svg, legend, table));

    public static HtmlString Empty(string id, string title, string unit) =>
        Html(new XElement("figure", Class("chart chart--empty"), A("id", id), Caption(title, unit),
            new XElement("p", Class("chart-empty"), "No data in this window yet.")));

    /// <summary>
    /// The svg scales to its container's width; the viewBox and the CSS aspect-ratio give it a height before it
    /// paints, so the page does not shift. Its accessible name is the title, its description the summary in words.
    /// </summary>
    public static XElement Svg(string id, double width, double height, string title, string desc, params object?[] content) =>
        new("svg", A("viewBox", $"0 0 {N(width)} {N(height)}"), A("width", "100%"), A("role", "img"),
            A("aria-labelledby", $"{id}-title {id}-desc"), A("preserveAspectRatio", "xMidYMid meet"),
            A("style", $"aspect-ratio: {N(width)} / {N(height)}"), A("font-size", FontSize),
            new XElement("title", A("id", $"{id}-title"), Text(title)),
            new XElement("desc", A("id", $"{id}-desc"), Text(desc)),
            content);

    /// <summary>Every value behind the chart, for screen readers and for merchants who want the exact numbers.</summary>
    /// <param name="rows">Each row's heading (a day, a category) and its cells; an empty cell is a missing value.</param>
    public static XElement Table(IEnumerable<string> headers, IEnumerable<(string Heading, IEnumerable<string> Cells)> rows) =>
        new("details", Class("chart-table"), new XElement("summary", "Show as table"),
            new XElement("table",
                new XElement("thead", new XElement("tr", headers.Select(h => new XElement("th", A("scope", "col"), Text(h))))),
                new XElement("tbody", rows.Select(r => new XElement("tr",
                    new XElement("th", A("scope", "row"), Text(r.Heading)),
                    // Why: "" rather than no content, so an empty cell is written <td></td>; HTML ignores the "/" in <td />.
                    r.Cells.Select(c => new XElement("td", Text(c))))))));

    private static XElement Caption(string title, string unit) =>
        new("figcaption", Text(title),
            string.IsNullOrWhiteSpace(unit) ? null : new object[] { " ", new XElement("span", Class("chart-unit"), Text(unit)) });

    private static HtmlString Html(XElement figure) => new(figure.ToString(SaveOptions.DisableFormatting));
}
