using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
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

/// <summary>What serving holds for one shop: its active model and the version in release, if any.</summary>
/// <param name="Generation">Unique to this load: answers cached against it (<see cref="AnswerCache"/>) end when the shop's models are loaded again.</param>
/// <param name="Bytes">The memory the models are reckoned to take (<see cref="ModelCache.EstimatedBytes"/>), counted against the budget.</param>
public sealed record ShopModels(ServingModel? Active, ReleaseModel? Release, long Generation, long Bytes)
{
    /// <summary>The shop's active model file could not be read: held as such until its breaker lets it be tried again.</summary>
    public bool Unreadable { get; init; }

    internal string Signature => $"{Active?.Version}|{Release?.Stage}:{Release?.Version}";
}

/// <summary>
/// Active models, and the version in shadow or canary if there is one, in memory per shop. A change announced on model_changed drops the shop's entry at once (ChangeNotifications);
/// a periodic version check catches a notification missed while the listener reconnected, and survives a database outage.
/// One deployment serves many stores, so the cache is bounded: when the models held exceed <see cref="RecommendationOptions.ModelCacheBudgetBytes"/>,
/// the least recently used shops' models are dropped, and such a shop's next request loads them again (waiting at most the
/// serving budget; past that its answer is bestsellers and the load carries on for the requests after it).
/// </summary>
public sealed class ModelCache : BackgroundService
{
    private readonly ModelRegistry registry;
    private readonly NpgsqlDataSource db;
    private readonly Governance.ModelBreakers breakers;
    private readonly IOptions<RecommendationOptions> options;
    private readonly IOptions<Governance.GovernanceOptions> governance;
    private readonly ILogger<ModelCache> logger;

    private readonly TimeProvider clock;

    public ModelCache(ModelRegistry registry, NpgsqlDataSource db, Governance.ModelBreakers breakers, IOptions<RecommendationOptions> options,
        IOptions<Governance.GovernanceOptions> governance, IMeterFactory meters, TimeProvider clock, ILogger<ModelCache> logger)
    {
        (this.registry, this.db, this.breakers, this.options, this.governance, this.clock, this.logger) = (registry, db, breakers, options, governance, clock, logger);
        var meter = meters.Create(Operations.OperatorMetrics.MeterName);
        meter.CreateObservableGauge("pluginapp.serving.model_cache.shops", () => Held().Shops, "{shop}", "Shops whose recommender is held in memory on this instance.");
        meter.CreateObservableGauge("pluginapp.serving.model_cache.size", () => Held().Bytes, "By",
            "Memory the held recommenders are reckoned to take, against Recommendations:ModelCacheBudgetBytes.");
        meter.CreateObservableCounter("pluginapp.serving.model_cache.evictions", () => Interlocked.Read(ref _evictions), "{shop}",
            "Shops whose recommender was dropped to stay within the budget (loaded again on their next request).");
    }

    private sealed class Entry
    {
        public required Lazy<Task<ShopModels>> Load;
        /// <summary>When a request last asked for the shop (Stopwatch ticks); the smallest is evicted first.</summary>
        public long LastUsed;
    }

    private readonly ConcurrentDictionary<long, Entry> _models = new();
    private readonly Lock _admitting = new();
    private long _generations;
    private long _evictions;

    /// <summary>
    /// The shop's models, loading them if they are not held. Null when a load takes longer than the serving budget: the caller
    /// answers without a model and the load goes on, so a later request finds it.
    /// </summary>
    public async Task<ShopModels?> GetAsync(long shopId, CancellationToken ct)
    {
        var entry = _models.GetOrAdd(shopId, static (id, cache) => new Entry { Load = new(() => cache.LoadAsync(id)) }, this);
        if (entry.Load.IsValueCreated && entry.Load.Value is { IsCompletedSuccessfully: true, Result.Unreadable: true } && MayTryAgain(shopId)
            && _models.TryRemove(new KeyValuePair<long, Entry>(shopId, entry)))
            entry = _models.GetOrAdd(shopId, static (id, cache) => new Entry { Load = new(() => cache.LoadAsync(id)) }, this);
        Volatile.Write(ref entry.LastUsed, System.Diagnostics.Stopwatch.GetTimestamp());
        var load = entry.Load.Value;
        if (load.IsCompletedSuccessfully) return load.Result;
        try
        {
            return await load.WaitAsync(options.Value.ServingBudget, ct);
        }
        catch (TimeoutException)
        {
            logger.LogInformation("Shop {Shop}: its model is still loading after {Budget} ms; bestsellers answer meanwhile", shopId, options.Value.ServingBudget.TotalMilliseconds);
            return null;
        }
    }

