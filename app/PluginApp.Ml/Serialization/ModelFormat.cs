using System.Text;

namespace PluginApp.Ml.Serialization;

/// <summary>
/// Shared framing for every model blob: a 4-byte ASCII magic, an int32 format version, then the
/// model's own little-endian payload. Readers go through <see cref="ModelReader"/> so that a short
/// stream or an impossible length always surfaces as <see cref="InvalidDataException"/> naming the
/// field, instead of an <see cref="EndOfStreamException"/> or an out-of-memory from a corrupt count.
/// </summary>
public static class ModelFormat
{
    /// <summary>Writes the magic and version.</summary>
    public static void WriteHeader(BinaryWriter writer, string magic, int version)
    {
        ArgumentNullException.ThrowIfNull(writer);
        if (magic.Length != 4) throw new ArgumentException("Magic must be 4 ASCII characters.", nameof(magic));
        writer.Write(Encoding.ASCII.GetBytes(magic));
        writer.Write(version);
    }

    /// <summary>Reads and checks the magic and version; returns a reader for the payload.</summary>
    public static ModelReader ReadHeader(Stream stream, string modelName, string magic, int supportedVersion)
    {
        ArgumentNullException.ThrowIfNull(stream);
        var reader = new ModelReader(stream, modelName);
        var bytes = reader.ReadBytes(4, "magic");
        var found = Encoding.ASCII.GetString(bytes);
        if (found != magic)
            throw new InvalidDataException($"{modelName}: bad magic '{Printable(found)}', expected '{magic}'; this is not a {modelName} blob.");
        var version = reader.ReadInt32("format version");
        if (version != supportedVersion)
            throw new InvalidDataException($"{modelName}: unknown format version {version}; this build reads version {supportedVersion} only.");
        return reader;
    }

    /// <summary>
    /// Reads and checks the magic and a version within [oldest, newest] (a model kind that still reads its older layouts);
    /// returns the reader and the version found.
    /// </summary>
    public static (ModelReader Reader, int Version) ReadHeader(Stream stream, string modelName, string magic, int oldest, int newest)
    {
        ArgumentNullException.ThrowIfNull(stream);
        var reader = new ModelReader(stream, modelName);
        var found = Encoding.ASCII.GetString(reader.ReadBytes(4, "magic"));
        if (found != magic)
            throw new InvalidDataException($"{modelName}: bad magic '{Printable(found)}', expected '{magic}'; this is not a {modelName} blob.");
        var version = reader.ReadInt32("format version");
        if (version < oldest || version > newest)
            throw new InvalidDataException($"{modelName}: unknown format version {version}; this build reads versions {oldest} to {newest}.");
        return (reader, version);
    }

    private static string Printable(string s)
    {
        var sb = new StringBuilder();
        foreach (var c in s) sb.Append(c is >= ' ' and <= '~' ? c : '?');
        return sb.ToString();
    }

    /// <summary>Writes a length-prefixed float array.</summary>
    public static void WriteFloats(BinaryWriter w, ReadOnlySpan<float> values)
    {
        w.Write(values.Length);
        foreach (var v in values) w.Write(v);
    }

    /// <summary>Writes a length-prefixed double array.</summary>
    public static void WriteDoubles(BinaryWriter w, ReadOnlySpan<double> values)
    {
        w.Write(values.Length);
        foreach (var v in values) w.Write(v);
    }

    /// <summary>Writes a length-prefixed int array.</summary>
    public static void WriteInts(BinaryWriter w, ReadOnlySpan<int> values)
    {
        w.Write(values.Length);
        foreach (var v in values) w.Write(v);
    }

    /// <summary>Writes a length-prefixed int64 array.</summary>
    public static void WriteLongs(BinaryWriter w, ReadOnlySpan<long> values)
    {
        w.Write(values.Length);
        foreach (var v in values) w.Write(v);
    }

    /// <summary>Writes a length-prefixed byte array.</summary>
    public static void WriteBytes(BinaryWriter w, ReadOnlySpan<byte> values)
    {
        w.Write(values.Length);
        w.Write(values);
    }

    /// <summary>Writes a length-prefixed string array.</summary>
    public static void WriteStrings(BinaryWriter w, IReadOnlyList<string> values)
    {
        w.Write(values.Count);
        foreach (var v in values) w.Write(v);
    }
}

