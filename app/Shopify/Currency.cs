using System.Collections.Frozen;
using System.Globalization;

namespace PluginApp.Shopify;

/// <summary>
/// How an amount in a store's currency reads: its ISO 4217 code, then the amount with the currency's own minor units
/// ("JPY 12,000", "GBP 1,234.50", "KWD 12.500"), in the invariant culture so pages, reasons and tests agree. Until 5 Dec
/// 2026 every amount had two decimals, and a yen store's orders read "JPY 12,000.00".
/// </summary>
public static class Currency
{
    // ISO 4217's currencies whose minor unit is not the hundredth (funds codes and those Shopify does not sell in left out).
    private static readonly FrozenDictionary<string, int> Digits = new Dictionary<string, int>(StringComparer.OrdinalIgnoreCase)
    {
        ["BIF"] = 0, ["CLP"] = 0, ["DJF"] = 0, ["GNF"] = 0, ["ISK"] = 0, ["JPY"] = 0, ["KMF"] = 0, ["KRW"] = 0, ["PYG"] = 0,
        ["RWF"] = 0, ["UGX"] = 0, ["VND"] = 0, ["VUV"] = 0, ["XAF"] = 0, ["XOF"] = 0, ["XPF"] = 0,
        ["BHD"] = 3, ["IQD"] = 3, ["JOD"] = 3, ["KWD"] = 3, ["LYD"] = 3, ["OMR"] = 3, ["TND"] = 3,
    }.ToFrozenDictionary(StringComparer.OrdinalIgnoreCase);

    private static readonly string[] Patterns = ["#,0", "#,0.0", "#,0.00", "#,0.000"];

    /// <summary>The currency's decimal places (2 for a code not listed, or none).</summary>
    public static int MinorDigits(string? code) => code is not null && Digits.TryGetValue(code, out var d) ? d : 2;

    /// <summary>"JPY 12,000"; without a code, the amount alone with two decimals.</summary>
    public static string Format(decimal amount, string? code)
    {
        var digits = MinorDigits(code);
        var text = Math.Round(amount, digits, MidpointRounding.AwayFromZero).ToString(Patterns[digits], CultureInfo.InvariantCulture);
        return string.IsNullOrWhiteSpace(code) ? text : $"{code} {text}";
    }

    public static string Format(double amount, string? code) =>
        double.IsFinite(amount) ? Format((decimal)amount, code) : "–";
}
