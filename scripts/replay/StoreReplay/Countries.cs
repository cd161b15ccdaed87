namespace StoreReplay;

/// <summary>Online Retail's Country column to ISO 3166-1 alpha-2; null for regions that are not one country.</summary>
public static class Countries
{
    private static readonly Dictionary<string, string> Iso = new(StringComparer.Ordinal)
    {
        ["Australia"] = "AU", ["Austria"] = "AT", ["Bahrain"] = "BH", ["Belgium"] = "BE", ["Brazil"] = "BR",
        ["Canada"] = "CA", ["Cyprus"] = "CY", ["Czech Republic"] = "CZ", ["Denmark"] = "DK", ["EIRE"] = "IE",
        ["Finland"] = "FI", ["France"] = "FR", ["Germany"] = "DE", ["Greece"] = "GR", ["Hong Kong"] = "HK",
        ["Iceland"] = "IS", ["Israel"] = "IL", ["Italy"] = "IT", ["Japan"] = "JP", ["Lebanon"] = "LB",
        ["Lithuania"] = "LT", ["Malta"] = "MT", ["Netherlands"] = "NL", ["Norway"] = "NO", ["Poland"] = "PL",
        ["Portugal"] = "PT", ["RSA"] = "ZA", ["Saudi Arabia"] = "SA", ["Singapore"] = "SG", ["Spain"] = "ES",
        ["Sweden"] = "SE", ["Switzerland"] = "CH", ["USA"] = "US", ["United Arab Emirates"] = "AE",
        ["United Kingdom"] = "GB",
        // "Channel Islands" (JE or GG), "European Community" and "Unspecified" name no single country.
    };

    private static readonly Dictionary<string, string> Names = Iso.ToDictionary(kv => kv.Value, kv => kv.Key == "EIRE" ? "Ireland"
        : kv.Key == "RSA" ? "South Africa" : kv.Key == "USA" ? "United States" : kv.Key, StringComparer.Ordinal);

    public static string? IsoCode(string country) => Iso.GetValueOrDefault(country.Trim());

    public static string? Name(string? isoCode) => isoCode is null ? null : Names.GetValueOrDefault(isoCode);
}