    /// <summary>
    /// Whether a model file that could not be read is read again now: while its breaker is closed (each failure counts
    /// toward cutting it off), or once the breaker's rest is over. Why not on every request: until 6 Dec 2026 each request
    /// read the whole file from the database again, however long the model stayed cut off (a newer build's file on an older
    /// instance during a rolling deploy, say).
    /// </summary>
    private bool MayTryAgain(long shopId) =>
        breakers.State(shopId, RecommenderTrainer.Kind) is not { Open: true, RetryAt: { } until } || clock.GetUtcNow() >= until;

    public void Invalidate(long shopId) => _models.TryRemove(shopId, out _);

    internal void InvalidateAll() => _models.Clear();

    /// <summary>What the cache holds now: shops with models loaded, their reckoned bytes, and how many were evicted since start.</summary>
    public (int Shops, long Bytes, long Evictions) Held()
    {
        var (shops, bytes) = (0, 0L);
        foreach (var (_, e) in _models)
            if (e.Load.IsValueCreated && e.Load.Value.IsCompletedSuccessfully) (shops, bytes) = (shops + 1, bytes + e.Load.Value.Result.Bytes);
        return (shops, bytes, Interlocked.Read(ref _evictions));
    }

    /// <summary>Whether the shop's models are in memory now (loaded, not evicted).</summary>
    public bool Holds(long shopId) => _models.TryGetValue(shopId, out var e) && e.Load.IsValueCreated && e.Load.Value.IsCompletedSuccessfully;

    /// <summary>
    /// The memory a loaded bundle is reckoned to take: its file (the arrays are held as stored: float factors, int/float neighbour
    /// pairs, long ids) plus the id index (a dictionary entry and bucket per item, 28 bytes) and ALS's derived Gram matrix, the cart
    /// fold-in's inverse of it (doubles) and item norms.
    /// The memory benchmark (scripts/bench/memory.sh) prints it beside the resident memory it measures.
    /// </summary>
    public static long EstimatedBytes(RecommenderBundle bundle, int artifactBytes) =>
        artifactBytes + bundle.ProductIds.Length * 28L + (long)bundle.Als.Factors * bundle.Als.Factors * (4 + 8) + bundle.Als.ItemCount * 4L;

    private async Task<ShopModels> LoadAsync(long shopId)
    {
        try
        {
            var active = await registry.LoadActiveAsync(shopId, RecommenderTrainer.Kind, CancellationToken.None);
            var bytes = 0L;
            ServingModel? serving = null;
            if (active is { } a)
            {
                var bundle = RecommenderBundle.FromBytes(a.Artifact);
                serving = new ServingModel(a.Version, bundle);
                bytes += EstimatedBytes(bundle, a.Artifact.Length);
            }
            var release = await LoadReleaseAsync(shopId);
            if (release is { Bundle: { } rb, ArtifactBytes: var n }) bytes += EstimatedBytes(rb, n);
            var loaded = new ShopModels(serving, release?.Model, Interlocked.Increment(ref _generations), bytes);
            Admit(shopId, loaded);
            return loaded;
        }
        catch (Exception e) when (e is NpgsqlException or InvalidDataException)
        {
            logger.LogError(e, "Could not load the active model of shop {Shop}; serving falls back to bestsellers", shopId);
            // A model that cannot be read is a failing model (a database error is not the model's fault).
            if (e is InvalidDataException)
            {
                breakers.Failure(shopId, RecommenderTrainer.Kind, $"its file could not be read ({e.Message})");
                return new ShopModels(null, null, Interlocked.Increment(ref _generations), 0) { Unreadable = true }; // read again by MayTryAgain
            }
            _models.TryRemove(shopId, out _); // the database failed: try again on the next request
            return new ShopModels(null, null, Interlocked.Increment(ref _generations), 0);
        }
    }

