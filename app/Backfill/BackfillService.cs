using System.Buffers;
using System.Globalization;
using System.Runtime.ExceptionServices;
using System.IO.Pipelines;
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
/// Imports a shop's history with bulk queries (products, customers, then a year of orders), all started at once. Each
/// phase's JSONL is streamed with COPY into backfill_lines as soon as Shopify has it ready (children may come before or
/// after their parents, so the file is staged, never held in memory; the app does not parse it), then merged into the
/// store, phase after phase, a chunk of parents at a time by set-based upserts under the webhook path's rules
/// (<see cref="StoreMerge"/>), each chunk committed with the run's cursor. A run interrupted anywhere resumes: a staged
/// phase continues after its cursor; a phase whose file was not fully staged waits for the same bulk operation again and
/// re-stages it.
/// </summary>
public sealed class BackfillService(NpgsqlDataSource db, ShopLookup shops, AdminGraphQLClient shopify, IHttpClientFactory httpFactory, JobLocks locks, RunLog runs,
    IEnumerable<BackfillMergeStep> steps, PluginApp.Install.ShopScopes scopes, IOptions<BackfillOptions> options, TimeProvider clock, ILogger<BackfillService> logger)
{
    private readonly BackfillMergeStep[] _steps = steps.ToArray();

    public const string DownloadClient = "bulk-download";

    /// <summary>The lock a shop's import holds while it runs, on whichever instance: one import per shop at a time.</summary>
    public static string LockKey(string shop) => $"backfill:{shop}";

    /// <param name="Phase">The phase being merged.</param>
    /// <param name="BulkOperations">Each phase's bulk operation, once started.</param>
    /// <param name="Staged">Each fully staged phase's line count.</param>
    /// <param name="Cursor">The last staged line of the phase whose chunk, and every chunk before it, is merged.</param>
    /// <param name="MergedAhead">Chunks after the cursor that are merged too: each one's first (exclusive) and last line, flattened.</param>
    private sealed record Run(long Id, long ShopId, string? Phase, IReadOnlyDictionary<string, string> BulkOperations, IReadOnlyDictionary<string, long> Staged,
        long Cursor, string[] PhasesDone, long RowsDone, long[] MergedAhead);

    /// <summary>Runs (or resumes) the shop's backfill. One per shop at a time across every instance: a second caller waits, then runs its own.</summary>
    public async Task RunAsync(string shop, CancellationToken ct)
    {
        await using var lease = await locks.AcquireAsync(LockKey(shop), ct);
        await RunHeldAsync(shop, await LiveShopIdAsync(shop, ct), ct);
    }

    /// <summary>
    /// The queued backfill of a shop (<see cref="BackfillJob"/>): runs or resumes its import, unless another worker runs it
    /// now, or it was imported since this install. Why: the install's setup is queued again when Shopify did not answer its
    /// settings read, and a second job waited for the lock, holding one of the two long workers for the whole import, then
    /// imported the whole store again (until 6 Dec 2026).
    /// </summary>
    /// <param name="askedAt">When a merchant asked to import the store again (<see cref="BackfillAdminApi"/>): then it runs
    /// although the store was imported, unless an import completed after she asked (a second click, or a job run twice).</param>
    /// <returns>Whether it ran.</returns>
    public async Task<bool> RunQueuedAsync(string shop, DateTimeOffset? askedAt, CancellationToken ct)
    {
        await using var lease = await locks.TryAcquireAsync(LockKey(shop), ct);
        if (lease is null)
        {
            logger.LogInformation("Backfill of {Shop} already runs on another worker; this request is left to it", shop);
            return false;
        }
        var shopId = await LiveShopIdAsync(shop, ct);
        await using (var cmd = db.CreateCommand("""
            SELECT b.state = 'completed' AND CASE WHEN $2::timestamptz IS NULL THEN b.started_at >= s.installed_at ELSE b.finished_at >= $2 END
            FROM backfill_runs b JOIN shops s ON s.id = b.shop_id WHERE b.shop_id = $1 ORDER BY b.id DESC LIMIT 1
            """))
        {
            cmd.Parameters.AddWithValue(shopId);
            cmd.Parameters.Add(Sql.Param(TypedNull.Time(askedAt)));
            if (await cmd.ExecuteScalarAsync(ct) is true)
            {
                logger.LogInformation("Backfill of {Shop} skipped: the store was imported since {Since}", shop, askedAt is null ? "it was installed" : "it was asked for");
                return false;
            }
        }
        await RunHeldAsync(shop, shopId, ct);
        return true;
    }

    private async Task RunHeldAsync(string shop, long shopId, CancellationToken ct)
    {
        var run = await OpenRunAsync(shopId, ct);
        try
        {
            var pending = BackfillPhase.All.Where(p => !run.PhasesDone.Contains(p.Name)).ToArray();
            // Why every phase's file at once: Shopify runs up to five bulk queries per shop at a time (API 2026-01 on), so the
            // run waits for the slowest file rather than for each in turn, and a file is staged while earlier phases merge.
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
            // Why name the first phase now: the admin shows it while Shopify builds the files (a large store's take minutes).
            if (run.Phase is null && pending.Length > 0) run = await EnterPhaseAsync(run, pending[0], ct);
            var start = run;
            var staging = pending.ToDictionary(p => p.Name, p => StagePhaseAsync(shop, start, p, stop.Token));
            try
            {
                foreach (var phase in pending)
                    run = await MergePhaseAsync(run, phase, await staging[phase.Name], ct);
                await MergeRefundLinesAsync(shop, run.ShopId, ct);
            }
            catch
            {
                // Why wait for them: a staging must not go on writing after its run has failed (and been retried).
                await stop.CancelAsync();
                try { await Task.WhenAll(staging.Values); }
                catch (Exception) when (stop.IsCancellationRequested) { }
                throw;
            }
            await AnalyzeStoreAsync(ct);
            await runs.FinishAsync(RunLog.Backfill, run.Id, "completed", null, new() { ["phase"] = null });
            logger.LogInformation("Backfill of {Shop} completed: {Rows} objects", shop, run.RowsDone);
        }
        catch (Exception e) when (!ct.IsCancellationRequested)
        {
            // A retry of the job resumes this run from its cursor; after the last retry it stays failed. Why the job's own
            // token decides, not the exception's type: Shopify reads that time out end in a TaskCanceledException too, and the
            // run must not be shown running for ever. A run whose job was cancelled (the app shutting down) stays running, and
            // the job's retry resumes it; one deleted from the Hangfire dashboard stays running until it is asked for again.
            await runs.FinishAsync(RunLog.Backfill, run.Id, "failed", e.Message, []);
            throw;
        }
    }

    /// <summary>Refunds asked for at once, and each one's lines on the first page (a few hundred of Shopify's cost points a
    /// query); refunds read from the store, and their lines written, a page at a time.</summary>
    internal const int RefundsPerQuery = 8, RefundLinesFirst = 25, RefundLinesNext = 100, RefundsPerPage = 1000, RefundQueriesAtOnce = 4;

    /// <summary>
    /// The lines of the store's refunds that have none stored, asked of Shopify a few refunds at a time (a refund with more
    /// lines than the first page has them paged after). Why not from the orders' file: Shopify's bulk export refuses a
    /// connection inside a list, and a refund's line items are a connection inside the order's list of refunds; until 6 Dec
    /// 2026 the orders' query asked for them there, and Shopify refused the whole query, so no store's order history came
    /// in. A page of refunds' lines is written with one statement, the webhook path's upsert of refund lines in its form for
    /// many rows (a first version had PostgreSQL read the answers' JSON and find each refund's order, and cost the
    /// benchmark's import of Online Retail 5–8 s). A run that stops here asks again for the refunds still without lines
    /// when it resumes.
    /// </summary>
    private async Task MergeRefundLinesAsync(string shop, long shopId, CancellationToken ct)
    {
        // A money set's amount in the shop's currency, or null.
        static decimal? ShopAmount(JsonElement line, string set) => line.TryGetProperty(set, out var s) && s.ValueKind == JsonValueKind.Object
            ? decimal.Parse(s.GetProperty("shopMoney").GetProperty("amount").GetString()!, CultureInfo.InvariantCulture) : null;
        var document = GraphQLDocuments.Load("Backfill/Queries/refund-lines.graphql");
        long after = 0, asked = 0;
        while (true)
        {
            var orderOf = new Dictionary<long, long>(RefundsPerPage);
            await using (var cmd = db.CreateCommand("""
                SELECT f.id, f.order_id FROM refunds f
                WHERE f.shop_id = $1 AND f.id > $2 AND NOT EXISTS (SELECT 1 FROM refund_lines l WHERE l.shop_id = f.shop_id AND l.refund_id = f.id)
                ORDER BY f.id LIMIT $3
                """))
            {
                cmd.Parameters.AddWithValue(shopId);
                cmd.Parameters.AddWithValue(after);
                cmd.Parameters.AddWithValue(RefundsPerPage);
                await using var r = await cmd.ExecuteReaderAsync(ct);
                while (await r.ReadAsync(ct)) { after = r.GetInt64(0); orderOf[after] = r.GetInt64(1); }
            }
            if (orderOf.Count == 0) break;
            asked += orderOf.Count;
            // Each (refund, order line) once, its last reading standing, as the upsert's form for many rows needs.
            var rows = new Dictionary<(long Refund, long Line), object?[]>();
            void Add(Dictionary<(long Refund, long Line), object?[]> into, JsonElement refund, JsonElement lines)
            {
                var refundId = Gid.Id(refund.GetProperty("id").GetString()!);
                foreach (var l in lines.GetProperty("nodes").EnumerateArray())
                {
                    if (l.TryGetProperty("lineItem", out var item) && item.ValueKind == JsonValueKind.Object && item.GetProperty("id").GetString() is { } itemGid)
                    {
                        var line = Gid.Id(itemGid);
                        into[(refundId, line)] = [shopId, l.TryGetProperty("id", out var id) && id.GetString() is { } gid ? Gid.Id(gid) : null, refundId,
                            orderOf[refundId], line, l.GetProperty("quantity").GetInt32(),
                            ShopAmount(l, "subtotalSet"),
                            l.TryGetProperty("restockType", out var restock) && restock.GetString() is { } type ? type.ToLowerInvariant() : null,
                            ShopAmount(l, "totalTaxSet")];
                    }
                }
            }
            // Why a few queries at once: one after another, a store of 50,000 refunds waits on 6,250 answers in turn; the
            // client paces them by the shop's bucket all the same.
            await Parallel.ForEachAsync(orderOf.Keys.Chunk(RefundsPerQuery), new ParallelOptions { MaxDegreeOfParallelism = RefundQueriesAtOnce, CancellationToken = ct },
                async (ids, token) =>
            {
                var found = new Dictionary<(long Refund, long Line), object?[]>();
                JsonElement refunds;
                // Why go on past Shopify's refusal of a few refunds: the store's history is merged by now, and a run failed
                // here would be retried whole and never train; those refunds stay without lines, asked again next import.
                // A failure to reach Shopify (its network, a timeout) still fails the run, to be resumed here.
                try
                {
                    refunds = (await shopify.ExecuteAsync(shop, document,
                        new { ids = ids.Select(id => Gid.Of("Refund", id)).ToArray(), first = RefundLinesFirst, after = (string?)null }, token,
                        expectedCost: RefundsPerQuery * (3 + RefundLinesFirst * 4))).GetProperty("nodes");
                }
                catch (ShopifyGraphQLException e)
                {
                    logger.LogWarning("Backfill of {Shop}: Shopify refused the lines of refunds {Ids}: {Message}", shop, string.Join(", ", ids), e.Message);
                    return;
                }
                foreach (var refund in refunds.EnumerateArray())
                {
                    // Null: a refund Shopify no longer has; not one of those asked: nothing to write.
                    if (refund.ValueKind != JsonValueKind.Object || !refund.TryGetProperty("refundLineItems", out var lines)
                        || !orderOf.ContainsKey(Gid.Id(refund.GetProperty("id").GetString()!))) continue;
                    Add(found, refund, lines);
                    for (var (more, cursor) = NextPage(lines); more;)
                    {
                        var next = (await shopify.ExecuteAsync(shop, document,
                            new { ids = new[] { refund.GetProperty("id").GetString() }, first = RefundLinesNext, after = cursor }, token,
                            expectedCost: 3 + RefundLinesNext * 4)).GetProperty("nodes");
                        if (next.GetArrayLength() != 1 || next[0].ValueKind != JsonValueKind.Object || !next[0].TryGetProperty("refundLineItems", out var following))
                        {
                            // Half a refund's lines would stand for all of them (a refund with lines is not asked again): none.
                            var refundId = Gid.Id(refund.GetProperty("id").GetString()!);
                            foreach (var key in found.Keys.Where(k => k.Refund == refundId).ToList()) found.Remove(key);
                            break;
                        }
                        Add(found, refund, following);
                        (more, cursor) = NextPage(following);
                    }
                }
                lock (rows) foreach (var (key, row) in found) rows[key] = row;
            });
            if (rows.Count == 0) continue;
            await using var conn = await db.OpenConnectionAsync(ct);
            await using var batch = new NpgsqlBatch(conn);
            batch.BatchCommands.Add(StoreWriter.RefundLineUpsert.ForRows(rows.Values.ToList()));
            await batch.ExecuteNonQueryAsync(ct);
        }
        if (asked > 0) logger.LogInformation("Backfill of {Shop}: asked Shopify for the lines of {Refunds} refunds", shop, asked);

        static (bool More, string? Cursor) NextPage(JsonElement connection) =>
            connection.TryGetProperty("pageInfo", out var info) && info.TryGetProperty("hasNextPage", out var more) && more.ValueKind == JsonValueKind.True
                ? (true, info.GetProperty("endCursor").GetString()) : (false, null);
    }

    /// <summary>
    /// Why: a backfill adds a store's whole history at once, and until autovacuum next analyzes the tables (a minute or more
    /// later) the planner's statistics describe them without it. The trainings queued at the end plan their queries at once:
    /// on the statistics of the tables before a second store of Online Retail's size came in, the recommender's query chose
    /// a nested loop that ran for over 15 minutes instead of 1 s. Table by table on the merge's connections.
    /// </summary>
    private async Task AnalyzeStoreAsync(CancellationToken ct) =>
        await Parallel.ForEachAsync(BackfillPhase.All.SelectMany(p => p.Tables),
            new ParallelOptions { MaxDegreeOfParallelism = options.Value.MergeConnections, CancellationToken = ct },
            async (table, token) => await Exec($"ANALYZE {table}", token));

    /// <summary>A phase's staged lines, numbered 1 to <paramref name="Lines"/>.</summary>
    /// <param name="Now">Staged by this attempt, which moves a cursor into the phase back to its start.</param>
    /// <param name="ChunkEnds">When staged now: where each chunk but the last ends, from the start (see <see cref="NextChunkAsync"/>).</param>
    private sealed record Staged(long Lines, bool Now, long[]? ChunkEnds);

    /// <summary>The phase's file staged (or found staged by an earlier attempt, unless a PostgreSQL crash emptied the unlogged lines).</summary>
    private async Task<Staged> StagePhaseAsync(string shop, Run run, BackfillPhase phase, CancellationToken ct)
    {
        if (run.Staged.TryGetValue(phase.Name, out var lines) && (lines == 0 || await HasStagedLinesAsync(run.Id, phase.Name, ct)))
            return new(lines, false, null);
        var url = await BulkResultUrlAsync(shop, run, phase, ct);
        if (url is not null) return await StageAsync(run.Id, phase, url, ct);
        await Exec("UPDATE backfill_runs SET staged = staged || jsonb_build_object($2::text, 0) WHERE id = $1", ct, run.Id, phase.Name);
        return new(0, true, []);
    }

    /// <summary>The phase being merged (or, before any, the first to be) is <paramref name="phase"/>, from its first line.</summary>
    private async Task<Run> EnterPhaseAsync(Run run, BackfillPhase phase, CancellationToken ct)
    {
        await Exec("UPDATE backfill_runs SET phase = $2, phase_cursor = 0, merged_ahead = '{}', updated_at = $3 WHERE id = $1", ct,
            run.Id, phase.Name, clock.GetUtcNow());
        return run with { Phase = phase.Name, Cursor = 0, MergedAhead = [] };
    }

    private async Task<Run> MergePhaseAsync(Run run, BackfillPhase phase, Staged staged, CancellationToken ct)
    {
        if (run.Phase != phase.Name) run = await EnterPhaseAsync(run, phase, ct);
        // Staged now, the phase's lines replace any staged before, and are merged from the top (StageAsync reset the cursor).
        else if (staged.Now) run = run with { Cursor = 0, MergedAhead = [] };
        if (staged.Lines > 0) run = await ApplyAsync(run, phase, staged, ct);
        await using (var conn = await db.OpenConnectionAsync(ct))
        await using (var tx = await conn.BeginTransactionAsync(ct))
        {
            await DropStagedLinesAsync(conn, tx, run.Id, phase.Name, ct);
            await Exec(conn, tx, """
                UPDATE backfill_runs SET phases_done = array_append(phases_done, $2), bulk_operations = bulk_operations - $2, staged = staged - $2,
                  phase_cursor = 0, merged_ahead = '{}', updated_at = $3 WHERE id = $1
                """, ct, run.Id, phase.Name, clock.GetUtcNow());
            await tx.CommitAsync(ct);
        }
        return run with { PhasesDone = [.. run.PhasesDone, phase.Name], Cursor = 0, MergedAhead = [] };
    }

    /// <summary>The finished bulk operation's file: the one this run already started when it is still usable, else a new one.</summary>
    private async Task<string?> BulkResultUrlAsync(string shop, Run run, BackfillPhase phase, CancellationToken ct)
    {
        if (run.BulkOperations.GetValueOrDefault(phase.Name) is { } existing)
        {
            var (done, url) = await WaitAsync(shop, existing, throwOnFailure: false, ct);
            if (done) return url;
            logger.LogInformation("Backfill of {Shop}: bulk operation {Id} is no longer usable; starting the {Phase} query again", shop, existing, phase.Name);
        }
        // Why the granted scopes: without read_all_orders Shopify answers for the last 60 days only, whatever the query asks,
        // so the import asks for what it will get and the Operations page can say so.
        var days = options.Value.OrderDays(await scopes.GrantedAsync(run.ShopId, BackfillOptions.ReadAllOrders, ct));
        var query = GraphQLDocuments.Load(phase.QueryPath).Replace("{since}",
            clock.GetUtcNow().AddDays(-days).ToString("yyyy-MM-dd", CultureInfo.InvariantCulture), StringComparison.Ordinal);
        var started = await shopify.MutateAsync(shop, GraphQLDocuments.Load("Backfill/Queries/run-bulk-query.graphql"), new { query }, "bulkOperationRunQuery", ct);
        var id = started.GetProperty("bulkOperation").GetProperty("id").GetString()!;
        await Exec("UPDATE backfill_runs SET bulk_operations = bulk_operations || jsonb_build_object($2::text, $3::text), updated_at = $4 WHERE id = $1", ct,
            run.Id, phase.Name, id, clock.GetUtcNow());
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
    /// Streams the JSONL into backfill_lines in one transaction, so a phase is either fully staged or not at all. The app
    /// splits lines, reads each one's parent id (<see cref="BulkLine"/>) and strips NUL from the rare line that holds one;
    /// PostgreSQL checks that each line is JSON and keeps it as json, and the merge converts each line to jsonb once, on
    /// its two connections (converting them here, and reading the parent id from the jsonb, took about 40 % of the
    /// staging, all of it on the one connection every later step waits for). An order's line items, nine in ten of a
    /// store's lines, are read by the app and staged as the values they give order_lines (<see cref="BulkLineItem"/>):
    /// converting and shaping them from JSON was more than half of the order lines' merge statement. Why binary COPY written by hand: each line
    /// goes from the download's buffer to the connection's as the bytes it came as, in 64 KB messages (a text COPY turned
    /// every line into UTF-16 and back, one write per line, and PostgreSQL spent most of the staging waiting for the app).
    /// </summary>
    private async Task<Staged> StageAsync(long runId, BackfillPhase phase, string url, CancellationToken ct)
    {
        using var http = httpFactory.CreateClient(DownloadClient);
        using var response = await http.GetAsync(url, HttpCompletionOption.ResponseHeadersRead, ct);
        response.EnsureSuccessStatusCode();
        await using var stream = await response.Content.ReadAsStreamAsync(ct);
        var pipe = PipeReader.Create(stream, new StreamPipeReaderOptions(bufferSize: 1 << 16, leaveOpen: true));

        await using var conn = await db.OpenConnectionAsync(ct);
        await using var tx = await conn.BeginTransactionAsync(ct);
        // Why lock the run: backfill_lines has no foreign key (its check cost as much as the COPY); this is the lock the check
        // took per line, once, so the run (and its shop) cannot be deleted under the staging, and a deleted run stages nothing.
        await using (var run = new NpgsqlCommand("SELECT 1 FROM backfill_runs WHERE id = $1 FOR KEY SHARE", conn, tx) { Parameters = { new() { Value = runId } } })
            if (await run.ExecuteScalarAsync(ct) is null) throw new InvalidOperationException($"backfill run {runId} no longer exists (its shop was removed)");
        await Exec(conn, tx, "DELETE FROM backfill_lines WHERE run_id = $1 AND phase = $2", ct, runId, phase.Name);
        long lines;
        // Why note the chunks' ends here: the merge found each with a query that read a chunk's parent lines first (31-41 ms a
        // chunk, while the other connections waited to take or commit theirs); the staging sees every parent go by.
        var chunkEnds = new List<long>();
        long parents = 0;
        var item = phase.LineItemChildren ? new BulkLineItem() : null;
        await using (var copy = await conn.BeginRawBinaryCopyAsync($"COPY backfill_lines ({StagedLineWriter.Columns}) FROM STDIN (FORMAT binary)", ct))
        {
            var rows = new StagedLineWriter(copy, runId, phase.Name);
            try
            {
                while (true)
                {
                    var read = await pipe.ReadAsync(ct);
                    var buffer = read.Buffer;
                    while (buffer.PositionOf((byte)'\n') is { } end)
                    {
                        await WriteLineAsync(buffer.Slice(0, end));
                        buffer = buffer.Slice(buffer.GetPosition(1, end));
                    }
                    if (read.IsCompleted)
                    {
                        await WriteLineAsync(buffer); // a last line without its newline
                        break;
                    }
                    pipe.AdvanceTo(buffer.Start, buffer.End);
                }
                lines = await rows.CompleteAsync(ct);
            }
            catch
            {
                // Why: ending the stream would send what was written as a complete COPY; the server must drop it instead.
                // A connection already broken cannot cancel; the error that broke it is the one to report.
                try { await copy.CancelAsync(); }
                catch (NpgsqlException) { }
                throw;
            }

            ValueTask WriteLineAsync(ReadOnlySequence<byte> line)
            {
                var bytes = line.IsSingleSegment ? line.First : line.ToArray();
                if (bytes.Length > 0 && bytes.Span[^1] == (byte)'\r') bytes = bytes[..^1];
                if (bytes.IsEmpty) return ValueTask.CompletedTask;
                // Why: PostgreSQL refuses a line that is not UTF-8, and one such line would fail the whole phase on every retry;
                // it is read as the text it was before binary staging (invalid bytes become U+FFFD).
                if (!System.Text.Unicode.Utf8.IsValid(bytes.Span)) bytes = System.Text.Encoding.UTF8.GetBytes(System.Text.Encoding.UTF8.GetString(bytes.Span));
                // Why: jsonb (which the merge reads the lines as) cannot hold U+0000, and a shopper can type it into an order note.
                if (JsonSanitizer.HasNul(bytes.Span)) bytes = JsonSanitizer.StripNul(bytes.ToArray());
                var parentId = BulkLine.ParentId(bytes.Span);
                if (parentId is null)
                {
                    // The parent after every ChunkSize of them begins a chunk; the chunk before ends at the line before it.
                    if (parents > 0 && parents % options.Value.ChunkSize == 0) chunkEnds.Add(rows.Lines);
                    parents++;
                }
                else if (item is not null)
                {
                    item.Read(bytes.Span);
                    return rows.AddAsync(item, parentId.Value, ct);
                }
                return rows.AddAsync(bytes.Span, parentId, ct);
            }
        }
        await pipe.CompleteAsync();
        // Why: the merge's plans need the table's statistics (without them a chunk can scan every staged line per parent).
        await Exec(conn, tx, "ANALYZE backfill_lines", ct);
        // Why the cursor too, when the phase is the one merging: these lines replace any staged before (a PostgreSQL crash, or a
        // new bulk operation's file), and a cursor into the old ones would skip the start of the new.
        await Exec(conn, tx, """
            UPDATE backfill_runs SET staged = staged || jsonb_build_object($4::text, $2::int8),
              phase_cursor = CASE WHEN phase = $4 THEN 0 ELSE phase_cursor END, merged_ahead = CASE WHEN phase = $4 THEN '{}' ELSE merged_ahead END, updated_at = $3
            WHERE id = $1
            """, ct, runId, lines, clock.GetUtcNow(), phase.Name);
        await tx.CommitAsync(ct);
        return new(lines, true, [.. chunkEnds]);
    }

    /// <summary>
    /// Drops a merged phase's staged lines. Why TRUNCATE when they are the only lines staged (one backfill at a time, the usual
    /// case): deleting a large store's half a million lines row by row took 0.5 s and left the table to vacuum. Another run's
    /// lines, or another run staging or merging (its lock), make it a DELETE of this phase's lines alone.
    /// </summary>
    private static async Task DropStagedLinesAsync(NpgsqlConnection conn, NpgsqlTransaction tx, long runId, string phase, CancellationToken ct)
    {
        await tx.SaveAsync("drop_staged", ct);
        try
        {
            await Exec(conn, tx, "LOCK TABLE backfill_lines IN ACCESS EXCLUSIVE MODE NOWAIT", ct);
            // Why row comparisons on both partial indexes (every line is in one of them): each reads a few index pages, where
            // "run_id <> $1" would read every line.
            await using var others = new NpgsqlCommand("""
                SELECT EXISTS (SELECT 1 FROM backfill_lines WHERE parent_id IS NULL AND (run_id, phase) < ($1, $2))
                    OR EXISTS (SELECT 1 FROM backfill_lines WHERE parent_id IS NULL AND (run_id, phase) > ($1, $2))
                    OR EXISTS (SELECT 1 FROM backfill_lines WHERE parent_id IS NOT NULL AND (run_id, phase) < ($1, $2))
                    OR EXISTS (SELECT 1 FROM backfill_lines WHERE parent_id IS NOT NULL AND (run_id, phase) > ($1, $2))
                """, conn, tx);
            others.Parameters.Add(Sql.Param(runId));
            others.Parameters.Add(Sql.Param(phase));
            if (!(bool)(await others.ExecuteScalarAsync(ct))!)
            {
                await Exec(conn, tx, "TRUNCATE backfill_lines", ct);
                return;
            }
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.LockNotAvailable) { }
        // Why back to the savepoint: it releases the table's lock (or clears the failed attempt) before the DELETE.
        await tx.RollbackAsync("drop_staged", ct);
        await Exec(conn, tx, "DELETE FROM backfill_lines WHERE run_id = $1 AND phase = $2", ct, runId, phase);
    }

    private async Task<bool> HasStagedLinesAsync(long runId, string phase, CancellationToken ct)
    {
        await using var cmd = db.CreateCommand("SELECT EXISTS (SELECT 1 FROM backfill_lines WHERE run_id = $1 AND phase = $2)");
        cmd.Parameters.AddWithValue(runId);
        cmd.Parameters.AddWithValue(phase);
        return (bool)(await cmd.ExecuteScalarAsync(ct))!;
    }

    /// <summary>
    /// Parents after the cursor, a chunk at a time, merged with their children by the phase's set-based statements, on
    /// <see cref="BackfillOptions.MergeConnections"/> connections at once. Every chunk commits its rows with the run's
    /// progress: the cursor moves past the chunks merged without a gap before them, and a chunk merged while an earlier one is
    /// still in flight is recorded in merged_ahead, so a resumed run neither skips the earlier chunk nor merges (and counts)
    /// the later one again. A crash loses at most the chunks in flight (merged again on resume); one chunk failing stops the
    /// others.
    /// </summary>
    private async Task<Run> ApplyAsync(Run run, BackfillPhase phase, Staged staged, CancellationToken ct)
    {
        var progress = new MergeProgress(run, staged.Lines, staged.ChunkEnds) { IntoEmpty = await HoldsNoneAsync(run.ShopId, phase, ct) };
        if (progress.IntoEmpty)
            logger.LogInformation("Backfill run {Run}: the store holds none of the {Phase} yet; merging them by plain inserts", run.Id, phase.Name);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var merges = Enumerable.Range(0, options.Value.MergeConnections).Select(async _ =>
        {
            try { await MergeChunksAsync(phase, progress, stop.Token); }
            catch
            {
                await stop.CancelAsync();
                throw;
            }
        }).ToArray();
        try { await Task.WhenAll(merges); }
        catch
        {
            // Why not WhenAll's exception: it is the first task's, which may be a merge the failing one stopped.
            if (merges.FirstOrDefault(m => m.IsFaulted) is { } failed) ExceptionDispatchInfo.Throw(failed.Exception!.InnerException!);
            throw;
        }
        return progress.Run;
    }

    private async Task MergeChunksAsync(BackfillPhase phase, MergeProgress progress, CancellationToken ct)
    {
        while (await NextChunkAsync(phase, progress, ct) is (var from, var through))
            for (var attempt = 1; ; attempt++)
            {
                var intoEmpty = progress.IntoEmpty;
                try
                {
                    await MergeChunkAsync(phase, progress, from, through, intoEmpty, ct);
                    break;
                }
                // Why: a row of the chunk was stored after the phase began (by a webhook, or by another chunk when the file names
                // an object twice); the chunk is merged again, and every chunk after it, by the upserts and their rules.
                catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UniqueViolation && intoEmpty)
                {
                    progress.IntoEmpty = false;
                    logger.LogInformation("Backfill run {Run}: chunk ({From}, {Through}] of {Phase} met a row stored meanwhile ({Constraint}); merging by upserts from here on",
                        progress.Run.Id, from, through, phase.Name, e.ConstraintName);
                }
                // Why: chunks hold disjoint objects, but a file naming one object twice (in two chunks) can make two merges
                // wait for each other; PostgreSQL stops one, which merges again once the other has committed.
                catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.DeadlockDetected && attempt < 3)
                {
                    logger.LogInformation("Backfill run {Run}: chunk ({From}, {Through}] of {Phase} met a deadlock; merging it again", progress.Run.Id, from, through, phase.Name);
                }
            }
    }

    /// <summary>
    /// The next chunk to merge: the lines after the last one handed out up to the line before the parent that follows the
    /// next <see cref="BackfillOptions.ChunkSize"/> parent lines (or up to the phase's last line), passing over chunks merged
    /// ahead before a restart. Null when none is left.
    /// </summary>
    /// <remarks>Why a chunk ends just before the next parent rather than at its own last one: line numbers run 1 to the phase's
    /// line count without a gap, so the chunks' ranges cover every line once, and a chunk's lines (its parents, and the
    /// children that follow them as a file usually lists them) are counted as its end minus its start, with no query. A phase
    /// staged by this attempt has its chunks' ends noted by the staging; one staged by an earlier attempt finds them by query.</remarks>
    private async Task<(long From, long Through)?> NextChunkAsync(BackfillPhase phase, MergeProgress progress, CancellationToken ct)
    {
        await progress.Gate.WaitAsync(ct);
        try
        {
            while (progress.HandedOut < progress.Lines)
            {
                var through = progress.NotedEnd() ?? await StagedChunkEndAsync(phase, progress, ct);
                var from = progress.HandedOut;
                if (progress.HandOut(through)) return (from, through);
            }
            return null;
        }
        finally { progress.Gate.Release(); }
    }

    /// <summary>The end of the chunk after the last one handed out, from the staged parent lines.</summary>
    private async Task<long> StagedChunkEndAsync(BackfillPhase phase, MergeProgress progress, CancellationToken ct)
    {
        await using var cmd = db.CreateCommand("""
            SELECT line_no - 1 FROM backfill_lines WHERE run_id = $1 AND phase = $2 AND parent_id IS NULL AND line_no > $3
            ORDER BY line_no OFFSET $4 LIMIT 1
            """);
        cmd.Parameters.AddWithValue(progress.Run.Id);
        cmd.Parameters.AddWithValue(phase.Name);
        cmd.Parameters.AddWithValue(progress.HandedOut);
        cmd.Parameters.AddWithValue(options.Value.ChunkSize);
        return await cmd.ExecuteScalarAsync(ct) as long? ?? progress.Lines;
    }

    /// <summary>One chunk's rows in one transaction, committed with the run's progress.</summary>
    private async Task MergeChunkAsync(BackfillPhase phase, MergeProgress progress, long from, long through, bool intoEmpty, CancellationToken ct)
    {
        var run = progress.Run;
        await using var conn = await db.OpenConnectionAsync(ct);
        await using var tx = await conn.BeginTransactionAsync(ct);
        await using (var batch = new NpgsqlBatch(conn, tx))
        {
            // Why no JIT: the planner reckons each jsonb_array_elements call at 100 rows, so a chunk's merge looks like
            // millions of rows and PostgreSQL compiled it for every chunk (300 ms of a 325 ms statement) to run a few thousand.
            Add(batch, "SET LOCAL jit = off");
            // Why: a chunk's order lines (about 28,000 for 1,000 orders) are sorted by id, and in the default 4 MB the sort spilled to disk.
            Add(batch, "SET LOCAL work_mem = '32MB'");
            // Why: order_lines has no foreign key to shops (its check ran per line); this holds the shop's row as the check did,
            // once, so the shop cannot be deleted under the chunk and leave lines behind.
            Add(batch, "SELECT FROM shops WHERE id = $1 FOR KEY SHARE", run.ShopId);
            // The phase's upserts, then each feature's step for the phase (after the rows it reads are written).
            foreach (var sql in phase.Merge.Select(m => intoEmpty ? m.IntoEmpty : m.Sql).Concat(_steps.Where(s => s.Phase == phase.Name).Select(s => s.Sql)))
                Add(batch, sql, run.Id, run.ShopId, from, through);
            await batch.ExecuteNonQueryAsync(ct);
        }
        // Objects done: the chunk's lines, each an object (see NextChunkAsync).
        var objects = through - from;
        // Why one commit at a time: each writes the progress that holds once it commits, which depends on the chunks before it.
        await progress.Gate.WaitAsync(ct);
        try
        {
            var (cursor, ahead) = progress.IfMerged((from, through));
            await using var cmd = new NpgsqlCommand("""
                UPDATE backfill_runs SET phase_cursor = $2, merged_ahead = $3, rows_done = rows_done + $4, updated_at = $5, state = 'running'
                WHERE id = $1 RETURNING rows_done
                """, conn, tx);
            foreach (var a in new object[] { run.Id, cursor, ahead, objects, clock.GetUtcNow() }) cmd.Parameters.Add(Sql.Param(a));
            var rowsDone = (long)(await cmd.ExecuteScalarAsync(ct))!;
            await tx.CommitAsync(ct);
            progress.Merged((from, through), cursor, ahead, rowsDone);
        }
        finally { progress.Gate.Release(); }
    }

    /// <summary>A phase's merge in progress: the chunks handed out and those merged, from which each commit's cursor and
    /// merged_ahead follow. Used under <see cref="Gate"/>.</summary>
    /// <remarks>Why chunks are known by both ends: a chunk is passed over only when exactly it was merged, so a chunk size
    /// changed between a crash and the resume merges again (idempotently) instead of passing over lines no chunk merged.</remarks>
    private sealed class MergeProgress(Run run, long lines, long[]? chunkEnds)
    {
        /// <summary>The phase's staged lines, numbered 1 to this.</summary>
        public long Lines { get; } = lines;

        /// <summary>The end of the chunk after the last one handed out, when the staging noted them (the merge then starts
        /// at the phase's first line); else null.</summary>
        public long? NotedEnd()
        {
            if (chunkEnds is null) return null;
            foreach (var end in chunkEnds)
                if (end > HandedOut) return end;
            return Lines;
        }

        private volatile bool _intoEmpty;

        /// <summary>Whether chunks are merged by the plain inserts of a store that holds none of the phase's rows
        /// (<see cref="MergeStatement.IntoEmpty"/>); false from the first row stored meanwhile.</summary>
        public bool IntoEmpty { get => _intoEmpty; set => _intoEmpty = value; }

        public SemaphoreSlim Gate { get; } = new(1, 1);

        /// <summary>As committed last.</summary>
        public Run Run { get; private set; } = run;

        /// <summary>The last line of the last chunk handed out.</summary>
        public long HandedOut { get; private set; } = run.Cursor;

        private readonly List<(long From, long Through)> _open = []; // handed out after the cursor, in line order
        private readonly HashSet<(long From, long Through)> _merged = [.. Pairs(run.MergedAhead)];

        /// <returns>False when exactly this chunk was merged before (the caller takes the next).</returns>
        public bool HandOut(long through)
        {
            var chunk = (HandedOut, through);
            HandedOut = through;
            _open.Add(chunk);
            return !_merged.Contains(chunk);
        }

        /// <summary>The cursor and merged_ahead (each chunk's first and last line, flattened) once <paramref name="chunk"/> commits.</summary>
        public (long Cursor, long[] Ahead) IfMerged((long From, long Through) chunk)
        {
            var cursor = Run.Cursor;
            foreach (var c in _open)
            {
                if (c != chunk && !_merged.Contains(c)) break;
                cursor = c.Through;
            }
            return (cursor, _merged.Append(chunk).Where(c => c.From >= cursor).Order().SelectMany(c => new[] { c.From, c.Through }).ToArray());
        }

        public void Merged((long From, long Through) chunk, long cursor, long[] ahead, long rowsDone)
        {
            _merged.Add(chunk);
            _merged.RemoveWhere(c => c.From < cursor);
            _open.RemoveAll(c => c.Through <= cursor);
            Run = Run with { Cursor = cursor, MergedAhead = ahead, RowsDone = rowsDone };
        }

        private static IEnumerable<(long, long)> Pairs(long[] flat)
        {
            for (var i = 0; i + 1 < flat.Length; i += 2) yield return (flat[i], flat[i + 1]);
        }
    }

    private static void Add(NpgsqlBatch batch, string sql, params object?[] args)
    {
        var cmd = new NpgsqlBatchCommand(sql);
        foreach (var a in args) cmd.Parameters.Add(Sql.Param(a));
        batch.BatchCommands.Add(cmd);
    }

    /// <summary>Whether the shop has no row in any table the phase writes (a first import, with no webhook stored yet).</summary>
    private async Task<bool> HoldsNoneAsync(long shopId, BackfillPhase phase, CancellationToken ct)
    {
        await using var cmd = db.CreateCommand($"SELECT NOT ({string.Join(" OR ", phase.Tables.Select(t => $"EXISTS (SELECT 1 FROM {t} WHERE shop_id = $1)"))})");
        cmd.Parameters.AddWithValue(shopId);
        return (bool)(await cmd.ExecuteScalarAsync(ct))!;
    }

    private async Task<long> LiveShopIdAsync(string shop, CancellationToken ct) =>
        await shops.InstalledIdAsync(shop, ct) ?? throw new ShopNotConnectedException(shop, "the app is not installed");

    /// <summary>
    /// The shop's unfinished or failed run of this install (resumed), else a new one. Why of this install: a run left by an
    /// install the merchant removed skipped what was written while the app was away (deliveries then are not stored), and
    /// its phases marked done and its bulk files would have been reused; until 7 Dec 2026 a reinstall within days resumed it.
    /// Such a run still marked running (stopped by a shutdown, its retry finding the shop uninstalled) is closed as failed
    /// when the new one starts: the new-orders training waits for a running import, and would have waited for good.
    /// </summary>
    private async Task<Run> OpenRunAsync(long shopId, CancellationToken ct)
    {
        await using var cmd = db.CreateCommand("""
            WITH last AS (SELECT id FROM backfill_runs WHERE shop_id = $1 ORDER BY id DESC LIMIT 1),
            resumed AS (
              UPDATE backfill_runs b SET state = 'running', finished_at = NULL, attempts = attempts + 1, updated_at = $2
              FROM last WHERE b.id = last.id AND b.state <> 'completed'
                AND b.started_at >= (SELECT s.installed_at FROM shops s WHERE s.id = b.shop_id)
              RETURNING b.id, b.shop_id, b.phase, b.bulk_operations::text, b.staged::text, b.phase_cursor, b.phases_done, b.rows_done, b.merged_ahead),
            created AS (
              INSERT INTO backfill_runs (shop_id, state, started_at, updated_at)
              SELECT $1, 'running', $2, $2 WHERE NOT EXISTS (SELECT 1 FROM resumed)
              RETURNING id, shop_id, phase, bulk_operations::text, staged::text, phase_cursor, phases_done, rows_done, merged_ahead),
            superseded AS (
              UPDATE backfill_runs b SET state = 'failed', finished_at = $2, updated_at = $2,
                error = coalesce(b.error || '; ', '') || 'left by an earlier install; the store is imported anew'
              WHERE b.shop_id = $1 AND b.state = 'running' AND EXISTS (SELECT 1 FROM created))
            SELECT * FROM resumed UNION ALL SELECT * FROM created
            """);
        cmd.Parameters.AddWithValue(shopId);
        cmd.Parameters.AddWithValue(clock.GetUtcNow());
        await using var r = await cmd.ExecuteReaderAsync(ct);
        await r.ReadAsync(ct);
        return new Run(r.GetInt64(0), r.GetInt64(1), r.IsDBNull(2) ? null : r.GetString(2),
            JsonSerializer.Deserialize<Dictionary<string, string>>(r.GetString(3))!, JsonSerializer.Deserialize<Dictionary<string, long>>(r.GetString(4))!,
            r.GetInt64(5), r.GetFieldValue<string[]>(6), r.GetInt64(7), r.GetFieldValue<long[]>(8));
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
