using System.Buffers.Binary;
using System.Text;

namespace PluginApp.Backfill;

/// <summary>
/// Rows of backfill_lines (run_id bigint, phase text, line_no bigint, body json, parent_id bigint) in PostgreSQL's binary
/// COPY format, written to a raw COPY stream in large messages: the file header, then per row a field count and each field
/// as its length and bytes (json as its text; a null as length -1), then the trailer. Line numbers count from 1.
/// </summary>
internal sealed class StagedLineWriter
{
    private const short Fields = 5;
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
        var row = 2 + (4 + 8) + (4 + _phase.Length) + (4 + 8) + (4 + json.Length) + (4 + 8);
        if (_used + row <= _buffer.Length)
        {
            Append(json, parentId);
            return ValueTask.CompletedTask;
        }
        // Why copy the line: the span cannot live across the flush's await; a line is a few KB beside a 64 KB buffer.
        return FlushThenAppendAsync(json.ToArray(), parentId, row, ct);
    }

    private async ValueTask FlushThenAppendAsync(byte[] json, long? parentId, int row, CancellationToken ct)
    {
        await FlushAsync(ct);
        if (row > _buffer.Length) _buffer = new byte[row]; // one line longer than the buffer: a buffer of its size
        Append(json, parentId);
    }

    private void Append(ReadOnlySpan<byte> json, long? parentId)
    {
        var span = _buffer.AsSpan(_used);
        BinaryPrimitives.WriteInt16BigEndian(span, Fields);
        var n = 2;
        n += Int8(span[n..], _runId);
        BinaryPrimitives.WriteInt32BigEndian(span[n..], _phase.Length);
        n += 4;
        _phase.CopyTo(span[n..]);
        n += _phase.Length;
        n += Int8(span[n..], ++_lines);
        BinaryPrimitives.WriteInt32BigEndian(span[n..], json.Length);
        n += 4;
        json.CopyTo(span[n..]);
        n += json.Length;
        if (parentId is { } parent) n += Int8(span[n..], parent);
        else
        {
            BinaryPrimitives.WriteInt32BigEndian(span[n..], -1);
            n += 4;
        }
        _used += n;
    }

    private static int Int8(Span<byte> into, long value)
    {
        BinaryPrimitives.WriteInt32BigEndian(into, 8);
        BinaryPrimitives.WriteInt64BigEndian(into[4..], value);
        return 12;
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
