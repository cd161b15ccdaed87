using System.Globalization;
using System.Text.Json;
using Microsoft.Extensions.Options;
using Npgsql;
using NpgsqlTypes;
using PluginApp.Install;
using PluginApp.Jobs;
using PluginApp.Shopify;
using PluginApp.StoreData;
using PluginApp.Data;

namespace PluginApp.Backfill;

/// <summary>
/// Imports a shop's history with bulk queries (products, customers, then a year of orders). Each phase's JSONL is
/// streamed, mapped line by line, and staged as typed rows with COPY (children may come before or after their parents,
/// so the file is staged, never held in memory), then merged into the store a chunk of parents at a time with set-based
/// upserts under the webhook path's rules (<see cref="StoreMerge"/>), each chunk committed with the run's cursor. A run
/// interrupted anywhere resumes: a staged phase continues after its cursor; a phase whose file was not fully staged waits
/// for the same bulk operation again and re-stages it.
/// </summary>
public sealed class BackfillService(NpgsqlDataSource db, ShopLookup shops, AdminGraphQLClient shopify, IHttpClientFactory httpFactory, JobLocks locks, RunLog runs,
    IOptions<BackfillOptions> options, TimeProvider clock, ILogger<BackfillService> logger)
{
    public const string DownloadClient = "bulk-download";

    private sealed record Run(long Id, long ShopId, string? Phase, string? BulkOperationId, long? StagedLines, long Cursor, string[] PhasesDone, long RowsDone);

    /// <summary>Runs (or resumes) the shop's backfill. One per shop at a time across every instance: a second caller waits, then runs its own.</summary>
    public async Task RunAsync(string shop, CancellationToken ct)
    {
        await using var lease = await locks.AcquireAsync($"backfill:{shop}", ct);
        var shopId = await LiveShopIdAsync(shop, ct);
        var run = await OpenRunAsync(shopId, ct);
        try
        {
            foreach (var phase in BackfillPhase.All.Where(p => !run.PhasesDone.Contains(p.Name)))
                run = await RunPhaseAsync(shop, run, phase, ct);
            await runs.FinishAsync(RunLog.Backfill, run.Id, "completed", null, new() { ["phase"] = null });
            logger.LogInformation("Backfill of {Shop} completed: {Rows} objects", shop, run.RowsDone);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // A retry of the job resumes this run from its cursor; after the last retry it stays failed.
            await runs.FinishAsync(RunLog.Backfill, run.Id, "failed", e.Message, []);
            throw;
        }
    }

    private async Task<Run> RunPhaseAsync(string shop, Run run, BackfillPhase phase, CancellationToken ct)
    {
        if (run.Phase != phase.Name)
        {
            await Exec("""
                UPDATE backfill_runs SET phase = $2, bulk_operation_id = NULL, staged_lines = NULL, phase_cursor = 0, updated_at = $3 WHERE id = $1
                """, ct, run.Id, phase.Name, clock.GetUtcNow());
            run = run with { Phase = phase.Name, BulkOperationId = null, StagedLines = null, Cursor = 0 };
        }
        if (run.StagedLines is null)
        {
            var url = await BulkResultUrlAsync(shop, run, phase, ct);
            run = run with { StagedLines = url is null ? 0 : await StageAsync(run.Id, phase, url, ct) };
            if (url is null) await Exec("UPDATE backfill_runs SET staged_lines = 0 WHERE id = $1", ct, run.Id);
        }
        run = await ApplyAsync(run, phase, ct);
        await using (var conn = await db.OpenConnectionAsync(ct))
        await using (var tx = await conn.BeginTransactionAsync(ct))
        {
            foreach (var t in phase.Tables) await Exec(conn, tx, $"DELETE FROM {t.Name} WHERE run_id = $1", ct, run.Id);
            await Exec(conn, tx, """
                UPDATE backfill_runs SET phases_done = array_append(phases_done, $2), bulk_operation_id = NULL, staged_lines = NULL,
                  phase_cursor = 0, updated_at = $3 WHERE id = $1
                """, ct, run.Id, phase.Name, clock.GetUtcNow());
            await tx.CommitAsync(ct);
        }
        return run with { PhasesDone = [.. run.PhasesDone, phase.Name], BulkOperationId = null, StagedLines = null, Cursor = 0 };
    }

    /// <summary>The finished bulk operation's file: the one this run already started when it is still usable, else a new one.</summary>
    private async Task<string?> BulkResultUrlAsync(string shop, Run run, BackfillPhase phase, CancellationToken ct)
    {
        if (run.BulkOperationId is { } existing)
        {
            var (done, url) = await WaitAsync(shop, existing, throwOnFailure: false, ct);
            if (done) return url;
            logger.LogInformation("Backfill of {Shop}: bulk operation {Id} is no longer usable; starting the {Phase} query again", shop, existing, phase.Name);
        }
        var query = GraphQLDocuments.Load(phase.QueryPath).Replace("{since}",
            clock.GetUtcNow().AddDays(-options.Value.OrderHistoryDays).ToString("yyyy-MM-dd", CultureInfo.InvariantCulture), StringComparison.Ordinal);
        var started = await shopify.MutateAsync(shop, GraphQLDocuments.Load("Backfill/Queries/run-bulk-query.graphql"), new { query }, "bulkOperationRunQuery", ct);
        var id = started.GetProperty("bulkOperation").GetProperty("id").GetString()!;
        await Exec("UPDATE backfill_runs SET bulk_operation_id = $2, state = 'running', updated_at = $3 WHERE id = $1", ct, run.Id, id, clock.GetUtcNow());
        return (await WaitAsync(shop, id, throwOnFailure: true, ct)).Url;
    }

    /// <returns>Done = completed (Url null when it matched nothing); not done = failed, expired or unknown (only when not throwing).</returns>
    private async Task<(bool Done, string? Url)> WaitAsync(string shop, string id, bool throwOnFailure, CancellationToken ct)
    {
        var deadline = clock.GetUtcNow() + options.Value.MaxWait;
        while (true)
        {
            var node = (await shopify.ExecuteAsync(shop, GraphQLDocuments.Load("Backfill/Queries/bulk-operation.graphql"), new { id }, ct, expectedCost: 1))
                .GetProperty("node");
            var status = node.ValueKind == JsonValueKind.Object ? node.OptionalString("status") : null;
            switch (status)
            {
                case "COMPLETED":
                    return (true, node.OptionalString("url"));
                case "CREATED" or "RUNNING":
                    break;
                default:
                    if (throwOnFailure)
                        throw new ShopifyGraphQLException(shop, $"bulk operation {id} ended {status ?? "unknown"} ({(node.ValueKind == JsonValueKind.Object ? node.OptionalString("errorCode") : null)})");
                    return (false, null);
            }
            if (clock.GetUtcNow() > deadline) throw new TimeoutException($"{shop}: bulk operation {id} did not finish within {options.Value.MaxWait}");
            await Task.Delay(options.Value.PollInterval, clock, ct);
        }
    }

    /// <summary>
    /// Streams the JSONL into the phase's staging tables: each line parsed once and mapped to its rows as it arrives. The
    /// phase counts as staged only once every table's COPY has committed; a retry first removes what an earlier try left.
    /// </summary>
    private async Task<long> StageAsync(long runId, BackfillPhase phase, string url, CancellationToken ct)
    {
        using var http = httpFactory.CreateClient(DownloadClient);
        using var response = await http.GetAsync(url, HttpCompletionOption.ResponseHeadersRead, ct);
        response.EnsureSuccessStatusCode();
        await using var stream = await response.Content.ReadAsStreamAsync(ct);
        using var reader = new StreamReader(stream);

        await DeleteStagedAsync(runId, phase, ct);
        long lines = 0;
        await using (var rows = await StagedRows.OpenAsync(db, runId, phase.Tables, ct))
        {
            while (await reader.ReadLineAsync(ct) is { } raw)
            {
                if (raw.Length == 0) continue;
                // Why still strip: PostgreSQL text cannot hold U+0000, and not every string of a line is read through PayloadReader.
                using var doc = JsonDocument.Parse(JsonSanitizer.StripNul(raw));
                await phase.Stage(rows, ++lines, doc.RootElement, doc.RootElement.OptionalString("__parentId"));
            }
            await rows.CompleteAsync(ct);
        }
        await Exec("UPDATE backfill_runs SET staged_lines = $2, updated_at = $3 WHERE id = $1", ct, runId, lines, clock.GetUtcNow());
        return lines;
    }

    private async Task DeleteStagedAsync(long runId, BackfillPhase phase, CancellationToken ct)
    {
        await using var conn = await db.OpenConnectionAsync(ct);
        foreach (var t in phase.Tables) await Exec(conn, null, $"DELETE FROM {t.Name} WHERE run_id = $1", ct, runId);
    }

    /// <summary>
    /// Parents after the cursor, a chunk at a time, merged with their children by the phase's set-based statements; every
    /// chunk commits its rows and the cursor together, so a crash loses at most the chunk in flight (merged again on resume).
    /// </summary>
    private async Task<Run> ApplyAsync(Run run, BackfillPhase phase, CancellationToken ct)
    {
        var parents = phase.ParentTable.Name;
        // Objects done: the chunk's parent lines and the lines of their children (as counted when applied one by one).
        var chunk = $"SELECT id FROM {parents} WHERE run_id = $1 AND seq > $2 AND seq <= $3";
        var counted = string.Join(" + ", phase.Tables.Where(t => t.Parent is not null)
            .Select(t => $"(SELECT count(*) FROM {t.Name} c WHERE c.run_id = $1 AND c.{t.Parent} IN ({chunk}))")
            .Prepend($"(SELECT count(*) FROM ({chunk}) p)"));
        while (true)
        {
            await using var conn = await db.OpenConnectionAsync(ct);
            long through;
            await using (var cmd = new NpgsqlCommand($"""
                SELECT max(seq) FROM (SELECT seq FROM {parents} WHERE run_id = $1 AND seq > $2 ORDER BY seq LIMIT $3) chunk
                """, conn))
            {
                cmd.Parameters.AddWithValue(run.Id);
                cmd.Parameters.AddWithValue(run.Cursor);
                cmd.Parameters.AddWithValue(options.Value.ChunkSize);
                if (await cmd.ExecuteScalarAsync(ct) is not long last) return run;
                through = last;
            }

            await using var tx = await conn.BeginTransactionAsync(ct);
            await using var batch = new NpgsqlBatch(conn, tx);
            foreach (var sql in phase.Merge) Add(batch, sql, run.Id, run.ShopId, run.Cursor, through);
            Add(batch, $"""
                UPDATE backfill_runs SET phase_cursor = $3, rows_done = rows_done + {counted}, state = 'running', updated_at = $4
                WHERE id = $1 RETURNING rows_done
                """, run.Id, run.Cursor, through, clock.GetUtcNow());
            long rowsDone = run.RowsDone;
            await using (var r = await batch.ExecuteReaderAsync(ct))
                do { if (r.FieldCount > 0 && await r.ReadAsync(ct)) rowsDone = r.GetInt64(0); } while (await r.NextResultAsync(ct));
            await tx.CommitAsync(ct);
            run = run with { Cursor = through, RowsDone = rowsDone };
        }
    }

    private static void Add(NpgsqlBatch batch, string sql, params object?[] args)
    {
        var cmd = new NpgsqlBatchCommand(sql);
        foreach (var a in args) cmd.Parameters.Add(Sql.Param(a));
        batch.BatchCommands.Add(cmd);
    }

    private async Task<long> LiveShopIdAsync(string shop, CancellationToken ct) =>
        await shops.InstalledIdAsync(shop, ct) ?? throw new ShopNotConnectedException(shop, "the app is not installed");

    /// <summary>The shop's unfinished or failed run (resumed), else a new one.</summary>
    private async Task<Run> OpenRunAsync(long shopId, CancellationToken ct)
    {
        await using var cmd = db.CreateCommand("""
            WITH last AS (SELECT id FROM backfill_runs WHERE shop_id = $1 ORDER BY id DESC LIMIT 1),
            resumed AS (
              UPDATE backfill_runs b SET state = 'running', finished_at = NULL, attempts = attempts + 1, updated_at = $2
              FROM last WHERE b.id = last.id AND b.state <> 'completed'
              RETURNING b.id, b.shop_id, b.phase, b.bulk_operation_id, b.staged_lines, b.phase_cursor, b.phases_done, b.rows_done),
            created AS (
              INSERT INTO backfill_runs (shop_id, state, started_at, updated_at)
              SELECT $1, 'running', $2, $2 WHERE NOT EXISTS (SELECT 1 FROM resumed)
              RETURNING id, shop_id, phase, bulk_operation_id, staged_lines, phase_cursor, phases_done, rows_done)
            SELECT * FROM resumed UNION ALL SELECT * FROM created
            """);
        cmd.Parameters.AddWithValue(shopId);
        cmd.Parameters.AddWithValue(clock.GetUtcNow());
        await using var r = await cmd.ExecuteReaderAsync(ct);
        await r.ReadAsync(ct);
        return new Run(r.GetInt64(0), r.GetInt64(1), r.IsDBNull(2) ? null : r.GetString(2), r.IsDBNull(3) ? null : r.GetString(3),
            r.IsDBNull(4) ? null : r.GetInt64(4), r.GetInt64(5), r.GetFieldValue<string[]>(6), r.GetInt64(7));
    }

    private async Task Exec(string sql, CancellationToken ct, params object?[] args)
    {
        await using var conn = await db.OpenConnectionAsync(ct);
        await Exec(conn, null, sql, ct, args);
    }

    private static async Task Exec(NpgsqlConnection conn, NpgsqlTransaction? tx, string sql, CancellationToken ct, params object?[] args)
    {
        await using var cmd = new NpgsqlCommand(sql, conn, tx);
        foreach (var a in args) cmd.Parameters.Add(Sql.Param(a));
        await cmd.ExecuteNonQueryAsync(ct);
    }

}
