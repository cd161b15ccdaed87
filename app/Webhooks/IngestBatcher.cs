using System.Threading.Channels;
using Microsoft.Extensions.Options;
using Npgsql;
using PluginApp.Data;
using PluginApp.StoreData;

namespace PluginApp.Webhooks;

/// <summary>Ingestion is stopping (the app is shutting down): the delivery was not stored and must be sent again.</summary>
public sealed class IngestStoppedException() : Exception("Webhook ingestion is stopping; the delivery was not stored.");

/// <summary>
/// Group commit: verified deliveries queue here, and a few writers each take what has arrived (up to MaxBatch, waiting at
/// most MaxWait for more), write it in one transaction with the same per-delivery code as a lone delivery, and answer every
/// delivery of the batch when that transaction has committed: one commit and one fsync for the batch. A delivery PostgreSQL
/// refuses, or whose step throws, aborts the transaction; the batch is written again without it (or with it kept aside as
/// failed), so it never fails its batch-mates. Copies of a delivery in one batch are written once: the first records the
/// delivery id, the copies find it. When the app stops, what is queued is still written (or failed, never answered 200).
/// </summary>
internal sealed class IngestBatcher : BackgroundService
{
    /// <summary>Times a batch is written again after PostgreSQL chose it as a deadlock's victim (batches of two instances can cross).</summary>
    private const int DeadlockRetries = 5;

    private readonly NpgsqlDataSource _dataSource;
    private readonly WebhookIngestor _ingestor;
    private readonly IngestOptions _options;
    private readonly TimeProvider _clock;
    private readonly ILogger<IngestBatcher> _logger;
    private readonly Channel<PendingDelivery> _queue;
    // Why its own token, not the stopping token: on stop the writers first drain the queue; this one cuts them off when the
    // host's shutdown time is up.
    private readonly CancellationTokenSource _abort = new();
    private int _waiting;

    public IngestBatcher(NpgsqlDataSource dataSource, WebhookIngestor ingestor, IOptions<IngestOptions> options, TimeProvider clock,
        ILogger<IngestBatcher> logger)
    {
        (_dataSource, _ingestor, _options, _clock, _logger) = (dataSource, ingestor, options.Value, clock, logger);
        _queue = Channel.CreateBounded<PendingDelivery>(new BoundedChannelOptions(_options.QueueCapacity)
        {
            FullMode = BoundedChannelFullMode.Wait,
            SingleWriter = false,
            SingleReader = _options.Writers == 1,
        });
    }

    /// <summary>Verifies the shop binding, parses, queues the delivery, and returns once its batch has committed.</summary>
    /// <exception cref="MalformedPayloadException">The body is not JSON or not the topic's shape; nothing was written.</exception>
    /// <exception cref="IngestStoppedException">The app is stopping; nothing was answered as stored.</exception>
    public async Task<IngestResult> IngestAsync(WebhookDeliveryHeaders h, byte[] signedBody, CancellationToken ct)
    {
        var (delivery, answer) = _ingestor.Prepare(h, signedBody);
        if (delivery is not null)
        {
            Interlocked.Increment(ref _waiting);
            try
            {
                try { await _queue.Writer.WriteAsync(delivery, ct); }
                catch (ChannelClosedException) { throw new IngestStoppedException(); }
                answer = await delivery.Answer.Task.WaitAsync(ct);
            }
            finally { Interlocked.Decrement(ref _waiting); }
        }
        if (answer!.Outcome == IngestOutcome.Refused) _ingestor.LogRefused(h, answer.Reason);
        return answer;
    }

