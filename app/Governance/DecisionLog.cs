using System.Collections.Concurrent;
using System.Threading.Channels;
using Npgsql;
using NpgsqlTypes;
using PluginApp.Data;

namespace PluginApp.Governance;

/// <summary>The decision kinds the log holds, one per thing the app decides.</summary>
public static class DecisionKinds
{
    public const string Upsell = "upsell", Offer = "offer", Risk = "risk", Churn = "churn";
    public static readonly string[] All = [Upsell, Offer, Risk, Churn];
}

/// <summary>
/// One decision, of any kind: what answered (<see cref="Path"/>, and whether that was a fallback), which model version and
/// experiment arm, what it looked at and what it said, in words, and how long it took. Personal inputs are hashed or left out
/// by the feature; the customer id is kept so the merchant can search by it and redaction can find it.
/// </summary>
public sealed record Decision(string Kind, string DecisionId, long ShopId, DateTimeOffset At, string Path)
{
    /// <summary>What the decision was about or chose: the placement of an upsell, a cart's action, an order's level, a customer's segment.</summary>
    public string? Subject { get; init; }
    public bool Fallback { get; init; }
    public string? ModelKind { get; init; }
    public int? ModelVersion { get; init; }
    public string? Arm { get; init; }
    public long? OrderId { get; init; }
    public long? CustomerId { get; init; }
    public string? VisitorHash { get; init; }
    public string? CartToken { get; init; }
    public long[] InputIds { get; init; } = [];
    public long[] OutputIds { get; init; } = [];
    /// <summary>Derived inputs as a JSON object.</summary>
    public string? Inputs { get; init; }
    /// <summary>The answer as a JSON object.</summary>
    public string? Output { get; init; }
    public string[] Reasons { get; init; } = [];
    public float? LatencyMs { get; init; }
    /// <summary>A candidate model's answer to the same request (logged beside the active one's, never shown), as JSON.</summary>
    public string? Shadow { get; init; }
}

/// <summary>
/// The one decision log. Storefront answers are recorded off the request path and written in batches with COPY (why:
/// logging must not slow the storefront; a crash may lose the last fraction of a second of log, never an answer; a batch
/// that meets a database error is kept and written again with growing delays). Decisions made inside a transaction commit
/// with what they decided: risk scores with <see cref="WriteInTransactionAsync"/> (one COPY), churn segments with their own
/// set-based INSERT after <see cref="AddPartition"/>; a cart offer is written before its answer leaves with <see cref="WriteAsync"/>.
/// </summary>
public sealed class DecisionLog : BackgroundService
{
    private readonly NpgsqlDataSource db;
    private readonly TimeProvider clock;
    private readonly ILogger<DecisionLog> logger;
    private readonly Channel<Decision> _queue;
    // Months whose partition this instance has seen to exist in its database (dropped by retention only long after).
    private readonly ConcurrentDictionary<int, bool> _partitions = new();

    public DecisionLog(NpgsqlDataSource db, TimeProvider clock, ILogger<DecisionLog> logger)
    {
        this.db = db;
        this.clock = clock;
        this.logger = logger;
        _queue = Channel.CreateBounded<Decision>(new BoundedChannelOptions(100_000)
        {
            FullMode = BoundedChannelFullMode.DropOldest, SingleReader = true,
        }, _ => Interlocked.Increment(ref _settled));
    }

    private const string Columns = """
        shop_id, decided_at, decision_id, kind, subject, path, fallback, model_kind, model_version, arm, order_id, customer_id, visitor_hash,
        cart_token, input_ids, output_ids, inputs, output, reasons, latency_ms, shadow
        """;

    private const string InsertSql = $"""
        INSERT INTO decisions ({Columns})
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17::jsonb, $18::jsonb, $19, $20, $21::jsonb)
        """;

    /// <summary>
    /// A new id for a decision that has no natural one (a storefront answer, a cart offer): a version 7 UUID, 32 hex digits.
    /// Why time first: the log indexes its ids, and ids in time order are added at the index's right edge instead of a random
    /// page each; the time it reveals is in the answer's tokens anyway.
    /// </summary>
    public static string NewId(DateTimeOffset at) => Guid.CreateVersion7(at).ToString("N");

    /// <summary>Makes the month's partition if it is missing (a catalog lookup when it is there).</summary>
    private const string PartitionSql = "SELECT decisions_partition_for($1)";

    private static readonly TimeSpan MaxRetryDelay = TimeSpan.FromSeconds(30);

    /// <summary>
    /// A queued decision written later than this after it was made (the database was out of reach) is written without the
    /// ids that tie it to a shopper (customer, visitor, cart) and its inputs, as an erasure leaves a decision. Why: a
    /// customers/redact that came in meanwhile has run both its passes by then (its second waits longer than this,
    /// <see cref="PluginApp.Compliance.ErasureSecondPassJob.Delay"/>), and would not see the decision; until 5 Dec 2026 such
    /// a decision was written with her ids after her erasure. What the decision answered, and why, stays.
    /// </summary>
    public static readonly TimeSpan LateAfter = TimeSpan.FromMinutes(1);