/// <summary>Payload reader that turns every malformed or short read into a named <see cref="InvalidDataException"/>.</summary>
public sealed class ModelReader
{
    private readonly BinaryReader _reader;
    private readonly Stream _stream;
    private readonly string _model;

    internal ModelReader(Stream stream, string model)
    {
        _stream = stream;
        _model = model;
        _reader = new BinaryReader(stream, Encoding.UTF8, leaveOpen: true);
    }

    private InvalidDataException Truncated(string field) =>
        new($"{_model}: blob is truncated while reading '{field}'.");

    /// <summary>Reads raw bytes.</summary>
    public byte[] ReadBytes(int count, string field)
    {
        var b = _reader.ReadBytes(count);
        if (b.Length != count) throw Truncated(field);
        return b;
    }

    /// <summary>Reads an int32.</summary>
    public int ReadInt32(string field)
    {
        try { return _reader.ReadInt32(); }
        catch (EndOfStreamException) { throw Truncated(field); }
    }

    /// <summary>Reads an int32 and checks a range.</summary>
    public int ReadInt32(string field, int min, int max)
    {
        var v = ReadInt32(field);
        if (v < min || v > max) throw new InvalidDataException($"{_model}: field '{field}' = {v} is outside [{min}, {max}].");
        return v;
    }

    /// <summary>Reads a double.</summary>
    public double ReadDouble(string field)
    {
        try { return _reader.ReadDouble(); }
        catch (EndOfStreamException) { throw Truncated(field); }
    }

    /// <summary>Reads a float.</summary>
    public float ReadSingle(string field)
    {
        try { return _reader.ReadSingle(); }
        catch (EndOfStreamException) { throw Truncated(field); }
    }

    /// <summary>Reads a length-prefixed UTF-8 string.</summary>
    public string ReadString(string field)
    {
        try { return _reader.ReadString(); }
        catch (EndOfStreamException) { throw Truncated(field); }
    }

    private int ReadLength(string field, int elementSize, int? expected)
    {
        var n = ReadInt32(field + " length");
        if (n < 0) throw new InvalidDataException($"{_model}: field '{field}' has negative length {n}.");
        if (expected is { } e && n != e)
            throw new InvalidDataException($"{_model}: field '{field}' has length {n}, expected {e}.");
        // Why: a corrupt length must not make us allocate gigabytes before noticing the stream is short.
        if (_stream.CanSeek && (long)n * elementSize > _stream.Length - _stream.Position) throw Truncated(field);
        return n;
    }

    /// <summary>Reads a length-prefixed float array.</summary>
    public float[] ReadFloats(string field, int? expected = null)
    {
        var n = ReadLength(field, 4, expected);
        var a = new float[n];
        for (var i = 0; i < n; i++) a[i] = ReadSingle(field);
        return a;
    }

    /// <summary>Reads a length-prefixed double array.</summary>
    public double[] ReadDoubles(string field, int? expected = null)
    {
        var n = ReadLength(field, 8, expected);
        var a = new double[n];
        for (var i = 0; i < n; i++) a[i] = ReadDouble(field);
        return a;
    }

    /// <summary>Reads a length-prefixed int array.</summary>
    public int[] ReadInts(string field, int? expected = null)
    {
        var n = ReadLength(field, 4, expected);
        var a = new int[n];
        for (var i = 0; i < n; i++) a[i] = ReadInt32(field);
        return a;
    }

    /// <summary>Reads a length-prefixed int64 array.</summary>
    public long[] ReadLongs(string field, int? expected = null)
    {
        var n = ReadLength(field, 8, expected);
        var a = new long[n];
        for (var i = 0; i < n; i++)
        {
            try { a[i] = _reader.ReadInt64(); }
            catch (EndOfStreamException) { throw Truncated(field); }
        }
        return a;
    }

    /// <summary>Reads a length-prefixed byte array.</summary>
    public byte[] ReadByteArray(string field)
    {
        var n = ReadLength(field, 1, null);
        return ReadBytes(n, field);
    }

    /// <summary>Reads a length-prefixed string array.</summary>
    public string[] ReadStrings(string field, int? expected = null)
    {
        var n = ReadLength(field, 1, expected);
        var a = new string[n];
        for (var i = 0; i < n; i++) a[i] = ReadString(field);
        return a;
    }
}
