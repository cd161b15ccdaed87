using Npgsql;

namespace PluginApp.Jobs;

/// <summary>
/// Single-flight for work that must not overlap across instances (one training per shop, one drain per shop): a
/// PostgreSQL advisory lock held on a dedicated connection. Why advisory and not a row flag: a crashed instance's
/// connection dies and its lock goes with it, so nothing is left "running" forever.
/// </summary>
public sealed class JobLocks(NpgsqlDataSource db)
{
    /// <summary>The lock, or null when another instance holds it.</summary>
    public Task<IAsyncDisposable?> TryAcquireAsync(string key, CancellationToken ct) =>
        LockAsync("SELECT pg_try_advisory_lock(hashtextextended($1, 0))", key, ct);

    /// <summary>The lock, once whoever holds it lets go.</summary>
    public async Task<IAsyncDisposable> AcquireAsync(string key, CancellationToken ct) =>
        (await LockAsync("SELECT pg_advisory_lock(hashtextextended($1, 0)) IS NOT NULL", key, ct))!;

    private async Task<IAsyncDisposable?> LockAsync(string sql, string key, CancellationToken ct)
    {
        var conn = await db.OpenConnectionAsync(ct);
        try
        {
            await using var cmd = new NpgsqlCommand(sql, conn) { CommandTimeout = 0 };
            cmd.Parameters.AddWithValue(key);
            if (await cmd.ExecuteScalarAsync(ct) is true) return new Lease(conn, key);
        }
        catch
        {
            await conn.DisposeAsync();
            throw;
        }
        await conn.DisposeAsync();
        return null;
    }

    private sealed class Lease(NpgsqlConnection conn, string key) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            try
            {
                await using var cmd = new NpgsqlCommand("SELECT pg_advisory_unlock(hashtextextended($1, 0))", conn);
                cmd.Parameters.AddWithValue(key);
                await cmd.ExecuteNonQueryAsync(CancellationToken.None);
            }
            catch (NpgsqlException) { } // the connection is gone, and the lock with it
            finally { await conn.DisposeAsync(); }
        }
    }
}