    private long _recorded, _settled; // settled = written, or dropped because the queue overflowed

    /// <summary>Queues a decision for the next batch (storefront answers).</summary>
    public void Record(Decision d)
    {
        Interlocked.Increment(ref _recorded);
        if (!_queue.Writer.TryWrite(d)) Interlocked.Increment(ref _settled);
    }

    /// <summary>Writes one decision now.</summary>
    public async Task WriteAsync(Decision d, CancellationToken ct)
    {
        await using var conn = await db.OpenConnectionAsync(ct);
        await EnsurePartitionAsync(conn, d.At, ct);
        await using var cmd = new NpgsqlCommand(InsertSql, conn);
        AddParameters(cmd.Parameters, d);
        try { await cmd.ExecuteNonQueryAsync(ct); }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.CheckViolation)
        {
            // No partition for the row after all (dropped by retention, or made in a transaction that rolled back): make it, once.
            _partitions.Clear();
            await EnsurePartitionAsync(conn, d.At, ct);
            await cmd.ExecuteNonQueryAsync(ct);
        }
    }

    /// <summary>For a caller that writes its decisions with its own set-based INSERT: makes sure the month's partition exists first
    /// (a catalog lookup when it does).</summary>
    public static void AddPartition(NpgsqlBatch batch, DateTimeOffset at) =>
        batch.BatchCommands.Add(new NpgsqlBatchCommand(PartitionSql) { Parameters = { Sql.Param(at) } });

    private static void AddParameters(NpgsqlParameterCollection p, Decision d)
    {
        p.Add(Sql.Param(d.ShopId));
        p.Add(Sql.Param(d.At));
        p.Add(Sql.Param(d.DecisionId));
        p.Add(Sql.Param(d.Kind));
        p.Add(Sql.Text(d.Subject));
        p.Add(Sql.Param(d.Path));
        p.Add(Sql.Param(d.Fallback));
        p.Add(Sql.Text(d.ModelKind));
        p.Add(new NpgsqlParameter { Value = (object?)d.ModelVersion ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Integer });
        p.Add(Sql.Text(d.Arm));
        p.Add(new NpgsqlParameter { Value = (object?)d.OrderId ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Bigint });
        p.Add(new NpgsqlParameter { Value = (object?)d.CustomerId ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Bigint });
        p.Add(Sql.Text(d.VisitorHash));
        p.Add(Sql.Text(d.CartToken));
        p.Add(new NpgsqlParameter { Value = d.InputIds, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bigint });
        p.Add(new NpgsqlParameter { Value = d.OutputIds, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bigint });
        p.Add(Sql.Text(d.Inputs));
        p.Add(Sql.Text(d.Output));
        p.Add(new NpgsqlParameter { Value = d.Reasons, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
        p.Add(new NpgsqlParameter { Value = (object?)d.LatencyMs ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Real });
        p.Add(Sql.Text(d.Shadow));
    }

    private static int MonthKey(DateTimeOffset at) => at.UtcDateTime.Year * 12 + at.UtcDateTime.Month;

    private async Task EnsurePartitionAsync(NpgsqlConnection conn, DateTimeOffset at, CancellationToken ct)
    {
        if (_partitions.ContainsKey(MonthKey(at))) return;
        await using var cmd = new NpgsqlCommand(PartitionSql, conn);
        cmd.Parameters.Add(Sql.Param(at));
        await cmd.ExecuteNonQueryAsync(ct);
        _partitions[MonthKey(at)] = true;
    }

    protected override async Task ExecuteAsync(CancellationToken ct)
    {
        var batch = new List<Decision>(1000);
        try
        {
            while (await _queue.Reader.WaitToReadAsync(ct))
            {
                while (batch.Count < 1000 && _queue.Reader.TryRead(out var d)) batch.Add(d);
                for (var delay = TimeSpan.FromMilliseconds(250); !await CopyAsync(batch); delay = Min(delay * 2, MaxRetryDelay))
                    await Task.Delay(delay, ct);
                Interlocked.Add(ref _settled, batch.Count);
                batch.Clear();
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested) { }
        while (_queue.Reader.TryRead(out var d)) batch.Add(d); // flush on shutdown: one last try
        if (!await CopyAsync(batch)) logger.LogWarning("Shutting down with {Count} decisions not written", batch.Count);
    }

    private static TimeSpan Min(TimeSpan a, TimeSpan b) => a < b ? a : b;

    /// <summary>Waits until everything recorded so far is written (tests, shutdown).</summary>
    public async Task FlushAsync(CancellationToken ct)
    {
        var target = Interlocked.Read(ref _recorded);
        while (Interlocked.Read(ref _settled) < target) await Task.Delay(20, ct);
    }

    /// <returns>False when the database refused the batch (it is kept and tried again).</returns>
    private async Task<bool> CopyAsync(List<Decision> batch)
    {
        if (batch.Count == 0) return true;
        var now = clock.GetUtcNow();
        for (var i = 0; i < batch.Count; i++)
            if (batch[i] is { } d && now - d.At > LateAfter && (d.CustomerId is not null || d.VisitorHash is not null || d.CartToken is not null || d.Inputs is not null))
                batch[i] = d with { CustomerId = null, VisitorHash = null, CartToken = null, Inputs = null };
        try
        {
            await using var conn = await db.OpenConnectionAsync();
            foreach (var month in batch.Select(d => d.At).DistinctBy(MonthKey)) await EnsurePartitionAsync(conn, month, CancellationToken.None);
            await CopyRowsAsync(conn, batch, CancellationToken.None);
            return true;
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException or IOException)
        {
            logger.LogWarning("Could not write {Count} decisions yet ({Message}); keeping them and trying again", batch.Count, e.Message);
            _partitions.Clear(); // a partition dropped or never committed is not there: look again
            return false;
        }
    }

    /// <summary>
    /// Writes many decisions in the caller's transaction (open on <paramref name="conn"/>) with one COPY, after making sure
    /// their months' partitions exist: they commit, or not, with what they decided. For a job that decides in batches (risk
    /// scores), where one statement per decision cost more than the decisions.
    /// </summary>
    public static async Task WriteInTransactionAsync(NpgsqlConnection conn, IReadOnlyCollection<Decision> decisions, CancellationToken ct)
    {
        if (decisions.Count == 0) return;
        foreach (var month in decisions.Select(d => d.At).DistinctBy(MonthKey))
        {
            await using var cmd = new NpgsqlCommand(PartitionSql, conn);
            cmd.Parameters.Add(Sql.Param(month));
            await cmd.ExecuteNonQueryAsync(ct);
        }
        await CopyRowsAsync(conn, decisions, ct);
    }

    private static async Task CopyRowsAsync(NpgsqlConnection conn, IEnumerable<Decision> batch, CancellationToken ct)
    {
        await using var copy = await conn.BeginBinaryImportAsync($"COPY decisions ({Columns}) FROM STDIN (FORMAT BINARY)", ct);
        foreach (var d in batch)
        {
            await copy.StartRowAsync(ct);
            await copy.WriteAsync(d.ShopId, NpgsqlDbType.Bigint, ct);
            await copy.WriteAsync(d.At, NpgsqlDbType.TimestampTz, ct);
            await copy.WriteAsync(d.DecisionId, NpgsqlDbType.Text, ct);
            await copy.WriteAsync(d.Kind, NpgsqlDbType.Text, ct);
            await Nullable(copy, d.Subject, NpgsqlDbType.Text);
            await copy.WriteAsync(d.Path, NpgsqlDbType.Text, ct);
            await copy.WriteAsync(d.Fallback, NpgsqlDbType.Boolean, ct);
            await Nullable(copy, d.ModelKind, NpgsqlDbType.Text);
            if (d.ModelVersion is { } v) await copy.WriteAsync(v, NpgsqlDbType.Integer, ct); else await copy.WriteNullAsync(ct);
            await Nullable(copy, d.Arm, NpgsqlDbType.Text);
            if (d.OrderId is { } o) await copy.WriteAsync(o, NpgsqlDbType.Bigint, ct); else await copy.WriteNullAsync(ct);
            if (d.CustomerId is { } c) await copy.WriteAsync(c, NpgsqlDbType.Bigint, ct); else await copy.WriteNullAsync(ct);
            await Nullable(copy, d.VisitorHash, NpgsqlDbType.Text);
            await Nullable(copy, d.CartToken, NpgsqlDbType.Text);
            await copy.WriteAsync(d.InputIds, NpgsqlDbType.Array | NpgsqlDbType.Bigint, ct);
            await copy.WriteAsync(d.OutputIds, NpgsqlDbType.Array | NpgsqlDbType.Bigint, ct);
            await Nullable(copy, d.Inputs, NpgsqlDbType.Jsonb);
            await Nullable(copy, d.Output, NpgsqlDbType.Jsonb);
            await copy.WriteAsync(d.Reasons, NpgsqlDbType.Array | NpgsqlDbType.Text, ct);
            if (d.LatencyMs is { } l) await copy.WriteAsync(l, NpgsqlDbType.Real, ct); else await copy.WriteNullAsync(ct);
            await Nullable(copy, d.Shadow, NpgsqlDbType.Jsonb);
        }
        await copy.CompleteAsync(ct);
    }

    private static async Task Nullable(NpgsqlBinaryImporter copy, string? value, NpgsqlDbType type)
    {
        if (value is null) await copy.WriteNullAsync(); else await copy.WriteAsync(value, type);
    }
}
