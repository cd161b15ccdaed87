using System.Buffers.Binary;
using System.Text;

namespace PluginApp.Backfill;

/// <summary>
/// Rows of backfill_lines (<see cref="Columns"/>) in PostgreSQL's binary COPY format, written to a raw COPY stream in
/// large messages: the file header, then per row a field count and each field as its length and bytes (json and text as
/// their UTF-8, integers big-endian; a null as length -1), then the trailer. A line is staged either as its JSON (body) or,
/// for an order's line item, as the values it gives order_lines (<see cref="BulkLineItem"/>). Line numbers count from 1.
/// </summary>
internal sealed class StagedLineWriter
{
    /// <summary>The columns of the COPY, in the order each row gives them.</summary>
    public const string Columns = "run_id, phase, line_no, body, parent_id, item_id, item_product_id, item_variant_id, item_title, item_sku, item_quantity, item_price, item_total_discount";
    private const short Fields = 13;
    /// <summary>The item_* columns, last in each row.</summary>
    private const int ItemFields = 8;
    /// <summary>A row's most bytes besides its phase, JSON and text: the field count, each field's length, six int8s and an int4.</summary>
    private const int Fixed = 2 + Fields * 4 + 6 * 8 + 4;
    // "PGCOPY\n\377\r\n\0", then 32-bit flags and header extension length, both 0.
    private static ReadOnlySpan<byte> Header => [(byte)'P', (byte)'G', (byte)'C', (byte)'O', (byte)'P', (byte)'Y', 0x0A, 0xFF, 0x0D, 0x0A, 0x00, 0, 0, 0, 0, 0, 0, 0, 0];
    private readonly Stream _copy;
    private readonly long _runId;
    private readonly byte[] _phase;
    private byte[] _buffer = new byte[1 << 16];
    private int _used;
    private long _lines;

    /// <summary>The lines added so far.</summary>
    public long Lines => _lines;

    public StagedLineWriter(Stream copy, long runId, string phase)
    {
        (_copy, _runId, _phase) = (copy, runId, Encoding.UTF8.GetBytes(phase));
        Header.CopyTo(_buffer);
        _used = Header.Length;
    }

    /// <param name="json">The line.</param>
    /// <param name="parentId">Its parent's id, null for a parent line.</param>
    public ValueTask AddAsync(ReadOnlySpan<byte> json, long? parentId, CancellationToken ct)
    {
        var row = Fixed + _phase.Length + json.Length;
        if (_used + row <= _buffer.Length)
        {
            Append(json, parentId, null);
            return ValueTask.CompletedTask;
        }
        // Why copy the line: the span cannot live across the flush's await; a line is a few KB beside a 64 KB buffer.
        return FlushThenAppendAsync(json.ToArray(), parentId, null, row, ct);
    }

    /// <param name="item">The line item's values, as read from its line; staged in place of the line.</param>
    /// <param name="parentId">Its order's id.</param>
    public ValueTask AddAsync(BulkLineItem item, long parentId, CancellationToken ct)
    {
        var row = Fixed + _phase.Length + item.Text(item.Title).Length + item.Text(item.Sku).Length + item.Text(item.Price).Length + item.Text(item.TotalDiscount).Length;
        if (_used + row <= _buffer.Length)
        {
            Append(default, parentId, item);
            return ValueTask.CompletedTask;
        }
        return FlushThenAppendAsync(null, parentId, item, row, ct);
    }

    private async ValueTask FlushThenAppendAsync(byte[]? json, long? parentId, BulkLineItem? item, int row, CancellationToken ct)
    {
        await FlushAsync(ct);
        if (row > _buffer.Length) _buffer = new byte[row]; // one line longer than the buffer: a buffer of its size
        Append(json, parentId, item);
    }

    private void Append(ReadOnlySpan<byte> json, long? parentId, BulkLineItem? item)
    {
        var span = _buffer.AsSpan(_used);
        BinaryPrimitives.WriteInt16BigEndian(span, Fields);
        var n = 2;
        n += Int8(span[n..], _runId);
        n += Bytes(span[n..], _phase);
        n += Int8(span[n..], ++_lines);
        if (item is null)
        {
            n += Bytes(span[n..], json);
            n += Int8(span[n..], parentId);
            for (var i = 0; i < ItemFields; i++) n += Null(span[n..]);
        }
        else
        {
            n += Null(span[n..]);
            n += Int8(span[n..], parentId);
            n += Int8(span[n..], item.Id);
            n += Int8(span[n..], item.ProductId);
            n += Int8(span[n..], item.VariantId);
            n += Text(span[n..], item, item.Title);
            n += Text(span[n..], item, item.Sku);
            n += Int4(span[n..], item.Quantity);
            n += Text(span[n..], item, item.Price);
            n += Text(span[n..], item, item.TotalDiscount);
        }
        _used += n;
    }

    private static int Int8(Span<byte> into, long? value)
    {
        if (value is not { } v) return Null(into);
        BinaryPrimitives.WriteInt32BigEndian(into, 8);
        BinaryPrimitives.WriteInt64BigEndian(into[4..], v);
        return 12;
    }

    private static int Int4(Span<byte> into, int? value)
    {
        if (value is not { } v) return Null(into);
        BinaryPrimitives.WriteInt32BigEndian(into, 4);
        BinaryPrimitives.WriteInt32BigEndian(into[4..], v);
        return 8;
    }

    private static int Text(Span<byte> into, BulkLineItem item, BulkLineItem.Slice value) =>
        value.IsNull ? Null(into) : Bytes(into, item.Text(value));

    private static int Bytes(Span<byte> into, ReadOnlySpan<byte> value)
    {
        BinaryPrimitives.WriteInt32BigEndian(into, value.Length);
        value.CopyTo(into[4..]);
        return 4 + value.Length;
    }

    private static int Null(Span<byte> into)
    {
        BinaryPrimitives.WriteInt32BigEndian(into, -1);
        return 4;
    }

    private async ValueTask FlushAsync(CancellationToken ct)
    {
        await _copy.WriteAsync(_buffer.AsMemory(0, _used), ct);
        _used = 0;
    }

    /// <summary>Writes what is buffered and the trailer; returns the number of lines. The caller then disposes the stream, which ends the COPY.</summary>
    public async ValueTask<long> CompleteAsync(CancellationToken ct)
    {
        if (_used + 2 > _buffer.Length) await FlushAsync(ct);
        BinaryPrimitives.WriteInt16BigEndian(_buffer.AsSpan(_used), -1);
        _used += 2;
        await FlushAsync(ct);
        return _lines;
    }
}
