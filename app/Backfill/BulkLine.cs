using System.Text.Json;
using PluginApp.StoreData;

namespace PluginApp.Backfill;

/// <summary>
/// What the staging reads from a line of a bulk operation's JSONL: the id of the object's parent (its top-level
/// <c>__parentId</c>), or none for a line that is a parent. The line itself goes to PostgreSQL as it came.
/// </summary>
internal static class BulkLine
{
    /// <summary>The REST id of the line's parent; null for a parent line (no <c>__parentId</c>, or a null one).</summary>
    /// <exception cref="MalformedPayloadException">The parent is not a Shopify global id.</exception>
    /// <exception cref="JsonException">The line names a parent but is not JSON.</exception>
    public static long? ParentId(ReadOnlySpan<byte> line)
    {
        if (line.IndexOf("__parentId"u8) < 0) return null;
        // Why look at the end first: Shopify writes __parentId as a child's last member, `..."__parentId":"gid://..."}`. There
        // the key cannot be inside a string (a quote in a string is escaped) and the brace after it, the line's last byte,
        // closes the top-level object; so the member is the top-level one, and the last of its name, as jsonb would keep.
        var end = line.TrimEnd(" \t\r"u8);
        if (end.EndsWith("\"}"u8))
        {
            var body = end[..^2];
            var key = body.LastIndexOf("\"__parentId\":\""u8);
            if (key >= 0)
            {
                var gid = body[(key + "\"__parentId\":\"".Length)..];
                if (gid.IndexOfAny((byte)'"', (byte)'\\') < 0) return Id(gid);
            }
        }
        return ParentIdByReader(line);
    }

    /// <summary>Any other layout (spaces around the colon, the member elsewhere, escapes): the top-level member read as JSON.</summary>
    private static long? ParentIdByReader(ReadOnlySpan<byte> line)
    {
        var json = new Utf8JsonReader(line);
        if (!json.Read() || json.TokenType != JsonTokenType.StartObject) return null;
        long? parent = null;
        while (json.Read() && json.TokenType == JsonTokenType.PropertyName)
        {
            var isParent = json.ValueTextEquals("__parentId"u8);
            json.Read();
            if (!isParent) json.Skip();
            else parent = json.TokenType switch
            {
                JsonTokenType.Null => null,
                JsonTokenType.String => Gid.Id(json.GetString()!),
                _ => throw new MalformedPayloadException($"__parentId is a {json.TokenType}, not a Shopify global id"),
            };
        }
        return parent;
    }

    /// <summary>The REST id of a global id given as its UTF-8 bytes, by <see cref="Gid.Id(ReadOnlySpan{char})"/>'s rule.</summary>
    internal static long Id(ReadOnlySpan<byte> utf8)
    {
        Span<char> chars = stackalloc char[64];
        return utf8.Length <= chars.Length && System.Text.Ascii.ToUtf16(utf8, chars, out var n) == System.Buffers.OperationStatus.Done
            ? Gid.Id(chars[..n])
            : Gid.Id(System.Text.Encoding.UTF8.GetString(utf8));
    }
}
