using Npgsql;
using NpgsqlTypes;

namespace PluginApp.Backfill;

/// <summary>
/// One binary COPY per staging table of a phase, open side by side (a connection carries one COPY at a time), so a line
/// can go to whichever table it belongs to while the file streams past. Nothing is held in memory but the COPY buffers.
/// </summary>
internal sealed class StagedRows : IAsyncDisposable
{
    private readonly long _runId;
    private readonly Dictionary<StagedTable, (NpgsqlConnection Conn, NpgsqlBinaryImporter Copy)> _copies = [];

    private StagedRows(long runId) => _runId = runId;

    public static async Task<StagedRows> OpenAsync(NpgsqlDataSource db, long runId, IEnumerable<StagedTable> tables, CancellationToken ct)
    {
        var rows = new StagedRows(runId);
        try
        {
            foreach (var t in tables)
            {
                var conn = await db.OpenConnectionAsync(ct);
                try
                {
                    var copy = await conn.BeginBinaryImportAsync(
                        $"COPY {t.Name} (run_id, seq, {string.Join(", ", t.Columns)}) FROM STDIN (FORMAT BINARY)", ct);
                    rows._copies[t] = (conn, copy);
                }
                catch
                {
                    await conn.DisposeAsync();
                    throw;
                }
            }
            return rows;
        }
        catch
        {
            await rows.DisposeAsync();
            throw;
        }
    }

    /// <summary>One row of <paramref name="table"/>: values in the order of its columns (null, long, int, bool, decimal, string or UTC time).</summary>
    public async ValueTask WriteAsync(StagedTable table, long seq, params object?[] values)
    {
        if (values.Length != table.Columns.Length)
            throw new ArgumentException($"{table.Name}: expected {table.Columns.Length} values, got {values.Length}", nameof(values));
        var copy = _copies[table].Copy;
        await copy.StartRowAsync();
        await copy.WriteAsync(_runId, NpgsqlDbType.Bigint);
        await copy.WriteAsync(seq, NpgsqlDbType.Bigint);
        foreach (var v in values)
        {
            var write = v switch
            {
                null => copy.WriteNullAsync(),
                long n => copy.WriteAsync(n, NpgsqlDbType.Bigint),
                int n => copy.WriteAsync(n, NpgsqlDbType.Integer),
                bool b => copy.WriteAsync(b, NpgsqlDbType.Boolean),
                decimal d => copy.WriteAsync(d, NpgsqlDbType.Numeric),
                string s => copy.WriteAsync(s, NpgsqlDbType.Text),
                DateTimeOffset t => copy.WriteAsync(t.ToUniversalTime(), NpgsqlDbType.TimestampTz),
                _ => throw new ArgumentException($"{table.Name}: cannot stage a {v.GetType().Name}", nameof(values)),
            };
            await write;
        }
    }

    /// <summary>Ends every COPY; each commits its rows (the run records the phase as staged only after all have).</summary>
    public async Task CompleteAsync(CancellationToken ct)
    {
        foreach (var (_, copy) in _copies.Values) await copy.CompleteAsync(ct);
    }

    /// <summary>A COPY not completed is cancelled: its rows are not kept.</summary>
    public async ValueTask DisposeAsync()
    {
        foreach (var (conn, copy) in _copies.Values)
        {
            try { await copy.DisposeAsync(); }
            finally { await conn.DisposeAsync(); }
        }
        _copies.Clear();
    }
}
