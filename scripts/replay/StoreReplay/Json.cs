using System.Buffers;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace StoreReplay;

/// <summary>Shared JSON writing: fixed property order and no clock, so the same store gives the same bytes.</summary>
internal static class Json
{
    // Why relaxed: Shopify does not \u-escape quotes or '&' in titles; the bodies are never embedded in HTML.
    public static readonly JsonWriterOptions Options = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static byte[] Build(Action<Utf8JsonWriter> write)
    {
        var buffer = new ArrayBufferWriter<byte>(4096);
        using (var w = new Utf8JsonWriter(buffer, Options)) write(w);
        return buffer.WrittenSpan.ToArray();
    }

    public static void Time(this Utf8JsonWriter w, string name, DateTimeOffset? t)
    {
        if (t is { } v) w.WriteString(name, Formats.Time(v));
        else w.WriteNull(name);
    }

    public static void Money(this Utf8JsonWriter w, string name, decimal amount) => w.WriteString(name, Formats.Money(amount));

    public static void StringOrNull(this Utf8JsonWriter w, string name, string? value)
    {
        if (value is null) w.WriteNull(name);
        else w.WriteString(name, value);
    }

    public static void EmptyArray(this Utf8JsonWriter w, string name)
    {
        w.WriteStartArray(name);
        w.WriteEndArray();
    }

    /// <summary>GraphQL MoneyBag: {"shopMoney":{"amount","currencyCode"}}.</summary>
    public static void MoneyBag(this Utf8JsonWriter w, string name, decimal amount, string currency)
    {
        w.WriteStartObject(name);
        w.WriteStartObject("shopMoney");
        w.Money("amount", amount);
        w.WriteString("currencyCode", currency);
        w.WriteEndObject();
        w.WriteEndObject();
    }
}
