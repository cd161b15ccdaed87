using System.Collections.Concurrent;
using System.Globalization;
using System.Text.Json;
using Npgsql;
using PluginApp.CartOffers;
using PluginApp.Data;
using PluginApp.Ml.Intent;
using PluginApp.Admin.Switches;
using PluginApp.Governance;
using PluginApp.Experiments;
using PluginApp.Hosting;

namespace PluginApp.Intent;

/// <summary>
/// Scores a live cart with the shop's active intent model (loaded once per version), the cart filled exactly as training
/// fills it (<see cref="IntentData.LiveAsync"/>). No model yet: the share of the last 30 days' settled carts that became
/// orders, said so in the decision's reasons.
/// </summary>
public sealed class IntentScorer(NpgsqlDataSource db, AiFeatureSwitches switches, ModelBreakers breakers,
    Microsoft.Extensions.Options.IOptions<GovernanceOptions> governance, TimeProvider clock, ILogger<IntentScorer> logger) : IIntentScorer
{
    /// <summary>Each shop's active version as loaded; Model null when its file cannot be read by this build (kept, so the
    /// file is not read again on every cart: until 6 Dec 2026 it was, and each cart's reason said "no model yet").</summary>
    private readonly ConcurrentDictionary<long, (int Version, IntentModel? Model)> _models = new();
    private readonly ConcurrentDictionary<long, (int Version, IntentModel? Model, string? Error)> _releases = new();

    /// <summary>
    /// The store's median order value and its carts' rate of becoming orders, each read over the store's whole history or
    /// month and kept an hour. Why an <see cref="ExpiringCache{TKey, TValue}"/>: each takes a query of tens of milliseconds
    /// on a store of 50,000 orders (27-41 ms), which a shopper's cart request waited for every hour, with every cart in
    /// flight at that moment running its own; now one reload runs behind the last answer.
    /// </summary>
    private readonly ExpiringCache<long, IntentData.Store> _stores = new(StoreFiguresFor, clock);
    private readonly ExpiringCache<long, double?> _baseRates = new(StoreFiguresFor, clock);

    private static readonly TimeSpan StoreFiguresFor = TimeSpan.FromHours(1);

    /// <summary>Which version is active (with its metrics) and which is in release (with its stage and canary share), each
    /// re-read every 30 s (<see cref="Invalidate"/> forgets them at once on the instance that moved a version).</summary>
    private readonly ExpiringCache<long, (int Version, string Metrics)?> _actives = new(VersionsFor, clock);
    private readonly ExpiringCache<long, (int Version, string Stage, double Share)?> _releaseStages = new(VersionsFor, clock);

    private static readonly TimeSpan VersionsFor = TimeSpan.FromSeconds(30);

    /// <remarks>Neither is cancelled by a request that stops waiting: the shop's carts in flight share it.</remarks>
    private async Task<(int Version, string Metrics)?> LoadActiveAsync(long shopId)
    {
        await using var cmd = db.CreateCommand("SELECT version, metrics::text FROM models WHERE shop_id = $1 AND kind = $2 AND status = 'active'");
        cmd.Parameters.Add(Sql.Param(shopId));
        cmd.Parameters.Add(Sql.Param(IntentModelTrainer.Kind));
        await using var r = await cmd.ExecuteReaderAsync();
        return await r.ReadAsync() ? (r.GetInt32(0), r.GetString(1)) : null;
    }

    private async Task<(int Version, string Stage, double Share)?> LoadReleaseStageAsync(long shopId)
    {
        int version;
        string stage;
        await using (var cmd = db.CreateCommand("SELECT version, status FROM models WHERE shop_id = $1 AND kind = $2 AND status IN ('shadow', 'canary') LIMIT 1"))
        {
            cmd.Parameters.Add(Sql.Param(shopId));
            cmd.Parameters.Add(Sql.Param(IntentModelTrainer.Kind));
            await using var r = await cmd.ExecuteReaderAsync();
            if (!await r.ReadAsync()) return null;
            (version, stage) = (r.GetInt32(0), r.GetString(1));
        }
        return (version, stage, (await ReleaseSettings.GetAsync(db, shopId, IntentModelTrainer.Kind, governance.Value, CancellationToken.None)).CanaryShare);
    }

    /// <summary>The version in shadow or canary (re-read every 30 s, like the active one), loaded once; an unreadable file is its failure.</summary>
    private async Task<(int Version, string Stage, double Share, IntentModel? Model, string? Error)?> ReleaseAsync(long shopId, CancellationToken ct)
    {
        var release = await _releaseStages.GetAsync(shopId, static (self, id) => self.LoadReleaseStageAsync(id), this, ct);
        if (release is not { } x) return null;
        if (!_releases.TryGetValue(shopId, out var loaded) || loaded.Version != x.Item1)
        {
            await using var load = db.CreateCommand("SELECT artifact FROM models WHERE shop_id = $1 AND kind = $2 AND version = $3");
            load.Parameters.Add(Sql.Param(shopId));
            load.Parameters.Add(Sql.Param(IntentModelTrainer.Kind));
            load.Parameters.Add(Sql.Param(x.Item1));
            try { loaded = (x.Item1, IntentModel.Load(new MemoryStream((byte[])(await load.ExecuteScalarAsync(ct))!)), null); }
            catch (Exception e) when (e is not OperationCanceledException and not NpgsqlException)
            {
                loaded = (x.Item1, null, $"its file could not be read ({e.GetType().Name}: {e.Message})");
            }
            _releases[shopId] = loaded;
        }
        return (x.Item1, x.Item2, x.Item3, loaded.Model, loaded.Error);
    }

    /// <summary>Forgets which versions serve the shop: this instance moved one, or another did (model_changed, <see cref="OnModelChanged"/>).</summary>
    public void Invalidate(long shopId)
    {
        _actives.Remove(shopId);
        _releaseStages.Remove(shopId);
    }

    /// <summary>
    /// The listener reconnected (a model_changed may have been missed): every shop's versions are read again at its next
    /// cart. Why the intent scorer listens at all: until 8 Dec 2026 another instance kept the versions it had read for up to
    /// 30 s, so a breaker closed there for a new version went on being tried with the old one and was cut off again.
    /// </summary>
    public void InvalidateAll()
    {
        _actives.Clear();
        _releaseStages.Clear();
    }

    /// <summary>Whether a cart is in the canary's share: a hash of the cart (or the customer), so it keeps one version while it lives.</summary>
    public static bool InCanary(long shopId, string? cartToken, long? customerId, double share) =>
        (cartToken is not null ? "c:" + cartToken : customerId is { } c ? "u:" + c.ToString(CultureInfo.InvariantCulture) : null) is { } unit
        && Assignment.Bucket(shopId.ToString(CultureInfo.InvariantCulture), unit, "release:" + IntentModelTrainer.Kind) < share;

    private async Task<(int Version, IntentModel Model, string Metrics)?> ActiveAsync(long shopId, CancellationToken ct)
    {
        var active = await _actives.GetAsync(shopId, static (self, id) => self.LoadActiveAsync(id), this, ct);
        if (active is not { } a)
        {
            _models.TryRemove(shopId, out _); // none active: no unreadable version to name either
            return null;
        }
        if (_models.TryGetValue(shopId, out var cached) && cached.Version == a.Item1) return cached.Model is { } held ? (a.Item1, held, a.Item2) : null;
        await using var load = db.CreateCommand("SELECT artifact FROM models WHERE shop_id = $1 AND kind = $2 AND version = $3");
        load.Parameters.Add(Sql.Param(shopId));
        load.Parameters.Add(Sql.Param(IntentModelTrainer.Kind));
        load.Parameters.Add(Sql.Param(a.Item1));
        IntentModel model;
        try { model = IntentModel.Load(new MemoryStream((byte[])(await load.ExecuteScalarAsync(ct))!)); }
        catch (InvalidDataException e)
        {
            // Trained on other features than the builder's now: the fallback until retrained.
            logger.LogWarning("Shop {Shop}: purchase-intent version {Version} cannot be read by this build ({Message}); carts count at the store's rate until it is trained again",
                shopId, a.Item1, e.Message);
            _models[shopId] = (a.Item1, null);
            return null;
        }
        _models[shopId] = (a.Item1, model); // the replaced model is left to the collector: a request may still be using it
        return (a.Item1, model, a.Item2);
    }

    public async Task<CartIntent> ScoreAsync(long shopId, string? cartToken, CartFacts cart, long? customerId, CancellationToken ct)
    {
        var now = clock.GetUtcNow();
        if (!await switches.IsOnAsync(shopId, IntentFeature.Name, ct)) return await FallbackAsync(shopId, "purchase intent is switched off", ct);
        if (!breakers.Allows(shopId, IntentModelTrainer.Kind))
            return await FallbackAsync(shopId, $"the purchase-intent model is cut off after repeated errors ({breakers.State(shopId, IntentModelTrainer.Kind).Reason})", ct);
        var active = await ActiveAsync(shopId, ct);
        if (active is null)
            return await FallbackAsync(shopId, _models.TryGetValue(shopId, out var unreadable) && unreadable.Model is null
                ? $"purchase-intent model version {unreadable.Version} cannot be read by this build (trained on other features) until it is trained again" : null, ct);
        var store = await _stores.GetAsync(shopId, static (self, id) => self.LoadStoreAsync(id), this, ct);
        var snapshot = await IntentData.LiveAsync(db, shopId, cartToken, cart, customerId, now, store, ct);
        // A version in release: in shadow it reads the cart beside the active one; in canary it answers for its share of carts.
        var release = await ReleaseAsync(shopId, ct);
        (IntentScore? Score, string? Failed) candidate = (null, null);
        // Outside the canary's share the active version answers alone: the candidate is not run for those carts.
        if (release is { Stage: "canary" } canary && !InCanary(shopId, cartToken, customerId, canary.Share)) release = null;
        if (release is { } rel)
        {
            candidate = rel.Model is null ? (null, rel.Error ?? "no model file") : TryScore(rel.Model, snapshot);
            if (rel.Stage == "canary" && candidate.Score is { } s)
                return new CartIntent(s.Probability, rel.Version, s.Reasons.Select(r => r.Text).ToList())
                    { Release = new IntentRelease(rel.Version, "canary", s.Probability, null) };
        }
        try
        {
            var score = active.Value.Model.Score(snapshot);
            if (!double.IsFinite(score.Probability)) throw new InvalidOperationException($"it answered {score.Probability}, not a probability");
            breakers.Success(shopId, IntentModelTrainer.Kind);
            return new CartIntent(score.Probability, active.Value.Version, score.Reasons.Select(r => r.Text).ToList())
            {
                Release = release is { } r ? new IntentRelease(r.Version, r.Stage, candidate.Score?.Probability, candidate.Failed) : null,
            };
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            logger.LogError(e, "Shop {Shop}: the purchase-intent model failed; the cart counts at the store's rate", shopId);
            breakers.Failure(shopId, IntentModelTrainer.Kind, $"{e.GetType().Name}: {e.Message}");
            return await FallbackAsync(shopId, "the purchase-intent model failed on this cart", ct);
        }
    }

    /// <summary>A release version's score, or why it failed (its failures count against its release, never the active version's breaker).</summary>
    private (IntentScore? Score, string? Failed) TryScore(IntentModel model, CartSnapshot snapshot)
    {
        try
        {
            var score = model.Score(snapshot);
            return double.IsFinite(score.Probability) ? (score, null) : (null, $"it answered {score.Probability}, not a probability");
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            logger.LogWarning("The purchase-intent version in release failed: {Message}", e.Message);
            return (null, $"{e.GetType().Name}: {e.Message}");
        }
    }

    /// <summary>The store's rate for every cart, saying why (no model yet, switched off, cut off, failed).</summary>
    private async Task<CartIntent> FallbackAsync(long shopId, string? why, CancellationToken ct)
    {
        var rate = await BaseRateAsync(shopId, ct);
        why ??= "no purchase-intent model yet";
        return new CartIntent(rate ?? 0.3, null, [],
            rate is { } r ? string.Create(CultureInfo.InvariantCulture, $"{why}: every cart counts at the store's rate, {r:P0} of the last 30 days' carts shown nothing became orders")
                : $"{why} and no cart history yet: every cart counts at an assumed 30 %");
    }

    /// <summary>
    /// Many snapshots with the active model in one pass; null when the shop has no usable model, the model is cut off after
    /// repeated errors, or it fails here (counted against it, as a cart's score is). A snapshot it answers anything but a
    /// probability for stays NaN, for the caller to skip, and counts as one failure; the others' scores stand. Why: until
    /// 5 Dec 2026 the abandonment sweep asked a model the cart path had cut off, and a NaN passed its "below the minimum
    /// score" test, so every open checkout was tagged for recovery emails.
    /// </summary>
    public async Task<(int Version, double[] Probabilities)?> ScoreAllAsync(long shopId, IReadOnlyList<CartSnapshot> snapshots, CancellationToken ct)
    {
        if (!breakers.Allows(shopId, IntentModelTrainer.Kind)) return null;
        if (await ActiveAsync(shopId, ct) is not { } active) return null;
        try
        {
            var probabilities = active.Model.Score(snapshots, reasons: 0).Select(x => double.IsFinite(x.Probability) ? x.Probability : double.NaN).ToArray();
            if (probabilities.Count(double.IsNaN) is var wrong and > 0)
            {
                logger.LogError("Shop {Shop}: the purchase-intent model answered {Count} of {All} open checkouts with no probability; those are not signalled",
                    shopId, wrong, probabilities.Length);
                breakers.Failure(shopId, IntentModelTrainer.Kind, $"it answered {wrong} of {probabilities.Length} open checkouts with no probability");
            }
            else breakers.Success(shopId, IntentModelTrainer.Kind);
            return (active.Version, probabilities);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            logger.LogError(e, "Shop {Shop}: the purchase-intent model failed on the open checkouts; none is signalled", shopId);
            breakers.Failure(shopId, IntentModelTrainer.Kind, $"{e.GetType().Name}: {e.Message}");
            return null;
        }
    }

    private ValueTask<double?> BaseRateAsync(long shopId, CancellationToken ct) =>
        _baseRates.GetAsync(shopId, static (self, id) => self.LoadBaseRateAsync(id), this, ct);

    /// <remarks>Neither is cancelled by a request that stops waiting: the shop's carts in flight share it.</remarks>
    private Task<IntentData.Store> LoadStoreAsync(long shopId) => IntentData.StoreAsync(db, shopId, clock.GetUtcNow(), CancellationToken.None);

    /// <summary>
    /// The share of the last month's settled carts the cart offers showed nothing that became orders (as the model trains,
    /// <see cref="IntentData.ShownCarts"/>; until 6 Dec 2026 the offers' wins raised it); none without such carts.
    /// </summary>
    private async Task<double?> LoadBaseRateAsync(long shopId)
    {
        var now = clock.GetUtcNow();
        await using var cmd = db.CreateCommand($"""
            WITH shown AS ({IntentData.ShownCarts})
            SELECT count(*) FILTER (WHERE EXISTS (SELECT 1 FROM orders o WHERE o.shop_id = c.shop_id AND o.cart_token = c.token AND NOT o.test))::float8 / nullif(count(*), 0)
            FROM carts c WHERE c.shop_id = $1 AND coalesce(c.updated_at, c.created_at) BETWEEN $2 AND $3
              AND EXISTS (SELECT 1 FROM cart_lines l WHERE l.shop_id = c.shop_id AND l.cart_token = c.token)
              AND NOT EXISTS (SELECT 1 FROM shown s WHERE s.cart_token = c.token)
            """);
        cmd.Parameters.Add(Sql.Param(shopId));
        cmd.Parameters.Add(Sql.Param(now.AddDays(-31)));
        cmd.Parameters.Add(Sql.Param(now - IntentData.Settle));
        return await cmd.ExecuteScalarAsync() is double d ? d : null;
    }

    /// <summary>
    /// What reads the carts now, in the merchant's words. Why the switch and the breaker first: until 6 Dec 2026 the page
    /// named the model and its figures while every cart was read at the store's rate (switched off, or cut off), and said
    /// "no model yet" of a model that could not be read.
    /// </summary>
    public async Task<IntentModelSummary> SummaryAsync(long shopId, CancellationToken ct)
    {
        async Task<string> RateAsync() => await BaseRateAsync(shopId, ct) is { } r
            ? string.Create(CultureInfo.InvariantCulture, $"every cart counts at the store's rate, {r:P0} of the last 30 days' carts shown nothing became orders.")
            : "every cart counts at an assumed 30 %.";
        if (!await switches.IsOnAsync(shopId, IntentFeature.Name, ct))
            return new IntentModelSummary(null, "switched off: " + await RateAsync());
        if (breakers.State(shopId, IntentModelTrainer.Kind) is { Open: true, Reason: var why })
            return new IntentModelSummary(null, $"the model is cut off after repeated errors ({why}): until it is tried again, " + await RateAsync());
        var active = await ActiveAsync(shopId, ct);
        if (active is null)
        {
            if (await _actives.GetAsync(shopId, static (self, id) => self.LoadActiveAsync(id), this, ct) is var (version, _))
                return new IntentModelSummary(null, $"model version {version} cannot be read by this build (trained on other features); it is trained again tonight, and meanwhile " + await RateAsync());
            return new IntentModelSummary(null, "no model yet (it trains with the other models once the store has enough carts); meanwhile " + await RateAsync());
        }
        var m = JsonSerializer.Deserialize<IntentModelTrainer.IntentMetrics>(active.Value.Metrics)!;
        return new IntentModelSummary(active.Value.Version, string.Create(CultureInfo.InvariantCulture,
            $"model version {active.Value.Version} ({m.Learner}), trained on {m.Carts:N0} carts of which {m.Orders:N0} became orders{(m.ShownLeftOut is > 0 ? $" ({m.ShownLeftOut:N0} more carts, shown a bar, an upsell or a code by the cart offers, left out: their outcome was partly the offer's)" : "")}; on the latest {m.HeldOutCarts:N0} carts held out it ranks ordering carts above the others with ROC-AUC {m.RocAuc:0.000} (cart value alone: {m.CartValueRocAuc?.ToString("0.000", CultureInfo.InvariantCulture) ?? "–"}), PR-AUC {m.PrAuc?.ToString("0.000", CultureInfo.InvariantCulture) ?? "–"}."));
    }
}
