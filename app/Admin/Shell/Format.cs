using System.Globalization;
using PluginApp.Ml.Metrics;
using PluginApp.Shopify;

namespace PluginApp.Admin.Shell;

/// <summary>How numbers, money, dates and lifts read on every admin page (invariant culture, so pages and tests agree).</summary>
public static class Format
{
    private static readonly CultureInfo C = CultureInfo.InvariantCulture;

    public static string Count(long n) => n.ToString("N0", C);

    /// <summary>"JPY 12,000", "GBP 1,234.50": the currency's own decimals (<see cref="Currency"/>).</summary>
    public static string Money(decimal amount, string currency) => Currency.Format(amount, currency);

    public static string Money(double amount, string currency) => Currency.Format(amount, currency);

    public static string Percent(double share, int decimals = 1) => double.IsNaN(share) ? "–" : (share * 100).ToString($"F{decimals}", C) + "%";

    public static string SignedPercent(double share) => (share >= 0 ? "+" : "−") + Percent(Math.Abs(share));

    public static string Lift(LiftEstimate lift) => $"{SignedPercent(lift.Lift)} (95% interval {SignedPercent(lift.Low)} to {SignedPercent(lift.High)})";

    public static string Day(DateOnly day) => day.ToString("d MMM yyyy", C);

    public static string Time(DateTimeOffset at) => at.UtcDateTime.ToString("d MMM yyyy HH:mm", C) + " UTC";

    public static string Age(DateTimeOffset at, DateTimeOffset now)
    {
        var age = now - at;
        return age.TotalMinutes < 1 ? "just now"
            : age.TotalHours < 1 ? $"{(int)age.TotalMinutes} min ago"
            : age.TotalDays < 1 ? $"{(int)age.TotalHours} h ago"
            : $"{(int)age.TotalDays} days ago";
    }

    public static string Duration(TimeSpan t) => t.TotalSeconds < 60 ? $"{t.TotalSeconds.ToString("F1", C)} s" : $"{(int)t.TotalMinutes} min {t.Seconds} s";

    public static string Metric(double value) => value.ToString("F4", C);
}
