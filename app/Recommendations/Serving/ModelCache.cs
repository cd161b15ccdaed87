using System.Collections.Concurrent;
using Microsoft.Extensions.Options;
using Npgsql;
using PluginApp.Training;

namespace PluginApp.Recommendations;

/// <summary>A shop's active recommender in memory, with its version.</summary>
public sealed record ServingModel(int Version, RecommenderBundle Bundle);

/// <summary>
/// Active models in memory per shop. A change announced on model_changed drops the shop's entry at once (ChangeNotifications);
/// a periodic version check catches a notification missed while the listener reconnected, and survives a database outage.
/// </summary>
public sealed class ModelCache(ModelRegistry registry, NpgsqlDataSource db, Governance.ModelBreakers breakers, IOptions<RecommendationOptions> options,
    ILogger<ModelCache> logger)
    : BackgroundService
{
    private readonly ConcurrentDictionary<long, Lazy<Task<ServingModel?>>> _models = new();

    public Task<ServingModel?> GetAsync(long shopId, CancellationToken ct) =>
        _models.GetOrAdd(shopId, id => new Lazy<Task<ServingModel?>>(() => LoadAsync(id))).Value.WaitAsync(ct);

    public void Invalidate(long shopId) => _models.TryRemove(shopId, out _);

    internal void OnNotification(string payload)
    {
        if (long.TryParse(payload, out var shop)) Invalidate(shop);
    }

    internal void InvalidateAll() => _models.Clear();

    private async Task<ServingModel?> LoadAsync(long shopId)
    {
        try
        {
            var active = await registry.LoadActiveAsync(shopId, RecommenderTrainer.Kind, CancellationToken.None);
            return active is { } a ? new ServingModel(a.Version, RecommenderBundle.FromBytes(a.Artifact)) : null;
        }
        catch (Exception e) when (e is NpgsqlException or InvalidDataException)
        {
            logger.LogError(e, "Could not load the active model of shop {Shop}; serving falls back to bestsellers", shopId);
            // A model that cannot be read is a failing model (a database error is not the model's fault).
            if (e is InvalidDataException) breakers.Failure(shopId, RecommenderTrainer.Kind, $"its file could not be read ({e.Message})");
            _models.TryRemove(shopId, out _); // try again on the next request
            return null;
        }
    }

    protected override async Task ExecuteAsync(CancellationToken ct)
    {
        using var timer = new PeriodicTimer(options.Value.ModelVersionCheckInterval);
        while (!ct.IsCancellationRequested)
        {
            try
            {
                await timer.WaitForNextTickAsync(ct);
                await CheckVersionsAsync(ct);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested) { return; }
            catch (Exception e) when (e is NpgsqlException or TimeoutException or IOException)
            {
                // Why not end the loop: one outage must not leave this instance serving a stale model for the rest of its life.
                logger.LogWarning("Model version check failed ({Message}); trying again in {Interval}", e.Message, options.Value.ModelVersionCheckInterval);
            }
        }
    }

    private async Task CheckVersionsAsync(CancellationToken ct)
    {
        foreach (var (shopId, entry) in _models)
        {
            if (!entry.IsValueCreated || !entry.Value.IsCompletedSuccessfully) continue;
            var cached = entry.Value.Result?.Version;
            await using var cmd = db.CreateCommand("SELECT version FROM models WHERE shop_id = $1 AND kind = $2 AND status = 'active'");
            cmd.Parameters.AddWithValue(shopId);
            cmd.Parameters.AddWithValue(RecommenderTrainer.Kind);
            if (await cmd.ExecuteScalarAsync(ct) as int? != cached) Invalidate(shopId);
        }
    }
}
