using System.Text.Json;
using Npgsql;
using NpgsqlTypes;
using PluginApp.Data;

namespace PluginApp.Jobs;

/// <summary>
/// The one bookkeeping of long-running work (training runs, backfill runs): a row per run with its state, start, end and
/// error, plus the columns each kind of run records. The admin pages read these tables.
/// </summary>
public sealed class RunLog(NpgsqlDataSource db, TimeProvider clock)
{
    public const string Training = "training_runs";
    public const string Backfill = "backfill_runs";
    private static readonly HashSet<string> Tables = [Training, Backfill];

    /// <summary>A new run in state "running". Column names are the caller's constants, never input.</summary>
    public async Task<long> StartAsync(string table, long shopId, Dictionary<string, object?> columns, CancellationToken ct)
    {
        Check(table);
        var now = clock.GetUtcNow();
        var all = new Dictionary<string, object?>(columns) { ["shop_id"] = shopId, ["state"] = "running", ["started_at"] = now };
        if (table == Backfill) all["updated_at"] = now; // backfill runs also record progress, and lapse by updated_at
        var names = all.Keys.ToList();
        await using var cmd = db.CreateCommand(
            $"INSERT INTO {table} ({string.Join(", ", names)}) VALUES ({string.Join(", ", names.Select((_, i) => $"${i + 1}"))}) RETURNING id");
        foreach (var name in names) cmd.Parameters.Add(Param(all[name]));
        return (long)(await cmd.ExecuteScalarAsync(ct))!;
    }

    /// <summary>Ends a run. Why no cancellation: the outcome of work already done must be written even while the app stops.</summary>
    public async Task FinishAsync(string table, long runId, string state, string? error, Dictionary<string, object?> columns)
    {
        await using var conn = await db.OpenConnectionAsync(CancellationToken.None);
        await FinishAsync(conn, null, table, runId, state, error, columns);
    }

    /// <summary>Ends a run in the caller's transaction, so the run's outcome commits with what the run made (e.g. the model it registered).</summary>
    public async Task FinishAsync(NpgsqlConnection conn, NpgsqlTransaction? tx, string table, long runId, string state, string? error,
        Dictionary<string, object?> columns)
    {
        Check(table);
        var now = clock.GetUtcNow();
        var all = new Dictionary<string, object?>(columns) { ["state"] = state, ["error"] = error, ["finished_at"] = now };
        if (table == Backfill) all["updated_at"] = now;
        var names = all.Keys.ToList();
        await using var cmd = new NpgsqlCommand($"UPDATE {table} SET {string.Join(", ", names.Select((n, i) => $"{n} = ${i + 2}"))} WHERE id = $1", conn, tx);
        cmd.Parameters.AddWithValue(runId);
        foreach (var name in names) cmd.Parameters.Add(Param(all[name]));
        await cmd.ExecuteNonQueryAsync(CancellationToken.None);
    }

    /// <summary>
    /// Ends, as failed with <paramref name="error"/>, the runs still "running" that started before <paramref name="runId"/>
    /// and match it on <paramref name="sameAs"/> (e.g. shop and kind): runs whose process stopped without writing an outcome.
    /// A run that is in fact still going writes its own outcome over this when it ends. Returns how many were ended.
    /// </summary>
    public async Task<int> EndEarlierRunningAsync(string table, long runId, string[] sameAs, string error)
    {
        Check(table);
        await using var cmd = db.CreateCommand($"""
            UPDATE {table} r SET state = 'failed', error = $2, finished_at = $3
            FROM {table} mine
            WHERE mine.id = $1 AND r.state = 'running' AND r.id < mine.id {string.Concat(sameAs.Select(c => $" AND r.{c} = mine.{c}"))}
            """);
        cmd.Parameters.AddWithValue(runId);
        cmd.Parameters.Add(Param(error));
        cmd.Parameters.Add(Sql.Param(clock.GetUtcNow()));
        return await cmd.ExecuteNonQueryAsync(CancellationToken.None);
    }

    private static NpgsqlParameter Param(object? value) => value switch
    {
        JsonDocument json => new NpgsqlParameter { Value = json.RootElement.GetRawText(), NpgsqlDbType = NpgsqlDbType.Jsonb },
        string s => new NpgsqlParameter { Value = s, NpgsqlDbType = NpgsqlDbType.Text },
        null => new NpgsqlParameter { Value = DBNull.Value },
        _ => Sql.Param(value),
    };

    private static void Check(string table)
    {
        if (!Tables.Contains(table)) throw new ArgumentException($"'{table}' is not a run table", nameof(table));
    }
}
