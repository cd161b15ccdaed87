namespace PluginApp.StoreData;

/// <summary>
/// The shop's calendar: its time zone (shops.iana_timezone, read at install; UTC when unknown or not on this machine) and
/// where its days begin, which is what a merchant means by "a day" on every page, chart and schedule.
/// </summary>
public static class ShopDays
{
    public static TimeZoneInfo Zone(string? ianaTimeZone) =>
        TimeZoneInfo.TryFindSystemTimeZoneById(ianaTimeZone ?? "UTC", out var zone) ? zone : TimeZoneInfo.Utc;

    /// <summary>The shop's date at the instant <paramref name="at"/>.</summary>
    public static DateOnly DayOf(DateTimeOffset at, TimeZoneInfo zone) => DateOnly.FromDateTime(TimeZoneInfo.ConvertTime(at, zone).DateTime);

    /// <summary>The instant the shop's day begins (its local midnight).</summary>
    public static DateTimeOffset StartOf(DateOnly day, TimeZoneInfo zone)
    {
        var local = day.ToDateTime(TimeOnly.MinValue);
        return new DateTimeOffset(local, zone.GetUtcOffset(local));
    }
}
