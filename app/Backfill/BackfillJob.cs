using Hangfire;
using PluginApp.Install;
using PluginApp.Jobs;
using PluginApp.Training;

namespace PluginApp.Backfill;

/// <summary>
/// One backfill of one shop on Hangfire. A failure is retried by the one job retry policy (1, 4, 16 minutes); a crash or kill mid-way is picked up by
/// another instance once the job's lease lapses, and the run resumes where its last committed chunk ended.
/// </summary>
public sealed class BackfillJob(BackfillService backfill, TrainingScheduler training, ILogger<BackfillJob> logger)
{
    [Queue(JobQueues.Long)]
    public Task RunAsync(string shop, CancellationToken ct) => RunOrSkipAsync(shop, null, ct);

    /// <summary>The import a merchant asked for at <paramref name="askedAt"/>, of a store imported before (or whose import failed).</summary>
    [Queue(JobQueues.Long)]
    public Task RunAgainAsync(string shop, DateTimeOffset askedAt, CancellationToken ct) => RunOrSkipAsync(shop, askedAt, ct);

    private async Task RunOrSkipAsync(string shop, DateTimeOffset? askedAt, CancellationToken ct)
    {
        try
        {
            // Not run: another worker runs it, or it is done for this install (or since it was asked for again).
            if (!await backfill.RunQueuedAsync(shop, askedAt, ct)) return;
        }
        catch (ShopNotConnectedException e)
        {
            // Uninstalled or erased while queued: nothing to import, nothing to retry.
            logger.LogInformation("Backfill of {Shop} stopped: {Reason}", shop, e.Message);
            return;
        }
        training.AfterBackfill(shop);
    }
}

/// <summary>Queues a shop's backfill on the cluster. A second request while one runs resumes or skips, never duplicates.</summary>
public sealed class BackfillScheduler(IBackgroundJobClient jobs)
{
    public void Schedule(string shop) => jobs.Enqueue<BackfillJob>(j => j.RunAsync(shop, CancellationToken.None));

    /// <summary>Queues the import a merchant asked for: it runs even though the store was imported before.</summary>
    public void ScheduleAgain(string shop, DateTimeOffset askedAt) => jobs.Enqueue<BackfillJob>(j => j.RunAgainAsync(shop, askedAt, CancellationToken.None));
}
