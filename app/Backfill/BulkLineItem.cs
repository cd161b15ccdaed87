using System.Globalization;
using System.Text.Json;
using PluginApp.StoreData;

namespace PluginApp.Backfill;

/// <summary>
/// An order's line item read from its line of the orders file, as the values order_lines takes: the ids as numbers, the
/// text and the amounts (PostgreSQL casts them to numeric) as the UTF-8 they are in the JSON, unescaped. The staging reads
/// every child line of the orders phase with it and stages these values instead of the line (<see cref="StagedLineWriter"/>);
/// the merge then writes them without reading JSON. What each column is read from is the mapping the merge applied before:
/// <c>id</c>, <c>product.id</c>, <c>variant.id</c>, <c>title</c>, <c>sku</c>, <c>quantity</c>,
/// <c>originalUnitPriceSet.shopMoney.amount</c>, <c>totalDiscountSet.shopMoney.amount</c>; a member named twice is read
/// from its last, as jsonb keeps it; a null or missing one is null.
/// </summary>
/// <remarks>One instance is reused for every line of a staging; its text is held in its own buffer, so a value stays valid
/// after the line's bytes are gone (the writer may wait to flush before it copies them).</remarks>
internal sealed class BulkLineItem
{
    /// <summary>A value's place in <see cref="Text"/>; Length -1 for null.</summary>
    internal readonly record struct Slice(int Start, int Length)
    {
        public static readonly Slice Null = new(0, -1);
        public bool IsNull => Length < 0;
    }

    private byte[] _text = new byte[512];
    private int _used;

    public long Id { get; private set; }
    public long? ProductId { get; private set; }
    public long? VariantId { get; private set; }
    public int? Quantity { get; private set; }
    public Slice Title { get; private set; }
    public Slice Sku { get; private set; }
    public Slice Price { get; private set; }
    public Slice TotalDiscount { get; private set; }

    /// <summary>The bytes of a value read by the last <see cref="Read"/>.</summary>
    public ReadOnlySpan<byte> Text(Slice s) => s.IsNull ? default : _text.AsSpan(s.Start, s.Length);

    /// <summary>Reads a line item's values from its line, replacing the last line's.</summary>
    /// <exception cref="MalformedPayloadException">A value cannot be one of the column's (an id that is not a Shopify global id,
    /// a quantity that is not a 32-bit integer, an object where text belongs), or the line has no id.</exception>
    /// <exception cref="JsonException">The line is not JSON.</exception>
    public void Read(ReadOnlySpan<byte> line)
    {
        _used = 0;
        long? id = null;
        (ProductId, VariantId, Quantity) = (null, null, null);
        (Title, Sku, Price, TotalDiscount) = (Slice.Null, Slice.Null, Slice.Null, Slice.Null);
        var json = new Utf8JsonReader(line);
        if (!json.Read() || json.TokenType != JsonTokenType.StartObject) throw new MalformedPayloadException("a line item's line is not a JSON object");
        while (json.Read() && json.TokenType == JsonTokenType.PropertyName)
        {
            if (json.ValueTextEquals("id"u8)) id = NextId(ref json, "id", null);
            else if (json.ValueTextEquals("title"u8)) Title = NextText(ref json, "title", null);
            else if (json.ValueTextEquals("sku"u8)) Sku = NextText(ref json, "sku", null);
            else if (json.ValueTextEquals("quantity"u8)) Quantity = NextInt(ref json);
            else if (json.ValueTextEquals("product"u8)) ProductId = NextObjectId(ref json, "product");
            else if (json.ValueTextEquals("variant"u8)) VariantId = NextObjectId(ref json, "variant");
            else if (json.ValueTextEquals("originalUnitPriceSet"u8)) Price = NextAmount(ref json, "originalUnitPriceSet");
            else if (json.ValueTextEquals("totalDiscountSet"u8)) TotalDiscount = NextAmount(ref json, "totalDiscountSet");
            else
            {
                json.Read();
                json.Skip();
            }
        }
        Id = id ?? throw new MalformedPayloadException("a line item has no id");
    }

    /// <param name="name">The member's name, or its object's when <paramref name="member"/> is given (named only in an error).</param>
    private static long? NextId(ref Utf8JsonReader json, string name, string? member)
    {
        json.Read();
        return json.TokenType switch
        {
            JsonTokenType.Null => null,
            // Why from the bytes when unescaped (as Shopify writes ids): three strings a line were most of the staging's allocations.
            JsonTokenType.String => json.ValueIsEscaped || json.HasValueSequence ? Gid.Id(json.GetString()!) : BulkLine.Id(json.ValueSpan),
            _ => throw new MalformedPayloadException($"a line item's {Name(name, member)} is a {json.TokenType}, not a Shopify global id"),
        };
    }

