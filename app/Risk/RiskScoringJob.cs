using System.Collections.Concurrent;
using Hangfire;
using Npgsql;
using PluginApp.Data;
using PluginApp.Jobs;
using PluginApp.StoreData;

namespace PluginApp.Risk;

/// <summary>Scores a shop's queued orders on Hangfire, one shop at a time per shop; a sweep every minute finds what a kick missed.</summary>
public sealed class RiskScoringJob(RiskScorer scorer, JobLocks locks, RiskKicks kicks, NpgsqlDataSource db, TimeProvider clock, ILogger<RiskScoringJob> logger)
{
    [AutomaticRetry(Attempts = 0)] // what stays queued is found by the sweep
    public async Task ScoreShopAsync(long shopId, CancellationToken ct)
    {
        kicks.Started(shopId);
        await using var lease = await locks.TryAcquireAsync($"risk:{shopId}", ct);
        // Another worker scores this shop now; it may have claimed its last batch already, so look again in a second.
        if (lease is null) { kicks.KickLater(shopId); return; }
        await scorer.ScoreShopAsync(shopId, ct);
    }

    /// <summary>Order risk switched on again: the labels that came while it scored nothing are told (RiskQueue.LabelsWhileOffSql).</summary>
    public async Task SwitchedOnAsync(long shopId, CancellationToken ct)
    {
        await using var cmd = db.CreateCommand(RiskQueue.LabelsWhileOffSql);
        cmd.Parameters.Add(Sql.Param(shopId));
        cmd.Parameters.Add(Sql.Param(clock.GetUtcNow()));
        if (await cmd.ExecuteScalarAsync(ct) is not null) kicks.Kick(shopId); // a row only when something was queued
    }

    [AutomaticRetry(Attempts = 0)]
    public async Task SweepAsync(CancellationToken ct)
    {
        // Cards still waiting for orders held by now (see StoreWriter.ApplyCardsSql), then orders scored without their card or
        // an edit (RiskQueue.ScoredWithout). Why apart: a failure there must not keep the queued shops from being woken below.
        try
        {
            await using (var cards = db.CreateCommand(StoreWriter.ApplyCardsSql("SELECT shop_id, order_id FROM order_cards", skipLocked: true)))
                await cards.ExecuteNonQueryAsync(ct);
            await using var requeue = db.CreateCommand(RiskQueue.ScoredWithout);
            var now = clock.GetUtcNow();
            requeue.Parameters.Add(Sql.Param(now));
            requeue.Parameters.Add(Sql.Param(now.AddMinutes(-10)));
            await requeue.ExecuteNonQueryAsync(ct);
        }
        catch (NpgsqlException e) { logger.LogWarning(e, "The risk sweep could not give waiting cards to their orders, or queue again orders scored without an edit or a card; it tries again in a minute"); }
        await using var cmd = db.CreateCommand("SELECT DISTINCT shop_id FROM risk_pending");
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct)) kicks.Kick(r.GetInt64(0));
    }
}

/// <summary>
/// Starts a shop's scoring, at most one waiting job per shop on this instance however many orders arrive. Why each waiting
/// job's time, and a new one past <see cref="Stale"/>: a kick whose job never starts here (its enqueue failed on a database
/// blip, or another instance's worker ran it) would otherwise keep this instance from waking the shop again, the minute's
/// sweep included: until 6 Dec 2026 one failed enqueue left a single instance's shop unscored until a restart. A second job
/// for a shop whose first waits longer costs one claim that finds nothing.
/// </summary>
public sealed class RiskKicks(IBackgroundJobClient jobs, TimeProvider clock)
{
    public static readonly TimeSpan Stale = TimeSpan.FromMinutes(2);

    private readonly ConcurrentDictionary<long, DateTimeOffset> _waiting = new();

    public void Kick(long shopId) => Start(shopId, () => jobs.Enqueue<RiskScoringJob>(j => j.ScoreShopAsync(shopId, CancellationToken.None)));

    public void KickLater(long shopId) =>
        Start(shopId, () => jobs.Schedule<RiskScoringJob>(j => j.ScoreShopAsync(shopId, CancellationToken.None), TimeSpan.FromSeconds(1)));

    private void Start(long shopId, Action start)
    {
        var now = clock.GetUtcNow();
        while (!_waiting.TryAdd(shopId, now))
        {
            if (!_waiting.TryGetValue(shopId, out var since)) continue;
            if (now - since < Stale) return;
            if (_waiting.TryUpdate(shopId, now, since)) break;
        }
        try { start(); }
        catch
        {
            _waiting.TryRemove(new KeyValuePair<long, DateTimeOffset>(shopId, now));
            throw;
        }
    }

    public void Started(long shopId) => _waiting.TryRemove(shopId, out _);
}