    /// <summary>Deliveries queued or being written, not yet answered.</summary>
    internal int Waiting => Volatile.Read(ref _waiting);

    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        Task.WhenAll(Enumerable.Range(0, _options.Writers).Select(_ => Task.Run(() => WriteLoopAsync(stoppingToken), CancellationToken.None)));

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        // No new deliveries; the writers write what is queued, until the host's shutdown time is up.
        _queue.Writer.TryComplete();
        await using (cancellationToken.Register(_abort.Cancel))
            await base.StopAsync(cancellationToken);
    }

    public override void Dispose()
    {
        _abort.Dispose();
        base.Dispose();
    }

    private async Task WriteLoopAsync(CancellationToken stoppingToken)
    {
        var reader = _queue.Reader;
        var batch = new List<PendingDelivery>(_options.MaxBatch);
        try
        {
            // Why not the stopping token here: a stopping app still writes what it has queued (the channel completes instead).
            while (await reader.WaitToReadAsync(_abort.Token))
            {
                while (batch.Count < _options.MaxBatch && reader.TryRead(out var d)) batch.Add(d);
                if (batch.Count == 0) continue;
                if (batch.Count < _options.MaxBatch && _options.MaxWait > TimeSpan.Zero && !stoppingToken.IsCancellationRequested)
                    await FillAsync(batch, _abort.Token);
                await WriteBatchAsync(batch, _abort.Token);
                batch.Clear();
            }
        }
        catch (OperationCanceledException) when (_abort.IsCancellationRequested) { }
        finally
        {
            // Cut off at shutdown: whatever is left was not stored, and is not answered as if it were.
            foreach (var d in batch) d.Answer.TrySetException(new IngestStoppedException());
            while (reader.TryRead(out var d)) d.Answer.TrySetException(new IngestStoppedException());
        }
    }

    /// <summary>Waits up to MaxWait for more deliveries to share the batch's commit.</summary>
    private async Task FillAsync(List<PendingDelivery> batch, CancellationToken ct)
    {
        using var timer = new CancellationTokenSource(_options.MaxWait, _clock);
        using var window = CancellationTokenSource.CreateLinkedTokenSource(ct, timer.Token);
        var reader = _queue.Reader;
        try
        {
            while (batch.Count < _options.MaxBatch && await reader.WaitToReadAsync(window.Token))
                while (batch.Count < _options.MaxBatch && reader.TryRead(out var d)) batch.Add(d);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested) { } // the window closed
    }

    /// <summary>Writes the batch in one transaction and answers each delivery after the commit.</summary>
    private async Task WriteBatchAsync(List<PendingDelivery> batch, CancellationToken ct)
    {
        var live = new List<PendingDelivery>(batch);
        var results = new IngestResult[live.Count];
        var deadlocks = 0;
        var oneByOne = false;
        while (live.Count > 0)
        {
            int failed;
            Exception? failure;
            try
            {
                await using var conn = await _dataSource.OpenConnectionAsync(ct);
                await using var tx = await conn.BeginTransactionAsync(ct);
                (failed, failure) = await WriteInOneTransactionAsync(conn, tx, live, results, oneByOne, new HashSet<(string, string)>(), ct);
                // Why only on AllWritten: PostgreSQL answers COMMIT of an aborted transaction with a silent rollback.
                if (failed == AllWritten)
                {
                    await tx.CommitAsync(ct);
                    // Only now is every delivery of the batch durable: answer them.
                    for (var i = 0; i < live.Count; i++) live[i].Answer.TrySetResult(results[i]);
                    return;
                }
                // Disposing the transaction rolls it back; the batch is written again below.
            }
            catch (PostgresException e) when (e.SqlState is PostgresErrorCodes.DeadlockDetected or PostgresErrorCodes.SerializationFailure
                                              && ++deadlocks <= DeadlockRetries)
            {
                Operations.OperatorMetrics.WebhookBatchRetried("deadlock");
                _logger.LogWarning("A batch of {Count} webhook deliveries met another transaction's locks ({Error}); written again (retry {Retry})",
                    live.Count, e.MessageText, deadlocks);
                continue;
            }
            catch (Exception e)
            {
                // The database went away, the commit failed, or the app is stopping: nothing of the batch is known to be stored.
                if (!DatabaseUnavailable.Is(e) && e is not OperationCanceledException)
                    _logger.LogError(e, "A batch of {Count} webhook deliveries could not be stored", live.Count);
                var stopped = e is OperationCanceledException ? new IngestStoppedException() : e;
                foreach (var d in live) d.Answer.TrySetException(stopped);
                return;
            }

            if (failed == Ambiguous)
            {
                // Written again one delivery per round trip, where the error names its delivery.
                Operations.OperatorMetrics.WebhookBatchRetried("unattributed");
                oneByOne = true;
                continue;
            }
            Operations.OperatorMetrics.WebhookBatchRetried("delivery");
            var bad = live[failed];
            if (failure is not PostgresException pe || !_ingestor.TryKeepAside(bad, pe))
            {
                _logger.LogError(failure, "Webhook {DeliveryId} ({Topic}) could not be stored; its batch-mates are written without it",
                    bad.Headers.DeliveryId, bad.Headers.Topic);
                bad.Answer.TrySetException(failure!);
                live.RemoveAt(failed);
            }
        }
    }

    /// <summary>
    /// Writes the deliveries in order, in segments: one round trip records every delivery of a segment (claiming its id,
    /// learning its shop and whether it was replayed), the next writes their rows and records the next segment, so a batch
    /// takes a few round trips and one commit. Deliveries still see each other's effects in arrival order, as they would one
    /// transaction each: a segment ends before a delivery whose record could depend on an earlier one's rows (see
    /// <see cref="SegmentEnd"/>), and rows are written in arrival order (a step's statement for the whole segment comes at its
    /// end, see <see cref="SegmentRows"/>). With <paramref name="oneByOne"/>, each round trip
    /// carries one delivery's statements only, so an error names its delivery.
    /// </summary>
    /// <returns>
    /// -1 when all are written; else the delivery whose statement or step failed (the transaction is then aborted), or
    /// <see cref="Ambiguous"/> when a round trip failed and PostgreSQL's error does not say whose statement it was.
    /// </returns>
    private async Task<(int Failed, Exception? Failure)> WriteInOneTransactionAsync(NpgsqlConnection conn, NpgsqlTransaction tx,
        List<PendingDelivery> live, IngestResult[] results, bool oneByOne, ISet<(string Channel, string Payload)> notified, CancellationToken ct)
    {
        var trip = new NpgsqlBatch(conn, tx);
        var owners = new List<int>(); // which delivery each statement of the trip belongs to
        void Own(int i) { while (owners.Count < trip.BatchCommands.Count) owners.Add(i); }
        int OwnerOf(PostgresException e) =>
            e.BatchCommand is { } failing && trip.BatchCommands.IndexOf(failing) is >= 0 and var at ? owners[at]
            : owners.Distinct().Count() == 1 ? owners[0]
            : Ambiguous;
        var segmentRows = new SegmentRows();
        // The segment's rows and its steps' statements, one statement each, in their place; an error in one of them names its
        // delivery only when the segment had one.
        void PlaceSegmentRows(int rowsOwner)
        {
            var (at, count) = segmentRows.WriteTo(trip);
            owners.InsertRange(at, Enumerable.Repeat(rowsOwner, count));
            Own(rowsOwner);
        }
        async Task NextTripAsync()
        {
            await trip.DisposeAsync();
            trip = new NpgsqlBatch(conn, tx);
            owners.Clear();
        }
        try
        {
            foreach (var setting in PlanSettings) trip.BatchCommands.Add(new NpgsqlBatchCommand(setting));
            var recording = new List<int>();
            for (var start = 0; start < live.Count;)
            {
                var end = oneByOne ? start + 1 : SegmentEnd(live, start);
                recording.Clear();
                for (var i = start; i < end; i++)
                {
                    if (live[i].KeptAsideFor is null) recording.Add(i);
                    else
                    {
                        results[i] = WebhookIngestor.AddKeepFailed(trip, live[i]);
                        Own(i);
                    }
                }
                if (recording.Count > 0)
                {
                    WebhookIngestor.AddRecords(trip, recording.Select(i => live[i]).ToList());
                    // Why ambiguous for several: an error in the one statement that records them does not say whose it was.
                    Own(recording.Count == 1 ? recording[0] : Ambiguous);
                    Dictionary<string, (long? ShopId, string Outcome)> recorded;
                    try
                    {
                        await using var reader = await trip.ExecuteReaderAsync(ct);
                        recorded = await WebhookIngestor.ReadRecordsAsync(reader, ct);
                    }
                    catch (PostgresException e) when (IsTheDeliverys(e)) { return (OwnerOf(e), e); }
                    await NextTripAsync();
                    foreach (var i in recording)
                    {
                        (long? ShopId, string Outcome)? answer = recorded.TryGetValue(live[i].Headers.DeliveryId, out var a) ? a : null;
                        try { results[i] = _ingestor.AddRows(trip, live[i], answer, notified, segmentRows); }
                        catch (Exception e) when (IsTheDeliverys(e)) { return (i, e); } // a step's own code threw
                        Own(i);
                    }
                    PlaceSegmentRows(recording.Count == 1 ? recording[0] : Ambiguous);
                }
                start = end;
                if ((oneByOne || start == live.Count) && trip.BatchCommands.Count > 0)
                {
                    try { await trip.ExecuteNonQueryAsync(ct); }
                    catch (PostgresException e) when (IsTheDeliverys(e)) { return (OwnerOf(e), e); }
                    await NextTripAsync();
                }
            }
            return (AllWritten, null);
        }
        finally { await trip.DisposeAsync(); }
    }

    /// <summary>
    /// Where the segment that starts at <paramref name="start"/> ends: before the first delivery whose record could read an
    /// earlier delivery's rows of the same segment, which are written only after all of its records, or whose rows would
    /// meet an earlier one's in the same statement. A record reads the shop row, its own delivery id and the ids the
    /// delivery owns; so a delivery that changes shops (app/uninstalled, shop/redact, a compliance topic) is a segment of its
    /// own, and a segment ends at a copy of a delivery already in it, and where a delivery owns or writes an id an earlier
    /// one owns or writes: of another shop, that earlier delivery's rows decide whether this one is a replay; of the same
    /// shop, the segment's customers, orders and lines are one statement per table (<see cref="SegmentRows"/>), which may
    /// hold each key once.
    /// </summary>
    private static int SegmentEnd(IReadOnlyList<PendingDelivery> live, int start)
    {
        static bool Alone(PendingDelivery d) => d.Headers.Topic is WebhookTopics.AppUninstalled or WebhookTopics.ShopRedact
                                                || d.Handler is null || d.Handler.ActsOnUninstalledShop;
        if (Alone(live[start])) return start + 1;
        var owned = new HashSet<(char Kind, string Id)>();
        var deliveries = new HashSet<string>();
        for (var i = start; i < live.Count; i++)
        {
            var d = live[i];
            // A copy of a delivery must meet the earlier copy's outcome: a refused one's record is deleted only with the rows.
            if (Alone(d) || !deliveries.Add(d.Headers.DeliveryId)) return i;
            var ids = Ids(d).ToList();
            if (ids.Any(owned.Contains)) return i;
            owned.UnionWith(ids);
        }
        return live.Count;
    }

    /// <summary>The ids a delivery owns, and the customer its rows write (an order's or a checkout's customer).</summary>
    private static IEnumerable<(char Kind, string Id)> Ids(PendingDelivery d)
    {
        var ids = Owned(d.Owned);
        return d.CustomerId is { } customer ? ids.Append(('c', customer.ToString(System.Globalization.CultureInfo.InvariantCulture))) : ids;
    }

    private static IEnumerable<(char Kind, string Id)> Owned(OwnedIds o) =>
        o.Orders.Select(id => ('o', id.ToString(System.Globalization.CultureInfo.InvariantCulture)))
            .Concat(o.Customers.Select(id => ('c', id.ToString(System.Globalization.CultureInfo.InvariantCulture))))
            .Concat(o.Products.Select(id => ('p', id.ToString(System.Globalization.CultureInfo.InvariantCulture))))
            .Concat(o.CheckoutTokens.Select(t => ('k', t)))
            .Concat(o.CartTokens.Select(t => ('t', t)));

    /// <summary>
    /// How the batch's statements are planned. Why one plan per prepared statement: they are key lookups and upserts whose
    /// best plan is the same for every shop, and planning them on every call was a fifth of the machine's time under load
    /// (the app's connections plan every call otherwise; see DataExtensions); "auto" still planned the delivery record each
    /// time, as its planned-with-values cost always looked lower. Why no sequential scans: a plan made while the tables were
    /// nearly empty (a fresh deploy, a fresh database) scanned every other shop's orders and customers for each delivery's
    /// replay check, until autovacuum's ANALYZE made PostgreSQL plan again; where an index exists, it is used from the start.
    /// </summary>
    internal static readonly string[] PlanSettings = ["SET LOCAL plan_cache_mode = force_generic_plan", "SET LOCAL enable_seqscan = off"];

    private const int AllWritten = -1;
    private const int Ambiguous = -2;

    /// <summary>
    /// Whether an error raised while writing one delivery is that delivery's own (its data, its step's code), so the others can
    /// be written without it; a lost connection, a deadlock or a stop concerns the whole batch.
    /// </summary>
    private static bool IsTheDeliverys(Exception e) => e switch
    {
        OperationCanceledException => false,
        PostgresException p => p.SqlState is not (PostgresErrorCodes.DeadlockDetected or PostgresErrorCodes.SerializationFailure) && !DatabaseUnavailable.Is(p),
        NpgsqlException => false,
        _ => true,
    };
}
