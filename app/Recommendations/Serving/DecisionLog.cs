using System.Threading.Channels;
using Npgsql;
using NpgsqlTypes;

namespace PluginApp.Recommendations;

public sealed record Decision(string RequestId, long ShopId, string Placement, string Path, int? ModelVersion, string Arm, string? VisitorHash,
    long? CustomerId, long[] Inputs, long[] Outputs, float LatencyMs, DateTimeOffset At);

/// <summary>
/// Every answer served, written in batches off the request path with COPY. Why not in the request: logging
/// must not slow the storefront; a crash may lose the last fraction of a second of log, never an answer. A batch that
/// meets a database error is kept and written again with growing delays, so an outage delays the log but does not cut it.
/// </summary>
public sealed class DecisionLog : BackgroundService
{
    private readonly NpgsqlDataSource db;
    private readonly ILogger<DecisionLog> logger;
    private readonly Channel<Decision> _queue;

    public DecisionLog(NpgsqlDataSource db, ILogger<DecisionLog> logger)
    {
        this.db = db;
        this.logger = logger;
        _queue = Channel.CreateBounded<Decision>(new BoundedChannelOptions(100_000)
        {
            FullMode = BoundedChannelFullMode.DropOldest, SingleReader = true,
        }, _ => Interlocked.Increment(ref _settled));
    }

    private static readonly TimeSpan MaxRetryDelay = TimeSpan.FromSeconds(30);

    private long _recorded, _settled; // settled = written, or dropped because the queue overflowed


    public void Record(Decision d)
    {
        Interlocked.Increment(ref _recorded);
        if (!_queue.Writer.TryWrite(d)) Interlocked.Increment(ref _settled);
    }

    protected override async Task ExecuteAsync(CancellationToken ct)
    {
        var batch = new List<Decision>(1000);
        try
        {
            while (await _queue.Reader.WaitToReadAsync(ct))
            {
                while (batch.Count < 1000 && _queue.Reader.TryRead(out var d)) batch.Add(d);
                for (var delay = TimeSpan.FromMilliseconds(250); !await WriteAsync(batch); delay = Min(delay * 2, MaxRetryDelay))
                    await Task.Delay(delay, ct);
                Interlocked.Add(ref _settled, batch.Count);
                batch.Clear();
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested) { }
        while (_queue.Reader.TryRead(out var d)) batch.Add(d); // flush on shutdown: one last try
        if (!await WriteAsync(batch)) logger.LogWarning("Shutting down with {Count} decisions not written", batch.Count);
    }

    private static TimeSpan Min(TimeSpan a, TimeSpan b) => a < b ? a : b;

    /// <summary>Waits until everything recorded so far is written (tests, shutdown).</summary>
    public async Task FlushAsync(CancellationToken ct)
    {
        var target = Interlocked.Read(ref _recorded);
        while (Interlocked.Read(ref _settled) < target) await Task.Delay(20, ct);
    }

    /// <returns>False when the database refused the batch (it is kept and tried again).</returns>
    private async Task<bool> WriteAsync(List<Decision> batch)
    {
        if (batch.Count == 0) return true;
        try
        {
            await using var conn = await db.OpenConnectionAsync();
            await using var copy = await conn.BeginBinaryImportAsync("""
                COPY recommendation_decisions (request_id, shop_id, placement, path, model_version, experiment_arm, visitor_hash, customer_id,
                  input_products, output_products, latency_ms, decided_at) FROM STDIN (FORMAT BINARY)
                """);
            foreach (var d in batch)
            {
                await copy.StartRowAsync();
                await copy.WriteAsync(d.RequestId, NpgsqlDbType.Text);
                await copy.WriteAsync(d.ShopId, NpgsqlDbType.Bigint);
                await copy.WriteAsync(d.Placement, NpgsqlDbType.Text);
                await copy.WriteAsync(d.Path, NpgsqlDbType.Text);
                if (d.ModelVersion is { } v) await copy.WriteAsync(v, NpgsqlDbType.Integer); else await copy.WriteNullAsync();
                await copy.WriteAsync(d.Arm, NpgsqlDbType.Text);
                if (d.VisitorHash is { } h) await copy.WriteAsync(h, NpgsqlDbType.Text); else await copy.WriteNullAsync();
                if (d.CustomerId is { } c) await copy.WriteAsync(c, NpgsqlDbType.Bigint); else await copy.WriteNullAsync();
                await copy.WriteAsync(d.Inputs, NpgsqlDbType.Array | NpgsqlDbType.Bigint);
                await copy.WriteAsync(d.Outputs, NpgsqlDbType.Array | NpgsqlDbType.Bigint);
                await copy.WriteAsync(d.LatencyMs, NpgsqlDbType.Real);
                await copy.WriteAsync(d.At, NpgsqlDbType.TimestampTz);
            }
            await copy.CompleteAsync();
            return true;
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException or IOException)
        {
            logger.LogWarning("Could not write {Count} decisions yet ({Message}); keeping them and trying again", batch.Count, e.Message);
            return false;
        }
    }
}