    private static string Name(string name, string? member) => member is null ? name : $"{name}.{member}";

    /// <summary>The id of the object that is the next value (product, variant); null for a null object or one without an id.</summary>
    private static long? NextObjectId(ref Utf8JsonReader json, string name)
    {
        json.Read();
        if (json.TokenType == JsonTokenType.Null) return null;
        if (json.TokenType != JsonTokenType.StartObject) throw new MalformedPayloadException($"a line item's {name} is a {json.TokenType}, not an object");
        long? id = null;
        while (ToMember(ref json, "id"u8)) id = NextId(ref json, name, "id");
        return id;
    }

    /// <summary>
    /// Moves to the current object's next member named <paramref name="member"/>, passing over the others; false at the
    /// object's end.
    /// </summary>
    private static bool ToMember(ref Utf8JsonReader json, ReadOnlySpan<byte> member)
    {
        while (json.Read() && json.TokenType == JsonTokenType.PropertyName)
        {
            if (json.ValueTextEquals(member)) return true;
            json.Read();
            json.Skip();
        }
        return false;
    }

    /// <summary>The amount of the next value, a money set ({"shopMoney": {"amount": "2.55", ...}, ...}).</summary>
    private Slice NextAmount(ref Utf8JsonReader json, string name)
    {
        json.Read();
        if (json.TokenType == JsonTokenType.Null) return Slice.Null;
        if (json.TokenType != JsonTokenType.StartObject) throw new MalformedPayloadException($"a line item's {name} is a {json.TokenType}, not an object");
        var amount = Slice.Null;
        while (ToMember(ref json, "shopMoney"u8))
        {
            json.Read();
            amount = Slice.Null;
            if (json.TokenType == JsonTokenType.Null) continue;
            if (json.TokenType != JsonTokenType.StartObject) throw new MalformedPayloadException($"a line item's {name}.shopMoney is a {json.TokenType}, not an object");
            while (ToMember(ref json, "amount"u8)) amount = NextText(ref json, name, "shopMoney.amount");
        }
        return amount;
    }

    /// <summary>The next value as text, as PostgreSQL's ->> gives it: a string unescaped, a number or boolean as written.</summary>
    private Slice NextText(ref Utf8JsonReader json, string name, string? member)
    {
        json.Read();
        switch (json.TokenType)
        {
            case JsonTokenType.Null:
                return Slice.Null;
            case JsonTokenType.String:
                var room = json.HasValueSequence ? (int)json.ValueSequence.Length : json.ValueSpan.Length;
                Reserve(room);
                int written;
                try { written = json.CopyString(_text.AsSpan(_used)); }
                catch (InvalidOperationException e) { throw new MalformedPayloadException($"a line item's {Name(name, member)} is not valid text: {e.Message}"); }
                return Take(written);
            case JsonTokenType.Number or JsonTokenType.True or JsonTokenType.False:
                Reserve(json.ValueSpan.Length);
                json.ValueSpan.CopyTo(_text.AsSpan(_used));
                return Take(json.ValueSpan.Length);
            default:
                throw new MalformedPayloadException($"a line item's {Name(name, member)} is a {json.TokenType}, not text");
        }
    }

    /// <summary>The next value as a 32-bit integer, as PostgreSQL's cast of its ->> text reads it.</summary>
    private static int? NextInt(ref Utf8JsonReader json)
    {
        json.Read();
        return json.TokenType switch
        {
            JsonTokenType.Null => null,
            JsonTokenType.Number when json.TryGetInt32(out var n) => n,
            JsonTokenType.String when int.TryParse(json.GetString(), NumberStyles.AllowLeadingSign | NumberStyles.AllowLeadingWhite | NumberStyles.AllowTrailingWhite,
                CultureInfo.InvariantCulture, out var n) => n,
            _ => throw new MalformedPayloadException($"a line item's quantity ({Encoding(json)}) is not a 32-bit integer"),
        };
    }

    private static string Encoding(Utf8JsonReader json) =>
        json.TokenType is JsonTokenType.StartObject or JsonTokenType.StartArray ? json.TokenType.ToString() : System.Text.Encoding.UTF8.GetString(json.ValueSpan);

    private void Reserve(int bytes)
    {
        if (_used + bytes > _text.Length) Array.Resize(ref _text, Math.Max(_text.Length * 2, _used + bytes));
    }

    private Slice Take(int bytes)
    {
        var s = new Slice(_used, bytes);
        _used += bytes;
        return s;
    }
}
