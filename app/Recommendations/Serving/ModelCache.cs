using System.Collections.Concurrent;
using Microsoft.Extensions.Options;
using Npgsql;
using PluginApp.Training;

namespace PluginApp.Recommendations;

/// <summary>A shop's active recommender in memory, with its version.</summary>
public sealed record ServingModel(int Version, RecommenderBundle Bundle);

/// <summary>
/// A shop's recommender version in a staged release: its stage ("shadow" or "canary"), the shop's canary share, and its
/// bundle, or why its file could not be read (a failure that counts against it, not against the active version).
/// </summary>
public sealed record ReleaseModel(int Version, string Stage, double CanaryShare, RecommenderBundle? Bundle, string? LoadError);

/// <summary>
/// Active models, and the version in shadow or canary if there is one, in memory per shop. A change announced on model_changed drops the shop's entry at once (ChangeNotifications);
/// a periodic version check catches a notification missed while the listener reconnected, and survives a database outage.
/// </summary>
public sealed class ModelCache(ModelRegistry registry, NpgsqlDataSource db, Governance.ModelBreakers breakers, IOptions<RecommendationOptions> options,
    IOptions<Governance.GovernanceOptions> governance, ILogger<ModelCache> logger)
    : BackgroundService
{
    private sealed record ShopModels(ServingModel? Active, ReleaseModel? Release)
    {
        public string Signature => $"{Active?.Version}|{Release?.Stage}:{Release?.Version}";
    }

    private readonly ConcurrentDictionary<long, Lazy<Task<ShopModels>>> _models = new();

    private Task<ShopModels> EntryAsync(long shopId, CancellationToken ct) =>
        _models.GetOrAdd(shopId, id => new Lazy<Task<ShopModels>>(() => LoadAsync(id))).Value.WaitAsync(ct);

    /// <summary>The active version, or null (the fallback answers).</summary>
    public async Task<ServingModel?> GetAsync(long shopId, CancellationToken ct) => (await EntryAsync(shopId, ct)).Active;

    /// <summary>The version in shadow or canary, or null.</summary>
    public async Task<ReleaseModel?> GetReleaseAsync(long shopId, CancellationToken ct) => (await EntryAsync(shopId, ct)).Release;

    public void Invalidate(long shopId) => _models.TryRemove(shopId, out _);

    internal void OnNotification(string payload)
    {
        if (long.TryParse(payload, out var shop)) Invalidate(shop);
    }

    internal void InvalidateAll() => _models.Clear();

    private async Task<ShopModels> LoadAsync(long shopId)
    {
        try
        {
            var active = await registry.LoadActiveAsync(shopId, RecommenderTrainer.Kind, CancellationToken.None);
            var serving = active is { } a ? new ServingModel(a.Version, RecommenderBundle.FromBytes(a.Artifact)) : null;
            return new ShopModels(serving, await LoadReleaseAsync(shopId));
        }
        catch (Exception e) when (e is NpgsqlException or InvalidDataException)
        {
            logger.LogError(e, "Could not load the active model of shop {Shop}; serving falls back to bestsellers", shopId);
            // A model that cannot be read is a failing model (a database error is not the model's fault).
            if (e is InvalidDataException) breakers.Failure(shopId, RecommenderTrainer.Kind, $"its file could not be read ({e.Message})");
            _models.TryRemove(shopId, out _); // try again on the next request
            return new ShopModels(null, null);
        }
    }

    private async Task<ReleaseModel?> LoadReleaseAsync(long shopId)
    {
        if (await registry.LoadReleaseAsync(shopId, RecommenderTrainer.Kind, CancellationToken.None) is not { } r) return null;
        var share = (await Governance.ReleaseSettings.GetAsync(db, shopId, RecommenderTrainer.Kind, governance.Value, CancellationToken.None)).CanaryShare;
        try
        {
            return new ReleaseModel(r.Version, r.Stage, share, RecommenderBundle.FromBytes(r.Artifact), null);
        }
        catch (InvalidDataException e)
        {
            // Why keep it: every answer it should have given is then logged as its failure, and the release guardrail stops it.
            logger.LogWarning("Shop {Shop}: the {Stage} version {Version} could not be read ({Message}); it counts as failing", shopId, r.Stage, r.Version, e.Message);
            return new ReleaseModel(r.Version, r.Stage, share, null, $"its file could not be read ({e.Message})");
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
            var cached = entry.Value.Result.Signature;
            await using var cmd = db.CreateCommand("""
                SELECT coalesce(max(version) FILTER (WHERE status = 'active')::text, '') || '|' || coalesce(max(status) FILTER (WHERE status <> 'active'), '')
                       || ':' || coalesce(max(version) FILTER (WHERE status <> 'active')::text, '')
                FROM models WHERE shop_id = $1 AND kind = $2 AND status IN ('active', 'shadow', 'canary')
                """);
            cmd.Parameters.AddWithValue(shopId);
            cmd.Parameters.AddWithValue(RecommenderTrainer.Kind);
            if (await cmd.ExecuteScalarAsync(ct) as string != cached) Invalidate(shopId);
        }
    }
}
