using System.Buffers;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace PluginApp.StoreData;

/// <summary>
/// PostgreSQL cannot hold U+0000 in text or jsonb, and a shopper can type it into an order note. Every writer of store
/// data (webhooks and the backfill) strips it from every string and property name, in the raw body and the rows alike.
/// </summary>
internal static class JsonSanitizer
{
    private static readonly JsonWriterOptions Writer = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static bool HasNul(ReadOnlySpan<byte> utf8Json) => utf8Json.IndexOf("\\u0000"u8) >= 0;

    /// <summary>The same JSON with NUL removed; the input itself when it holds none (the usual case, no copy).</summary>
    public static byte[] StripNul(byte[] utf8Json)
    {
        if (!HasNul(utf8Json)) return utf8Json;
        using var doc = JsonDocument.Parse(utf8Json);
        var buffer = new ArrayBufferWriter<byte>(utf8Json.Length);
        using (var w = new Utf8JsonWriter(buffer, Writer)) Write(doc.RootElement, w);
        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>Text form for a single line (the backfill's JSONL).</summary>
    public static string StripNul(string json) =>
        json.Contains("\\u0000", StringComparison.Ordinal) ? System.Text.Encoding.UTF8.GetString(StripNul(System.Text.Encoding.UTF8.GetBytes(json))) : json;

    /// <summary>A string value as the rows store it.</summary>
    public static string? Clean(string? s) => s is null || !s.Contains('\0') ? s : s.Replace("\0", "", StringComparison.Ordinal);

    /// <summary>A JSON string's raw text without its \u0000 escapes (an escaped backslash before "u0000" is not one).</summary>
    private static string WithoutNulEscapes(string raw)
    {
        var s = new System.Text.StringBuilder(raw.Length);
        for (var i = 0; i < raw.Length; i++)
        {
            if (raw[i] != '\\' || i + 1 == raw.Length) { s.Append(raw[i]); continue; }
            // An escape is a backslash and what follows it: \\ is one, so a "u0000" after it is text.
            var nul = string.CompareOrdinal(raw, i, "\\u0000", 0, 6) == 0;
            if (!nul) s.Append(raw, i, 2);
            i += nul ? 5 : 1;
        }
        return s.ToString();
    }

    private static void Write(JsonElement e, Utf8JsonWriter w)
    {
        switch (e.ValueKind)
        {
            case JsonValueKind.Object:
                w.WriteStartObject();
                foreach (var p in e.EnumerateObject())
                {
                    w.WritePropertyName(Clean(p.Name)!);
                    Write(p.Value, w);
                }
                w.WriteEndObject();
                break;
            case JsonValueKind.Array:
                w.WriteStartArray();
                foreach (var item in e.EnumerateArray()) Write(item, w);
                w.WriteEndArray();
                break;
            case JsonValueKind.String:
                string? text;
                try { text = e.GetString(); }
                catch (InvalidOperationException)
                {
                    // A string .NET cannot read (a lone surrogate): its escapes kept as they are, only \u0000 taken out, so the
                    // body goes on to be kept aside as such a body is. Until 8 Dec 2026 this threw: such a webhook was answered
                    // 500 until Shopify gave up on it, and such an import line failed its phase on every retry.
                    w.WriteRawValue(WithoutNulEscapes(e.GetRawText()), skipInputValidation: true);
                    break;
                }
                w.WriteStringValue(Clean(text));
                break;
            default:
                w.WriteRawValue(e.GetRawText()); // numbers keep their exact text; true, false, null
                break;
        }
    }
}
