using Quartz;

namespace PluginApp.Backfill;

/// <summary>One backfill of one shop. A failure is retried by a later trigger, up to MaxAttempts.</summary>
[DisallowConcurrentExecution]
public sealed class BackfillJob(BackfillService backfill, Recommendations.TrainingScheduler training, TimeProvider clock, ILogger<BackfillJob> logger) : IJob
{
    public const string ShopKey = "shop";
    public const string AttemptKey = "attempt";
    public const int MaxAttempts = 3;

    public async ValueTask Execute(IJobExecutionContext context, CancellationToken ct)
    {
        var shop = context.MergedJobDataMap.GetString(ShopKey)!;
        var attempt = context.MergedJobDataMap.TryGetInt(AttemptKey, out var a) ? a : 1;
        try
        {
            await backfill.RunAsync(shop, ct);
            await training.TrainNowAsync(shop, "after backfill", ct);
        }
        catch (Exception e) when (e is not OperationCanceledException && attempt < MaxAttempts)
        {
            logger.LogWarning(e, "Backfill of {Shop} failed (attempt {Attempt}); retrying in {Delay}", shop, attempt, RetryDelay(attempt));
            await context.Scheduler.ScheduleJob(TriggerBuilder.Create().ForJob(context.JobDetail.Key)
                .UsingJobData(ShopKey, shop).UsingJobData(AttemptKey, attempt + 1)
                .StartAt(clock.GetUtcNow() + RetryDelay(attempt)).Build(), cancellationToken: ct);
        }
    }

    public static TimeSpan RetryDelay(int attempt) => TimeSpan.FromMinutes(5 * attempt);
}

/// <summary>Queues a shop's backfill on the cluster (once: a queued or running backfill is not queued again).</summary>
public sealed class BackfillScheduler(ISchedulerFactory schedulers)
{
    public static JobKey KeyFor(string shop) => new($"backfill:{shop}", "backfill");

    public async Task ScheduleAsync(string shop, CancellationToken ct)
    {
        var scheduler = await schedulers.GetScheduler(ct);
        var job = JobBuilder.Create<BackfillJob>().WithIdentity(KeyFor(shop)).StoreDurably().Build();
        await scheduler.AddJob(job, AddJobOptions.Replacing, ct);
        await scheduler.ScheduleJob(TriggerBuilder.Create().ForJob(job.Key)
            .UsingJobData(BackfillJob.ShopKey, shop).UsingJobData(BackfillJob.AttemptKey, 1).StartNow().Build(), cancellationToken: ct);
    }
}
