using System.Threading.Channels;
using Npgsql;
using NpgsqlTypes;

namespace PluginApp.Recommendations;

public sealed record Decision(string RequestId, long ShopId, string Placement, string Path, int? ModelVersion, string Arm, string? VisitorHash,
    long? CustomerId, long[] Inputs, long[] Outputs, float LatencyMs, DateTimeOffset At);

/// <summary>
/// Every answer served, written in batches off the request path with COPY. Why not in the request: logging
/// must not slow the storefront; a crash may lose the last fraction of a second of log, never an answer.
/// </summary>
public sealed class DecisionLog(NpgsqlDataSource db, ILogger<DecisionLog> logger) : BackgroundService
{
    private readonly Channel<Decision> _queue = Channel.CreateBounded<Decision>(new BoundedChannelOptions(100_000)
    {
        FullMode = BoundedChannelFullMode.DropOldest, SingleReader = true,
    });

    public void Record(Decision d) => _queue.Writer.TryWrite(d);

    protected override async Task ExecuteAsync(CancellationToken ct)
    {
        var batch = new List<Decision>(1000);
        try
        {
            while (await _queue.Reader.WaitToReadAsync(ct))
            {
                while (batch.Count < 1000 && _queue.Reader.TryRead(out var d)) batch.Add(d);
                await WriteAsync(batch);
                batch.Clear();
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested) { }
        while (_queue.Reader.TryRead(out var d)) batch.Add(d); // flush on shutdown
        await WriteAsync(batch);
    }

    /// <summary>Waits until everything recorded so far is written (tests, shutdown).</summary>
    public async Task FlushAsync(CancellationToken ct)
    {
        while (_queue.Reader.Count > 0) await Task.Delay(20, ct);
        await Task.Delay(50, ct);
    }

    private async Task WriteAsync(List<Decision> batch)
    {
        if (batch.Count == 0) return;
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
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException)
        {
            logger.LogWarning("Could not write {Count} decisions: {Message}", batch.Count, e.Message);
        }
    }
}
