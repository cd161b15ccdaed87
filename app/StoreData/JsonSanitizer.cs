namespace PluginApp.StoreData;

/// <summary>
/// PostgreSQL cannot hold U+0000 in text or jsonb, and a shopper can type it into an order note. Every writer of store
/// data (webhooks and the backfill) strips it from every string and property name, in the raw body and the rows alike.
/// </summary>
internal static class JsonSanitizer
{
    public static bool HasNul(ReadOnlySpan<byte> utf8Json) => utf8Json.IndexOf("\\u0000"u8) >= 0;

    /// <summary>
    /// The same JSON with its \u0000 escapes removed, from strings and property names alike; the input itself when it holds
    /// none (the usual case, no copy). Done on the text: in JSON a backslash begins an escape and appears only inside a
    /// string, so no parse is needed, and everything else keeps its exact bytes. Why not parsed and written again, as until
    /// 8 Dec 2026: a string .NET cannot read (a lone surrogate) beside a NUL made that throw, so such a webhook was answered
    /// 500 until Shopify gave up on it, and such an import line failed its phase on every retry.
    /// </summary>
    public static byte[] StripNul(byte[] utf8Json)
    {
        if (!HasNul(utf8Json)) return utf8Json;
        var output = new byte[utf8Json.Length];
        var n = 0;
        for (var i = 0; i < utf8Json.Length; i++)
        {
            if (utf8Json[i] != (byte)'\\' || i + 1 == utf8Json.Length) { output[n++] = utf8Json[i]; continue; }
            if (utf8Json.AsSpan(i).StartsWith("\\u0000"u8)) { i += 5; continue; }
            // Any other escape, \\ included, is copied whole: a "u0000" after an escaped backslash is text.
            output[n++] = utf8Json[i];
            output[n++] = utf8Json[++i];
        }
        return output.AsSpan(0, n).ToArray();
    }

    /// <summary>Text form for a single line (the backfill's JSONL).</summary>
    public static string StripNul(string json) =>
        json.Contains("\\u0000", StringComparison.Ordinal) ? System.Text.Encoding.UTF8.GetString(StripNul(System.Text.Encoding.UTF8.GetBytes(json))) : json;

    /// <summary>A string value as the rows store it.</summary>
    public static string? Clean(string? s) => s is null || !s.Contains('\0') ? s : s.Replace("\0", "", StringComparison.Ordinal);
}
