using System.Globalization;
using System.Text;

namespace StoreReplay;

/// <summary>How Shopify writes values: money as a decimal string with two places, times ISO-8601 with offset.</summary>
public static class Formats
{
    public static string Money(decimal d) => d.ToString("0.00", CultureInfo.InvariantCulture);

    public static string Time(DateTimeOffset t) => t.ToString("yyyy-MM-dd'T'HH:mm:sszzz", CultureInfo.InvariantCulture);

    /// <summary>The data sets' "YYYY-MM-DD HH:MM:SS", treated as UTC.</summary>
    public static DateTimeOffset ParseDataTime(string s) =>
        new(DateTime.SpecifyKind(DateTime.ParseExact(s, "yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture), DateTimeKind.Utc));

    public static decimal ParseDecimal(string s) => decimal.Parse(s, NumberStyles.Float, CultureInfo.InvariantCulture);

    public static string Slug(string s)
    {
        var sb = new StringBuilder(s.Length);
        foreach (var ch in s.ToLowerInvariant())
        {
            if (char.IsAsciiLetterOrDigit(ch)) sb.Append(ch);
            else if (sb.Length > 0 && sb[^1] != '-') sb.Append('-');
        }
        return sb.ToString().Trim('-');
    }

    public static string Gid(string type, long id) => string.Create(CultureInfo.InvariantCulture, $"gid://shopify/{type}/{id}");
}
