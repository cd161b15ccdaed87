using System.Diagnostics.Metrics;
using Microsoft.Extensions.Options;
using Npgsql;
using PluginApp.Outbox;

namespace PluginApp.Operations;

/// <summary>
/// The outbox backlog as gauges: calls to Shopify pending (due or backing off) and failed for good, and how long the
/// oldest due call has waited. Read from the database at most once per <see cref="OperationsOptions.OutboxBacklogRefresh"/>,
/// in the background: a scrape never waits on the query and a storm of scrapes starts one read. Why a meter of the host
/// (IMeterFactory) rather than a static one: the gauges read this host's database and must go with it.
/// </summary>
internal sealed class OutboxBacklog : IDisposable
{
    // Both counts use partial indexes (pending: outbox_pending_idx; failed: outbox_failed_idx), not the sent calls kept 30 days.
    private const string Sql = $"""
        SELECT (SELECT count(*) FROM outbox_messages WHERE {OutboxDrainer.InLine}),
               (SELECT min(next_attempt_at) FROM outbox_messages WHERE {OutboxDrainer.InLine}),
               (SELECT count(*) FROM outbox_messages WHERE failed_at IS NOT NULL)
        """;

    private sealed record Figures(long Pending, long Failed, double OldestDueSeconds);

    private readonly NpgsqlDataSource _db;
    private readonly TimeProvider _clock;
    private readonly TimeSpan _refresh;
    private readonly ILogger<OutboxBacklog> _logger;
    private readonly CancellationTokenSource _stopping = new();
    private Figures? _figures;
    private long _readAtTicks; // 0: never read
    private int _reading;

    public OutboxBacklog(NpgsqlDataSource db, IMeterFactory meters, IOptions<OperationsOptions> options, TimeProvider clock, ILogger<OutboxBacklog> logger)
    {
        (_db, _clock, _refresh, _logger) = (db, clock, options.Value.OutboxBacklogRefresh, logger);
        var meter = meters.Create(OperatorMetrics.MeterName);
        meter.CreateObservableGauge("pluginapp.outbox.messages", ObserveMessages, "{message}",
            "Calls to Shopify in the outbox by state: pending (due or backing off) and failed (given up on; retry them from the Operations page).");
        meter.CreateObservableGauge("pluginapp.outbox.oldest_due_age", ObserveOldestDue, "s",
            "How long the oldest call that is due has waited to be sent (0 when none is due).");
    }

    private IEnumerable<Measurement<long>> ObserveMessages()
    {
        RefreshIfStale();
        return _figures is { } f
            ? [new(f.Pending, new KeyValuePair<string, object?>("state", "pending")), new(f.Failed, new KeyValuePair<string, object?>("state", "failed"))]
            : [];
    }

    private IEnumerable<Measurement<double>> ObserveOldestDue()
    {
        RefreshIfStale();
        return _figures is { } f ? [new(f.OldestDueSeconds)] : [];
    }

    private void RefreshIfStale()
    {
        var now = _clock.GetUtcNow().UtcTicks;
        if (now - Interlocked.Read(ref _readAtTicks) < _refresh.Ticks || Interlocked.CompareExchange(ref _reading, 1, 0) != 0) return;
        _ = Task.Run(ReadAsync);
    }

    private async Task ReadAsync()
    {
        try
        {
            await using var cmd = _db.CreateCommand(Sql);
            await using var reader = await cmd.ExecuteReaderAsync(_stopping.Token);
            await reader.ReadAsync(_stopping.Token);
            var now = _clock.GetUtcNow();
            var oldestDue = reader.IsDBNull(1) ? 0 : Math.Max(0, (now - reader.GetFieldValue<DateTimeOffset>(1)).TotalSeconds);
            _figures = new Figures(reader.GetInt64(0), reader.GetInt64(2), oldestDue);
        }
        catch (Exception e) when (e is NpgsqlException or OperationCanceledException or ObjectDisposedException or TimeoutException)
        {
            // The last figures stay; the next period tries again. Why not fail the scrape: the other metrics still matter when PostgreSQL is away.
            if (!_stopping.IsCancellationRequested) _logger.LogWarning("Outbox backlog could not be read for the metrics: {Error}", e.Message);
        }
        finally
        {
            Interlocked.Exchange(ref _readAtTicks, _clock.GetUtcNow().UtcTicks);
            Volatile.Write(ref _reading, 0);
        }
    }

    // Why no Dispose of the source: a read in flight still looks at its token; cancelling is what stops it.
    public void Dispose() => _stopping.Cancel();
}
