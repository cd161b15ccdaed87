using System.Globalization;
using System.Text.Json;

namespace PluginApp.StoreData;

/// <summary>A payload that parsed as JSON but does not have the shape its topic promises.</summary>
public sealed class MalformedPayloadException(string message) : Exception(message);

/// <summary>Typed reads of Shopify's REST-shaped JSON: ids are int64, money is a decimal string, times are ISO-8601.</summary>
internal static class PayloadReader
{
    public static long RequiredId(this JsonElement e, string name)
    {
        if (e.ValueKind != JsonValueKind.Object)
            throw new MalformedPayloadException($"expected an object holding '{name}'");
        return e.OptionalId(name) ?? throw new MalformedPayloadException($"'{name}' is missing or not an integer id");
    }

    public static long? OptionalId(this JsonElement e, string name)
    {
        if (!e.TryGetProperty(name, out var v)) return null;
        return v.ValueKind switch
        {
            JsonValueKind.Number when v.TryGetInt64(out var n) => n,
            JsonValueKind.String when long.TryParse(v.GetString(), NumberStyles.None, CultureInfo.InvariantCulture, out var n) => n,
            JsonValueKind.Null => null,
            _ => throw new MalformedPayloadException($"'{name}' is not an integer id"),
        };
    }

    public static string RequiredString(this JsonElement e, string name) =>
        e.OptionalString(name) is { Length: > 0 } s ? s : throw new MalformedPayloadException($"'{name}' is missing or empty");

    public static string? OptionalString(this JsonElement e, string name)
    {
        if (!e.TryGetProperty(name, out var v)) return null;
        return v.ValueKind switch
        {
            // Why clean: PostgreSQL text cannot hold U+0000, and the raw body is stored without it too (JsonSanitizer).
            JsonValueKind.String => JsonSanitizer.Clean(v.GetString()),
            JsonValueKind.Null => null,
            JsonValueKind.Number => v.GetRawText(),
            JsonValueKind.True or JsonValueKind.False => v.GetRawText(),
            _ => throw new MalformedPayloadException($"'{name}' is not a string"),
        };
    }

    /// <summary>
    /// An email address, null when absent or blank. Why: Shopify sends <c>"email": ""</c> on orders without one (draft and
    /// point-of-sale orders of no customer), and until 5 Dec 2026 the empty string was stored as an address, so order risk
    /// matched every such order of the store to every other as "the same email".
    /// </summary>
    public static string? OptionalEmail(this JsonElement e, string name) =>
        e.OptionalString(name) is { } s && !string.IsNullOrWhiteSpace(s) ? s.Trim() : null;

    /// <summary>OptionalString on an element that may be default (absent from a FirstOrDefault).</summary>
    public static string? OptionalStringOrNull(this JsonElement e, string name) =>
        e.ValueKind == JsonValueKind.Object ? e.OptionalString(name) : null;

    public static decimal? OptionalMoney(this JsonElement e, string name)
    {
        if (!e.TryGetProperty(name, out var v)) return null;
        return v.ValueKind switch
        {
            JsonValueKind.String when decimal.TryParse(v.GetString(), NumberStyles.Number, CultureInfo.InvariantCulture, out var d) => d,
            JsonValueKind.Number when v.TryGetDecimal(out var d) => d,
            JsonValueKind.Null => null,
            _ => throw new MalformedPayloadException($"'{name}' is not a decimal amount"),
        };
    }

    public static int RequiredInt(this JsonElement e, string name)
    {
        if (e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out var n)) return n;
        throw new MalformedPayloadException($"'{name}' is missing or not an integer");
    }

    public static int? OptionalInt(this JsonElement e, string name)
    {
        if (!e.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null) return null;
        if (v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out var n)) return n;
        throw new MalformedPayloadException($"'{name}' is not an integer");
    }

    public static bool? OptionalBool(this JsonElement e, string name)
    {
        if (!e.TryGetProperty(name, out var v)) return null;
        return v.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            JsonValueKind.Null => null,
            _ => throw new MalformedPayloadException($"'{name}' is not a boolean"),
        };
    }

    public static DateTimeOffset? OptionalTime(this JsonElement e, string name)
    {
        if (!e.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null) return null;
        if (v.ValueKind == JsonValueKind.String &&
            DateTimeOffset.TryParse(v.GetString(), CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var t))
            return t.ToUniversalTime();
        throw new MalformedPayloadException($"'{name}' is not an ISO-8601 time");
    }

    public static JsonElement? OptionalObject(this JsonElement e, string name) =>
        e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Object ? v : null;

    public static IEnumerable<JsonElement> OptionalArray(this JsonElement e, string name)
    {
        if (!e.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null) return [];
        if (v.ValueKind != JsonValueKind.Array) throw new MalformedPayloadException($"'{name}' is not an array");
        return v.EnumerateArray();
    }

    /// <summary>Shopify sends tags as one comma-separated string.</summary>
    public static string Tags(this JsonElement e) => e.OptionalString("tags") ?? "";
}
