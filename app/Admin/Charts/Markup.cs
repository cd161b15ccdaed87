using System.Globalization;
using System.Text;
using System.Xml;
using System.Xml.Linq;

namespace PluginApp.Admin.Charts;

/// <summary>
/// Element builders shared by the charts. Markup is built as <see cref="XElement"/>s so every text and attribute is
/// encoded and every element closed; numbers go out in the invariant culture with at most two decimals.
/// </summary>
internal static class Markup
{
    /// <summary>Fallback colours for an unstyled page (the stylesheet's classes win): Okabe and Ito's colour-blind-safe palette.</summary>
    public static readonly string[] SeriesColours = ["#0072B2", "#E69F00", "#009E73", "#CC79A7"];
    public const string Ink = "#303030", Muted = "#616161", Axis = "#8a8a8a", Grid = "#e3e3e3", Negative = "#D55E00";

    /// <summary>The svg's font size; text widths below are estimated from it.</summary>
    public const int FontSize = 12;

    /// <summary>A generous average advance of one character at <see cref="FontSize"/>, for reserving room for labels.</summary>
    public static double TextWidth(int chars) => chars * 7.0;

    public static string N(double v)
    {
        var r = Math.Round(v, 2);
        return (r == 0 ? 0 : r).ToString("0.##", CultureInfo.InvariantCulture);
    }

    public static XAttribute A(string name, string value) => new(name, value);
    public static XAttribute A(string name, double value) => new(name, N(value));
    public static XAttribute Class(string value) => new("class", value);

    /// <summary>
    /// Merchant text made safe to put in XML: the encoder escapes markup, but characters XML cannot carry at all
    /// (control characters a product title may hold) would make the page fail to render, so they are dropped.
    /// </summary>
    public static string Text(string? s)
    {
        if (string.IsNullOrEmpty(s)) return "";
        StringBuilder? clean = null;
        for (var i = 0; i < s.Length; i++)
        {
            var pair = i + 1 < s.Length && XmlConvert.IsXmlSurrogatePair(s[i + 1], s[i]);
            if (!pair && !XmlConvert.IsXmlChar(s[i])) { clean ??= new StringBuilder(s, 0, i, s.Length); continue; }
            clean?.Append(s, i, pair ? 2 : 1);
            if (pair) i++;
        }
        return clean?.ToString() ?? s;
    }

    public static XElement Line(string cls, double x1, double y1, double x2, double y2, string stroke) =>
        new("line", Class(cls), A("x1", x1), A("y1", y1), A("x2", x2), A("y2", y2), A("stroke", stroke));

    /// <summary>A label whose middle sits at <paramref name="y"/> (dy 0.32em centres digits on the baseline's cap height).</summary>
    public static XElement Label(string cls, double x, double y, string anchor, string text) =>
        new("text", Class(cls), A("x", x), A("y", y), A("dy", "0.32em"), A("text-anchor", anchor), A("fill", Muted), Text(text));

    public static string LongDay(DateOnly d) => d.ToString("d MMM yyyy", CultureInfo.InvariantCulture);
    public static string ShortDay(DateOnly d) => d.ToString("d MMM", CultureInfo.InvariantCulture);
}
