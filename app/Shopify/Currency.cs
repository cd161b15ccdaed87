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

    // Roughly how many of a currency's units a US dollar buys (late 2026), for the currencies far from it: an order of
    // magnitude for a default amount a merchant then sets, never to convert an amount. Those within a factor of two of the
    // dollar (EUR, GBP, CAD, AUD, CHF, SGD, NZD...) are left out and read as one.
    private static readonly FrozenDictionary<string, double> RoughPerDollar = new Dictionary<string, double>(StringComparer.OrdinalIgnoreCase)
    {
        ["AED"] = 3.7, ["ARS"] = 1000, ["BDT"] = 120, ["BHD"] = 0.38, ["BRL"] = 5.5, ["CLP"] = 950, ["CNY"] = 7.2, ["COP"] = 4000,
        ["CZK"] = 23, ["DKK"] = 6.9, ["EGP"] = 50, ["HKD"] = 7.8, ["HUF"] = 370, ["IDR"] = 16000, ["ILS"] = 3.7, ["INR"] = 85,
        ["ISK"] = 140, ["JOD"] = 0.71, ["JPY"] = 150, ["KES"] = 130, ["KRW"] = 1400, ["KWD"] = 0.31, ["MAD"] = 10, ["MXN"] = 18,
        ["MYR"] = 4.5, ["NGN"] = 1500, ["NOK"] = 10.8, ["OMR"] = 0.38, ["PEN"] = 3.7, ["PHP"] = 57, ["PKR"] = 280, ["PLN"] = 4,
        ["QAR"] = 3.6, ["RON"] = 4.6, ["RSD"] = 108, ["SAR"] = 3.75, ["SEK"] = 10.5, ["THB"] = 35, ["TRY"] = 35, ["TWD"] = 32,
        ["UAH"] = 41, ["VND"] = 25000, ["ZAR"] = 18,
    }.ToFrozenDictionary(StringComparer.OrdinalIgnoreCase);

    /// <summary>
    /// A default amount set in dollars, in the currency's units at a round figure (one or two significant digits): 1,000
    /// reads JPY 150,000, KRW 1,400,000, SEK 10,000, and stays 1,000 for a currency near the dollar or unknown. Why: a
    /// default of 1,000 in every currency made one ordinary earlier order a yen store's "valued customer".
    /// </summary>
    public static decimal RoundDefault(decimal dollars, string? code)
    {
        if (code is null || !RoughPerDollar.TryGetValue(code, out var rate)) return dollars;
        var amount = (double)dollars * rate;
        var step = Math.Pow(10, Math.Floor(Math.Log10(amount)) - 1);
        return (decimal)(Math.Round(amount / step) * step);
    }

    public static string Format(double amount, string? code) =>
        double.IsFinite(amount) ? Format((decimal)amount, code) : "–";
}
