using System.Text.Json;
using Hangfire;
using Npgsql;
using PluginApp.Data;
using PluginApp.Jobs;
using PluginApp.StoreData;

namespace PluginApp.Compliance;

/// <summary>
/// Every minute: the second pass of each customers/redact whose writers in flight have all ended. Why a second pass: a
/// webhook batch or a backfill chunk whose statement began before the erasure committed did not see her tombstone, and
/// could commit her order, its email, IP and card, after the erasure had looked for her orders. A request is first seen
/// after the erasure committed (its row is not visible before); once no transaction that began before that moment holds a
/// table of personal data, every such writer has committed or rolled back, and the erasure runs again over what they left.
/// Why not a lock every writer takes instead: the shop's row lock that was tried on 5 Dec 2026 waited behind every
/// ingest batch and backfill chunk of the shop, and could deadlock with them.
/// </summary>
public sealed class ErasureSecondPassJob(NpgsqlDataSource db, PersonalDataCatalog catalog, TimeProvider clock, ILogger<ErasureSecondPassJob> logger)
{
    private const string MarkSeen = "UPDATE erasure_second_passes SET seen_at = clock_timestamp() WHERE seen_at IS NULL";

    /// <summary>$1 the tables of personal data. A transaction that began before the request was seen and holds one of them.</summary>
    internal const string DueSql = """
        SELECT shop_id, customer_id, request::text, requested_at FROM erasure_second_passes p
        WHERE seen_at IS NOT NULL AND NOT EXISTS (
          SELECT 1 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
          WHERE l.locktype = 'relation' AND l.pid <> pg_backend_pid() AND a.xact_start < p.seen_at
            AND l.relation = ANY (SELECT to_regclass(t)::oid FROM unnest($1::text[]) t))
        ORDER BY requested_at LIMIT 100
        """;

    [Queue(JobQueues.Default)]
    public async Task<int> RunAsync(CancellationToken ct)
    {
        await using (var mark = db.CreateCommand(MarkSeen)) await mark.ExecuteNonQueryAsync(ct);
        var due = new List<(long Shop, long Customer, string Request, DateTimeOffset At)>();
        await using (var cmd = db.CreateCommand(DueSql))
        {
            cmd.Parameters.Add(Sql.Param(catalog.Tables.Select(t => t.Table).Append("erasure_second_passes").Distinct().ToArray()));
            await using var r = await cmd.ExecuteReaderAsync(ct);
            while (await r.ReadAsync(ct)) due.Add((r.GetInt64(0), r.GetInt64(1), r.GetString(2), r.GetFieldValue<DateTimeOffset>(3)));
        }
        foreach (var (shop, customer, request, at) in due)
        {
            await using var conn = await db.OpenConnectionAsync(ct);
            await using var tx = await conn.BeginTransactionAsync(ct);
            await using var batch = new NpgsqlBatch(conn, tx);
            var store = new StoreWriter(batch, shop);
            using var payload = JsonDocument.Parse(request);
            new ComplianceService(store, shop, catalog).AddCustomerRedaction(payload.RootElement, Later(clock.GetUtcNow(), at), secondPass: true);
            await batch.ExecuteNonQueryAsync(ct);
            await tx.CommitAsync(ct);
            logger.LogInformation("Shop {Shop}: customers/redact of {Customer} ran its second pass", shop, customer);
        }
        return due.Count;
    }

    /// <summary>The second pass's time, after the request's (its own erasure deletes the requests made before it).</summary>
    private static DateTimeOffset Later(DateTimeOffset now, DateTimeOffset requested) =>
        now > requested.AddMilliseconds(1) ? now : requested.AddMilliseconds(1);
}
