using System.Diagnostics;
using System.Collections.Concurrent;
using Microsoft.Extensions.Options;
using Npgsql;
using PluginApp.Data;

namespace PluginApp.Governance;

/// <summary>A breaker's state for the admin: closed (the model answers), or open until a time with the reason.</summary>
public sealed record BreakerView(string ModelKind, bool Open, DateTimeOffset? RetryAt, string? Reason, int Trips);

/// <summary>
/// Circuit breakers per shop and model kind, on this instance. A model that errors or overruns its time budget
/// <see cref="GovernanceOptions.BreakerFailures"/> times in a row is cut off: callers ask <see cref="Allows"/> first and
/// answer with their fallback (bestsellers, the store's rate, the rule prior) without touching the model. After the cooldown
/// one request tries it again: success restores it, failure cuts it off for twice as long. Cutting off and restoring are
/// recorded (governance_events) with the reason, so the merchant sees them on the Model governance page.
/// </summary>
public sealed class ModelBreakers(NpgsqlDataSource db, IOptions<GovernanceOptions> options, TimeProvider clock, ILogger<ModelBreakers> logger)
{
    private sealed class Breaker
    {
        public int Failures;
        public int Trips;
        public DateTimeOffset? OpenUntil;
        public TimeSpan Cooldown;
        public string? Reason;
        public bool Trial;
        public long LastCounted;
        /// <summary>The version active when it was last cut off (0: none), read after each cut; null until read, and once it answers again.</summary>
        public int? Version;
    }

    private readonly ConcurrentDictionary<(long Shop, string Kind), Breaker> _breakers = new();
    private static readonly TimeSpan TrialWindow = TimeSpan.FromSeconds(10);

    /// <summary>
    /// A new version became active: it starts with a clean record, and a cut-off ends with a "restored" event (until 6 Dec
    /// 2026 none was recorded, and the governance page went on saying the model was cut off while the new one served).
    /// </summary>
    public void Reset(long shopId, string kind)
    {
        if (!_breakers.TryRemove((shopId, kind), out var b)) return;
        bool open;
        lock (b) open = b.OpenUntil is not null;
        if (open) Record(shopId, kind, "restored", "a new version became active; it starts with a clean record");
    }

    /// <summary>Whether the model may be asked now; false while it is cut off (one caller gets true when its rest is over, as the try).</summary>
    public bool Allows(long shopId, string kind)
    {
        if (!_breakers.TryGetValue((shopId, kind), out var b)) return true;
        lock (b)
        {
            if (b.OpenUntil is not { } until) return true;
            var now = clock.GetUtcNow();
            if (now < until) return false;
            // The try: others keep the fallback until it reports, or for a short while if it never does (no model to try any more).
            b.Trial = true;
            b.OpenUntil = now + TrialWindow;
            return true;
        }
    }

    public void Success(long shopId, string kind)
    {
        if (!_breakers.TryGetValue((shopId, kind), out var b)) return;
        bool restored;
        lock (b)
        {
            restored = b.OpenUntil is not null;
            b.Failures = 0;
            b.OpenUntil = null;
            b.Trial = false;
            b.Cooldown = TimeSpan.Zero;
            b.Version = null;
        }
        if (restored) Record(shopId, kind, "restored", "answered again after its rest; it serves again");
    }

    /// <param name="startedAt">For an overrun, when the call began (<see cref="Stopwatch.GetTimestamp"/>): a call that began before
    /// the last counted failure was reported shares its stall and is not counted again. Why: a pause of the whole process
    /// (a garbage collection, the machine's other work) makes every call in flight overrun at once, and counting each
    /// cut off a sound model for minutes after one stall; a model that is itself too slow still overruns call after call.</param>
    public void Failure(long shopId, string kind, string reason, long? startedAt = null)
    {
        var b = _breakers.GetOrAdd((shopId, kind), _ => new Breaker());
        string? cut = null;
        lock (b)
        {
            if (startedAt is { } began && began <= b.LastCounted) return;
            b.Reason = reason;
            b.Failures++;
            b.LastCounted = Stopwatch.GetTimestamp();
            var o = options.Value;
            if (b.Trial || (b.OpenUntil is null && b.Failures >= o.BreakerFailures))
            {
                b.Cooldown = b.Cooldown == TimeSpan.Zero ? o.BreakerCooldown : Min(b.Cooldown * 2, o.BreakerMaxCooldown);
                b.OpenUntil = clock.GetUtcNow() + b.Cooldown;
                b.Trial = false;
                b.Trips++;
                cut = b.Failures >= o.BreakerFailures && b.Trips == 1
                    ? $"{b.Failures} errors in a row, the last: {reason}; the fallback answers until {b.OpenUntil:u}, then it is tried again"
                    : $"failed again when tried ({reason}); the fallback answers until {b.OpenUntil:u}";
            }
        }
        if (cut is not null)
        {
            logger.LogWarning("Shop {Shop}: the {Kind} model is cut off: {Why}", shopId, kind, cut);
            Record(shopId, kind, "cut_off", cut);
            _ = Task.Run(async () =>
            {
                try
                {
                    var version = await ActiveVersionAsync(shopId, kind);
                    lock (b) if (b.OpenUntil is not null) b.Version = version;
                }
                catch (Exception e) when (e is NpgsqlException or TimeoutException) { logger.LogWarning("Could not read shop {Shop}'s active {Kind} version: {Message}", shopId, kind, e.Message); }
            });
        }
    }

