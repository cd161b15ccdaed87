using System.IO.Compression;

namespace StoreReplay;

/// <summary>Opens the data files as they are stored (gzip) or already decompressed.</summary>
public static class InputStreams
{
    /// <summary>Wraps a seekable stream in a GZipStream when it starts with the gzip magic bytes.</summary>
    public static Stream Decompressing(Stream raw)
    {
        if (!raw.CanSeek) throw new NotSupportedException("pass a seekable stream (a FileStream or MemoryStream)");
        var head = new byte[2];
        var n = raw.ReadAtLeast(head, 2, throwOnEndOfStream: false);
        raw.Seek(-n, SeekOrigin.Current);
        return n == 2 && head[0] == 0x1f && head[1] == 0x8b ? new GZipStream(raw, CompressionMode.Decompress, leaveOpen: true) : raw;
    }
}
