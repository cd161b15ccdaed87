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
    /// <summary>
    /// The least time between a request and its second pass: longer than a queued decision may wait and still keep the
    /// shopper's ids (<see cref="PluginApp.Governance.DecisionLog.LateAfter"/>), so a decision made before the erasure and
    /// written after its first pass is either erased by the second or written without them.
    /// </summary>
    public static readonly TimeSpan Delay = PluginApp.Governance.DecisionLog.LateAfter + TimeSpan.FromMinutes(1);

    private const string MarkSeen = "UPDATE erasure_second_passes SET seen_at = clock_timestamp() WHERE seen_at IS NULL";

    /// <summary>
    /// $1 the tables of personal data, $2 the latest request time due (<see cref="Delay"/> ago). Held back by a transaction that began before the request was seen and writes one of
    /// them: a writing statement takes its table's lock before its snapshot, and each statement of a writer (read committed)
    /// takes its own snapshot, so once none is left every write that missed her tombstone is visible. Why not every lock: a
    /// long read (a training run, a dump) or autovacuum holds the lesser ones, and would keep her request, email and all, for
    /// hours. Also held back while an older request of hers is: a pass deletes her older requests with its own (carrying
    /// on what they found), and one still held back waits for a writer that may yet commit her data (a late order's pass,
    /// SegmentRows.ErasedTokensFor, is dated by its delivery and may be seen after her own second pass).
    /// </summary>
    internal static readonly string DueSql = $"""
        SELECT shop_id, customer_id, request::text, requested_at, orders, visitors, carts FROM erasure_second_passes p
        WHERE {Due("p")} AND NOT EXISTS (
          SELECT 1 FROM erasure_second_passes o WHERE o.shop_id = p.shop_id AND o.customer_id = p.customer_id
            AND o.requested_at < p.requested_at AND NOT ({Due("o")}))
        ORDER BY requested_at LIMIT 100
        """;

    private static string Due(string p) => $"""
        {p}.seen_at IS NOT NULL AND {p}.requested_at <= $2 AND NOT EXISTS (
          SELECT 1 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
          WHERE l.locktype = 'relation' AND l.pid <> pg_backend_pid() AND a.xact_start < {p}.seen_at
            AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
            AND l.mode NOT IN ('AccessShareLock', 'ShareUpdateExclusiveLock')
            AND l.relation = ANY (SELECT to_regclass(t)::oid FROM unnest($1::text[]) t))
        """;

    [Queue(JobQueues.Default)]
    public async Task<int> RunAsync(CancellationToken ct)
    {
        // One run at a time, on every instance: an erasure deletes the passes of hers that have been seen, and a run that
        // began while another was erasing would mark a pass seen that the other had not weighed for writers in flight, for
        // the other to delete unrun. A run that finds one going leaves; the next minute's looks again.
        await using var gate = await db.OpenConnectionAsync(ct);
        await using (var take = new NpgsqlCommand("SELECT pg_try_advisory_lock(hashtext('erasure-second-pass'))", gate))
            if (!(bool)(await take.ExecuteScalarAsync(ct))!) return 0;
        try { return await RunAloneAsync(ct); }
        finally
        {
            await using var release = new NpgsqlCommand("SELECT pg_advisory_unlock(hashtext('erasure-second-pass'))", gate);
            await release.ExecuteNonQueryAsync(CancellationToken.None);
        }
    }

    private async Task<int> RunAloneAsync(CancellationToken ct)
    {
        await using (var mark = db.CreateCommand(MarkSeen)) await mark.ExecuteNonQueryAsync(ct);
        var due = new List<(long Shop, long Customer, string Request, DateTimeOffset At, long[] Orders, string[] Visitors, string[] Carts)>();
        await using (var cmd = db.CreateCommand(DueSql))
        {
            cmd.Parameters.Add(Sql.Param(catalog.Tables.Select(t => t.Table).Append("erasure_second_passes").Distinct().ToArray()));
            cmd.Parameters.Add(Sql.Param(clock.GetUtcNow() - Delay));
            await using var r = await cmd.ExecuteReaderAsync(ct);
            while (await r.ReadAsync(ct))
                due.Add((r.GetInt64(0), r.GetInt64(1), r.GetString(2), r.GetFieldValue<DateTimeOffset>(3), r.GetFieldValue<long[]>(4), r.GetFieldValue<string[]>(5),
                    r.GetFieldValue<string[]>(6)));
        }
        var done = 0;
        foreach (var (shop, customer, request, at, orders, visitors, carts) in due)
        {
            // Why each apart: one that fails (a timeout, a malformed copy) is tried again next minute and holds no other back.
            try
            {
                using var payload = JsonDocument.Parse(request);
                // At the request's time and a millisecond: its erasure then deletes this request and older ones of hers, not
                // one she made since (whose own second pass is still to come); the rows it marks are marked as of her request.
                await db.WriteBatchAsync(batch => new ComplianceService(new StoreWriter(batch, shop), shop, catalog)
                    .AddCustomerRedaction(payload.RootElement, at.AddMilliseconds(1), (orders, visitors, carts)), ct);
                done++;
                logger.LogInformation("Shop {Shop}: customers/redact of {Customer} ran its second pass", shop, customer);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                logger.LogError(e, "Shop {Shop}: the second pass of customers/redact of {Customer} failed; it is tried again next minute", shop, customer);
            }
        }
        return done;
    }
}
