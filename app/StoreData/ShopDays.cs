using Npgsql;
using PluginApp.Data;

namespace PluginApp.StoreData;

/// <summary>
/// The shop's calendar: its time zone (shops.iana_timezone, read at install; UTC when unknown or not on this machine) and
/// where its days begin: what a merchant means by "a day" (the Overview's window, the Experiments page's days, the nightly
/// training, the cart offers' daily budget, churn's daily counts).
/// </summary>
public static class ShopDays
{
    public static TimeZoneInfo Zone(string? ianaTimeZone) =>
        TimeZoneInfo.TryFindSystemTimeZoneById(ianaTimeZone ?? "UTC", out var zone) ? zone : TimeZoneInfo.Utc;

    /// <summary>The shop's time zone, as stored.</summary>
    public static async Task<TimeZoneInfo> ZoneAsync(NpgsqlConnection conn, long shopId, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand("SELECT iana_timezone FROM shops WHERE id = $1", conn);
        cmd.Parameters.Add(Sql.Param(shopId));
        return Zone(await cmd.ExecuteScalarAsync(ct) as string);
    }

    /// <summary>The instant the shop's day containing <paramref name="at"/> began.</summary>
    public static DateTimeOffset StartOfDay(DateTimeOffset at, TimeZoneInfo zone) => StartOf(DayOf(at, zone), zone);

    /// <summary>The shop's date at the instant <paramref name="at"/>.</summary>
    public static DateOnly DayOf(DateTimeOffset at, TimeZoneInfo zone) => DateOnly.FromDateTime(WallTime(at, zone));

    /// <summary>The shop's wall-clock time at the instant <paramref name="at"/> (Kind Unspecified).</summary>
    public static DateTime WallTime(DateTimeOffset at, TimeZoneInfo zone) => TimeZoneInfo.ConvertTime(at, zone).DateTime;

    /// <summary>The instant the shop's day begins (its local midnight).</summary>
    public static DateTimeOffset StartOf(DateOnly day, TimeZoneInfo zone)
    {
        var local = day.ToDateTime(TimeOnly.MinValue);
        // Where clocks go back at midnight (midnight comes twice), the day begins at the first one: the larger offset.
        return new DateTimeOffset(local, zone.IsAmbiguousTime(local) ? zone.GetAmbiguousTimeOffsets(local).Max() : zone.GetUtcOffset(local));
    }
}
