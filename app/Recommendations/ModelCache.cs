using System.Collections.Concurrent;
using Npgsql;

namespace PluginApp.Recommendations;

/// <summary>A shop's active recommender in memory, with its version.</summary>
public sealed record ServingModel(int Version, RecommenderBundle Bundle);

/// <summary>
/// Active models in memory per shop. A change announced on model_changed drops the shop's entry at once;
/// a periodic version check catches a missed notification (e.g. while the listener reconnected).
/// </summary>
public sealed class ModelCache(ModelRegistry registry, NpgsqlDataSource db, ILogger<ModelCache> logger) : BackgroundService
{
    public const string Kind = "recommender";
    private static readonly TimeSpan VersionCheckInterval = TimeSpan.FromSeconds(10);
    private readonly ConcurrentDictionary<long, Lazy<Task<ServingModel?>>> _models = new();

    public Task<ServingModel?> GetAsync(long shopId, CancellationToken ct) =>
        _models.GetOrAdd(shopId, id => new Lazy<Task<ServingModel?>>(() => LoadAsync(id))).Value.WaitAsync(ct);

    public void Invalidate(long shopId) => _models.TryRemove(shopId, out _);

    private async Task<ServingModel?> LoadAsync(long shopId)
    {
        try
        {
            var active = await registry.LoadActiveAsync(shopId, Kind, CancellationToken.None);
            return active is { } a ? new ServingModel(a.Version, RecommenderBundle.FromBytes(a.Artifact)) : null;
        }
        catch (Exception e) when (e is NpgsqlException or InvalidDataException)
        {
            logger.LogError(e, "Could not load the active model of shop {Shop}; serving falls back to bestsellers", shopId);
            _models.TryRemove(shopId, out _); // try again on the next request
            return null;
        }
    }

    protected override async Task ExecuteAsync(CancellationToken ct)
    {
        var checker = CheckVersionsAsync(ct);
        while (!ct.IsCancellationRequested)
        {
            try
            {
                await using var conn = await db.OpenConnectionAsync(ct);
                conn.Notification += (_, e) =>
                {
                    if (long.TryParse(e.Payload, out var shop)) Invalidate(shop);
                };
                await using (var listen = new NpgsqlCommand($"LISTEN {ModelRegistry.Channel}", conn)) await listen.ExecuteNonQueryAsync(ct);
                _models.Clear(); // anything cached before we listened may be stale
                while (!ct.IsCancellationRequested) await conn.WaitAsync(ct);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested) { break; }
            catch (Exception e) when (e is NpgsqlException or System.Net.Sockets.SocketException or TimeoutException)
            {
                logger.LogWarning("Model change listener lost its connection ({Message}); reconnecting", e.Message);
                await Task.Delay(TimeSpan.FromSeconds(1), ct).ContinueWith(_ => { }, TaskScheduler.Default);
            }
        }
        await checker.ContinueWith(_ => { }, TaskScheduler.Default);
    }

    private async Task CheckVersionsAsync(CancellationToken ct)
    {
        using var timer = new PeriodicTimer(VersionCheckInterval);
        while (await timer.WaitForNextTickAsync(ct))
        {
            foreach (var (shopId, entry) in _models)
            {
                if (!entry.IsValueCreated || !entry.Value.IsCompletedSuccessfully) continue;
                var cached = entry.Value.Result?.Version;
                await using var cmd = db.CreateCommand("SELECT version FROM models WHERE shop_id = $1 AND kind = $2 AND status = 'active'");
                cmd.Parameters.AddWithValue(shopId);
                cmd.Parameters.AddWithValue(Kind);
                if (await cmd.ExecuteScalarAsync(ct) as int? != cached) Invalidate(shopId);
            }
        }
    }
}
