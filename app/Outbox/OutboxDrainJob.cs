using Hangfire;
using PluginApp.Jobs;

namespace PluginApp.Outbox;

/// <summary>
/// Drains the outbox on Hangfire, one job per shop, so a shop whose Shopify calls are slow or throttled holds at most one
/// worker while the other shops' calls go out. A writer kicks its shop's drain after committing; a sweep every minute
/// catches whatever a kick missed and every backoff that came due.
/// </summary>
public sealed class OutboxDrainJob(OutboxDrainer drainer, JobLocks locks, OutboxScheduler scheduler)
{
    [AutomaticRetry(Attempts = 0)] // each call keeps its own attempts and backoff; the sweep runs the shop again
    public async Task DrainShopAsync(long shopId, CancellationToken ct)
    {
        await using var lease = await locks.TryAcquireAsync($"outbox:{shopId}", ct);
        if (lease is null) return; // this shop is being drained elsewhere, and that drain picks up what is due
        var next = await drainer.DrainShopAsync(shopId, ct);
        // Why only short waits: a backoff of minutes is found by the sweep, and scheduling each one would pile up jobs.
        if (next is { } due && due <= TimeSpan.FromMinutes(1)) scheduler.KickLater(shopId, due);
    }

    [AutomaticRetry(Attempts = 0)]
    public async Task SweepAsync(CancellationToken ct)
    {
        foreach (var shopId in await drainer.ShopsWithDueCallsAsync(ct)) scheduler.Kick(shopId);
    }
}

/// <summary>Starts a shop's drain now or later.</summary>
public sealed class OutboxScheduler(IBackgroundJobClient jobs)
{
    public void Kick(long shopId) => jobs.Enqueue<OutboxDrainJob>(j => j.DrainShopAsync(shopId, CancellationToken.None));

    public void KickLater(long shopId, TimeSpan delay) =>
        jobs.Schedule<OutboxDrainJob>(j => j.DrainShopAsync(shopId, CancellationToken.None), delay);
}
