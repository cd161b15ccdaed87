using System.Globalization;
using PluginApp.Shopify;

namespace PluginApp.Admin.Charts;

/// <summary>How a chart shows its numbers: in tick labels, the description and the table alike.</summary>
public enum ValueFormat
{
    /// <summary>Whole numbers with thousands separators: "1,234".</summary>
    Count,
    /// <summary>The currency's own decimals after the chart's currency code: "GBP 1,234.50", "JPY 12,000".</summary>
    Money,
    /// <summary>A fraction as a percentage with one decimal: 0.123 is "12.3%".</summary>
    Percent,
    /// <summary>Up to three decimals, trailing zeros dropped: "1.235", "0.5", "2".</summary>
    Decimal,
}

public static class ValueFormatting
{
    /// <summary>The value as a merchant reads it, in the invariant culture whatever the server runs under.</summary>
    /// <param name="currency">Prefixed to <see cref="ValueFormat.Money"/>; other formats ignore it.</param>
    public static string Format(this ValueFormat format, double value, string? currency = null) => format switch
    {
        ValueFormat.Count => Rounded(value, 0).ToString("#,0", CultureInfo.InvariantCulture),
        ValueFormat.Money => Currency.Format(Rounded(value, Currency.MinorDigits(currency)), currency),
        ValueFormat.Percent => Rounded(value * 100, 1).ToString("#,0.#", CultureInfo.InvariantCulture) + "%",
        ValueFormat.Decimal => Rounded(value, 3).ToString("#,0.###", CultureInfo.InvariantCulture),
        _ => throw new ArgumentOutOfRangeException(nameof(format), format, "unknown value format"),
    };

    /// <summary>The smallest difference the format can show; axis steps never go below it, so no two ticks read the same.</summary>
    internal static double Resolution(this ValueFormat format, string? currency = null) => format switch
    {
        ValueFormat.Count => 1,
        ValueFormat.Money => Math.Pow(10, -Currency.MinorDigits(currency)),
        _ => 0.001,
    };

    // Why: round first and fold -0 into 0, or -0.2 as a count would print as "-0".
    private static double Rounded(double value, int decimals)
    {
        var r = Math.Round(value, decimals, MidpointRounding.AwayFromZero);
        return r == 0 ? 0 : r;
    }
}