    /// <summary>
    /// model_changed for a shop, from any instance: a breaker of the shop cut off under a version no longer active starts
    /// clean, as on the instance that activated the new one (<see cref="Training.ModelKind.Activated"/>). Why: until 8 Dec
    /// 2026 only that instance's breaker was reset, and every other instance went on answering with the fallback for the
    /// rest of the old version's rest (up to an hour) while the new version was sound. Called with no shop (the listener
    /// reconnected, so a notification may have been missed: <see cref="AnyModelChanged"/>), every cut-off breaker is looked at.
    /// </summary>
    public void ModelChanged(long shopId) => Recheck(shopId);

    public void AnyModelChanged() => Recheck(null);

    private void Recheck(long? shop)
    {
        var candidates = _breakers.Where(kv => shop is null || kv.Key.Shop == shop).Select(kv => (kv.Key, Breaker: kv.Value)).ToList();
        if (candidates.Count == 0) return;
        _ = Task.Run(async () =>
        {
            foreach (var (key, b) in candidates)
            {
                int? was;
                lock (b) was = b.OpenUntil is null ? null : b.Version;
                if (was is null) continue;
                try
                {
                    if (await ActiveVersionAsync(key.Shop, key.Kind) != was && _breakers.TryGetValue(key, out var current) && ReferenceEquals(current, b))
                        Reset(key.Shop, key.Kind);
                }
                catch (Exception e) when (e is NpgsqlException or TimeoutException) { logger.LogWarning("Could not read shop {Shop}'s active {Kind} version: {Message}", key.Shop, key.Kind, e.Message); }
            }
        });
    }

    private async Task<int> ActiveVersionAsync(long shopId, string kind)
    {
        await using var cmd = db.CreateCommand("SELECT coalesce(max(version), 0) FROM models WHERE shop_id = $1 AND kind = $2 AND status = 'active'");
        cmd.Parameters.Add(Sql.Param(shopId));
        cmd.Parameters.Add(Sql.Param(kind));
        return (int)(await cmd.ExecuteScalarAsync())!;
    }

    public BreakerView State(long shopId, string kind)
    {
        if (!_breakers.TryGetValue((shopId, kind), out var b)) return new BreakerView(kind, false, null, null, 0);
        lock (b) return new BreakerView(kind, b.OpenUntil is not null, b.OpenUntil, b.OpenUntil is null ? null : b.Reason, b.Trips);
    }

    private static TimeSpan Min(TimeSpan a, TimeSpan b) => a < b ? a : b;

    /// <summary>Recorded off the request path: the breaker must not wait on the database it may be protecting the storefront from.</summary>
    private void Record(long shopId, string kind, string evt, string detail)
    {
        var at = clock.GetUtcNow();
        _ = Task.Run(async () =>
        {
            try { await GovernanceEvents.RecordAsync(db, shopId, kind, evt, detail, "the circuit breaker", at, CancellationToken.None); }
            catch (Exception e) when (e is NpgsqlException or TimeoutException) { logger.LogWarning("Could not record {Event} for shop {Shop}: {Message}", evt, shopId, e.Message); }
        });
    }
}

public sealed record GovernanceEvent(string ModelKind, string Event, string Detail, string By, DateTimeOffset At);

/// <summary>What happened to the shop's models, with who, when and why.</summary>
public static class GovernanceEvents
{
    public static async Task RecordAsync(NpgsqlDataSource db, long shopId, string kind, string evt, string detail, string by, DateTimeOffset at, CancellationToken ct)
    {
        await using var conn = await db.OpenConnectionAsync(ct);
        await RecordAsync(conn, null, shopId, kind, evt, detail, by, at, ct);
    }

    /// <summary>Records the event in the caller's transaction, so it commits with the change it tells of.</summary>
    public static async Task RecordAsync(NpgsqlConnection conn, NpgsqlTransaction? tx, long shopId, string kind, string evt, string detail, string by,
        DateTimeOffset at, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand("""
            INSERT INTO governance_events (shop_id, model_kind, event, detail, by_whom, at) SELECT $1, $2, $3, $4, $5, $6 WHERE EXISTS (SELECT 1 FROM shops WHERE id = $1)
            """, conn, tx);
        foreach (var v in new object[] { shopId, kind, evt, detail, by, at }) cmd.Parameters.Add(Sql.Param(v));
        await cmd.ExecuteNonQueryAsync(ct);
    }

    public static async Task<List<GovernanceEvent>> ListAsync(NpgsqlDataSource db, long shopId, int limit, CancellationToken ct)
    {
        await using var cmd = db.CreateCommand("SELECT model_kind, event, detail, by_whom, at FROM governance_events WHERE shop_id = $1 ORDER BY at DESC, id DESC LIMIT $2");
        cmd.Parameters.Add(Sql.Param(shopId));
        cmd.Parameters.Add(Sql.Param(limit));
        var list = new List<GovernanceEvent>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct)) list.Add(new GovernanceEvent(r.GetString(0), r.GetString(1), r.GetString(2), r.GetString(3), r.GetFieldValue<DateTimeOffset>(4)));
        return list;
    }
}
