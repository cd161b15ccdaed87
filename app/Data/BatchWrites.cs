using Npgsql;

namespace PluginApp.Data;

public static class BatchWrites
{
    /// <summary>
    /// Writes the statements <paramref name="fill"/> adds to a batch, in a transaction of their own and one round trip: all
    /// of them, or none.
    /// </summary>
    public static async Task WriteBatchAsync(this NpgsqlDataSource db, Action<NpgsqlBatch> fill, CancellationToken ct)
    {
        await using var conn = await db.OpenConnectionAsync(ct);
        await using var tx = await conn.BeginTransactionAsync(ct);
        await using var batch = new NpgsqlBatch(conn, tx);
        fill(batch);
        await batch.ExecuteNonQueryAsync(ct);
        await tx.CommitAsync(ct);
    }
}
