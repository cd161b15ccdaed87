using System.Collections.Concurrent;
using Npgsql;

namespace PluginApp.Data;

/// <summary>
/// Analyzes a table when it has changed by more than twice what it held when PostgreSQL last analyzed it, or was never
/// analyzed and has changed by <see cref="MinChanges"/>, instead of waiting for autovacuum's next visit (a minute or more;
/// longer while its workers are busy with large tables).
/// Why: statistics taken while a table held few live rows say every index is tiny, and PostgreSQL then plans a lookup inside
/// a walk as a walk of its own: after a burst of outbox calls for one shop (a churn run, a sale) on statistics from a
/// nearly empty table, each queued call's "first of its resource" lookup read all the shop's calls (4,000 calls: 16,000,000
/// rows read by one claim). The test of that is the outbox's (OutboxStatisticsTests). A table never analyzed (a new
/// deployment's first minute, a restored database) has no statistics of its columns at all, and PostgreSQL then guesses
/// every condition alike: an order's "same email" lookup walked all the store's orders of the month by their time (400
/// orders' features: 2.5 s against 40 ms; RiskStatisticsTests).
/// </summary>
public sealed class TableStatistics(NpgsqlDataSource db, TimeProvider clock, ILogger<TableStatistics> logger)
{
    /// <summary>Changes below this never trigger an analysis: plans that read a few hundred rows too many are cheap.</summary>
    internal const long MinChanges = 1000;

    /// <summary>How often one instance looks at a table's counters at most.</summary>
    internal static readonly TimeSpan LookEvery = TimeSpan.FromSeconds(10);

    private readonly ConcurrentDictionary<string, long> _lookedAt = new(StringComparer.Ordinal);

    /// <summary>Analyzes <paramref name="table"/> if it outgrew its statistics (one instance at a time); true if it did.</summary>
    /// <param name="table">A table name of our schema (a constant, never input).</param>
    public async Task<bool> RefreshIfOutgrownAsync(string table, CancellationToken ct)
    {
        var now = clock.GetTimestamp();
        var last = _lookedAt.GetOrAdd(table, long.MinValue);
        if (last != long.MinValue && clock.GetElapsedTime(last, now) < LookEvery) return false;
        if (!_lookedAt.TryUpdate(table, now, last)) return false; // another drain of this instance looks now

        await using var conn = await db.OpenConnectionAsync(ct);
        long changes;
        double analyzedRows;
        // Why these counters: the changes since the last ANALYZE are what autovacuum itself compares, and reltuples is what
        // the planner scales its estimates from (-1: never analyzed, when it has no statistics of any column either).
        await using (var look = new NpgsqlCommand("""
            SELECT pg_stat_get_mod_since_analyze(c.oid), c.reltuples FROM pg_class c WHERE c.oid = to_regclass($1)
            """, conn))
        {
            look.Parameters.AddWithValue(table);
            await using var r = await look.ExecuteReaderAsync(ct);
            if (!await r.ReadAsync(ct)) return false;
            (changes, analyzedRows) = (r.GetInt64(0), r.GetFloat(1));
        }
        if (changes < MinChanges || changes <= 2 * analyzedRows) return false;

        var started = clock.GetTimestamp();
        await using var tx = await conn.BeginTransactionAsync(ct);
        await using (var claim = new NpgsqlCommand("SELECT pg_try_advisory_xact_lock(hashtextextended('analyze ' || $1, 0))", conn, tx))
        {
            claim.Parameters.AddWithValue(table);
            if (await claim.ExecuteScalarAsync(ct) is not true) return false; // another instance analyzes it now
        }
        // Why a lock timeout: a vacuum of the table holds the lock ANALYZE needs, and the caller (a drain) must not wait on it.
        await using (var analyze = new NpgsqlCommand($"SET LOCAL lock_timeout = '100ms'; ANALYZE {table}", conn, tx) { CommandTimeout = 0 })
        {
            try { await analyze.ExecuteNonQueryAsync(ct); }
            catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.LockNotAvailable) { return false; }
        }
        await tx.CommitAsync(ct);
        logger.LogInformation("Analyzed {Table}: {Changes} changes since its statistics counted {Rows} rows ({Ms:F0} ms)",
            table, changes, analyzedRows, clock.GetElapsedTime(started).TotalMilliseconds);
        return true;
    }
}