    /// <summary>Drops the least recently used shops' models until what is held, with the one just loaded, fits the budget.</summary>
    private void Admit(long shopId, ShopModels loaded)
    {
        lock (_admitting)
        {
            var evicted = CacheBudget.Trim(_models, shopId, loaded.Bytes, options.Value.ModelCacheBudgetBytes,
                e => e.Load.IsValueCreated && e.Load.Value.IsCompletedSuccessfully ? (e.Load.Value.Result.Bytes, Volatile.Read(ref e.LastUsed)) : null);
            if (evicted == 0) return;
            Interlocked.Add(ref _evictions, evicted);
            logger.LogDebug("Evicted the models of {Count} shops to stay within the model cache budget", evicted);
        }
    }

    private async Task<(ReleaseModel Model, RecommenderBundle? Bundle, int ArtifactBytes)?> LoadReleaseAsync(long shopId)
    {
        if (await registry.LoadReleaseAsync(shopId, RecommenderTrainer.Kind, CancellationToken.None) is not { } r) return null;
        var share = (await Governance.ReleaseSettings.GetAsync(db, shopId, RecommenderTrainer.Kind, governance.Value, CancellationToken.None)).CanaryShare;
        try
        {
            var bundle = RecommenderBundle.FromBytes(r.Artifact);
            return (new ReleaseModel(r.Version, r.Stage, share, bundle, null), bundle, r.Artifact.Length);
        }
        catch (InvalidDataException e)
        {
            // Why keep it: every answer it should have given is then logged as its failure, and the release guardrail stops it.
            logger.LogWarning("Shop {Shop}: the {Stage} version {Version} could not be read ({Message}); it counts as failing", shopId, r.Stage, r.Version, e.Message);
            return (new ReleaseModel(r.Version, r.Stage, share, null, $"its file could not be read ({e.Message})"), null, 0);
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

    /// <summary>
    /// Compares every held shop's versions with the registry's, in one query, and drops the shops whose versions moved.
    /// Why one query for all: a query per held shop ran every interval on every instance (1,100 queries every 10 s for the
    /// memory benchmark's stores, each taking a connection from the pool), so the check's cost grew with the shops held.
    /// </summary>
    private async Task CheckVersionsAsync(CancellationToken ct)
    {
        var held = new Dictionary<long, string>();
        foreach (var (shopId, entry) in _models)
            // A file that could not be read is read again by its breaker's rest (MayTryAgain), not every interval.
            if (entry.Load.IsValueCreated && entry.Load.Value is { IsCompletedSuccessfully: true, Result.Unreadable: false }) held[shopId] = entry.Load.Value.Result.Signature;
        if (held.Count == 0) return;
        var moved = new List<long>();
        await using (var cmd = db.CreateCommand("""
            SELECT s.id, coalesce(max(m.version) FILTER (WHERE m.status = 'active')::text, '') || '|' || coalesce(max(m.status) FILTER (WHERE m.status <> 'active'), '')
                   || ':' || coalesce(max(m.version) FILTER (WHERE m.status <> 'active')::text, '')
            FROM unnest($1::int8[]) s(id)
            LEFT JOIN models m ON m.shop_id = s.id AND m.kind = $2 AND m.status IN ('active', 'shadow', 'canary')
            GROUP BY s.id
            """))
        {
            cmd.Parameters.AddWithValue(held.Keys.ToArray());
            cmd.Parameters.AddWithValue(RecommenderTrainer.Kind);
            await using var r = await cmd.ExecuteReaderAsync(ct);
            while (await r.ReadAsync(ct))
                if (r.GetString(1) != held[r.GetInt64(0)]) moved.Add(r.GetInt64(0));
        }
        foreach (var shopId in moved) Invalidate(shopId);
    }
}
