using Npgsql;
using Quartz;

namespace PluginApp.Recommendations;

/// <summary>Trains one shop's recommender. One per shop at a time; a failure is retried with growing delays.</summary>
[DisallowConcurrentExecution]
public sealed class TrainingJob(TrainingService training, TimeProvider clock, ILogger<TrainingJob> logger) : IJob
{
    public const string ShopKey = "shop";
    public const string TriggerKey = "trigger";
    public const string AttemptKey = "attempt";
    public const int MaxAttempts = 4;

    public async ValueTask Execute(IJobExecutionContext context, CancellationToken ct)
    {
        var map = context.MergedJobDataMap;
        var shop = map.GetString(ShopKey)!;
        var attempt = map.TryGetInt(AttemptKey, out var a) ? a : 1;
        try
        {
            await training.TrainAsync(shop, map.GetString(TriggerKey) ?? "scheduled", ct);
        }
        catch (Install.ShopNotConnectedException)
        {
            // Uninstalled or erased: stop this shop's training for good (its nightly trigger goes with the job).
            logger.LogInformation("{Shop} is no longer installed; removing its training schedule", shop);
            await context.Scheduler.DeleteJob(context.JobDetail.Key, ct);
        }
        catch (Exception e) when (e is not OperationCanceledException && attempt < MaxAttempts)
        {
            var delay = TimeSpan.FromMinutes(Math.Pow(4, attempt - 1)); // 1, 4, 16 minutes
            logger.LogWarning(e, "Training {Shop} failed (attempt {Attempt}); retrying in {Delay}", shop, attempt, delay);
            await context.Scheduler.ScheduleJob(TriggerBuilder.Create().ForJob(context.JobDetail.Key)
                .UsingJobData(ShopKey, shop).UsingJobData(TriggerKey, "retry").UsingJobData(AttemptKey, attempt + 1)
                .StartAt(clock.GetUtcNow() + delay).Build(), cancellationToken: ct);
        }
    }
}

/// <summary>When training runs: on demand, after a backfill, nightly at 03:00 in the shop's time zone, and after enough new orders.</summary>
public sealed class TrainingScheduler(ISchedulerFactory schedulers)
{
    public static JobKey KeyFor(string shop) => new($"train:{shop}", "training");

    public async Task TrainNowAsync(string shop, string reason, CancellationToken ct)
    {
        var scheduler = await EnsureJobAsync(shop, ct);
        await scheduler.ScheduleJob(TriggerBuilder.Create().ForJob(KeyFor(shop))
            .UsingJobData(TrainingJob.ShopKey, shop).UsingJobData(TrainingJob.TriggerKey, reason).UsingJobData(TrainingJob.AttemptKey, 1)
            .StartNow().Build(), cancellationToken: ct);
    }

    public async Task EnsureNightlyAsync(string shop, string? ianaTimeZone, CancellationToken ct)
    {
        var scheduler = await EnsureJobAsync(shop, ct);
        var zone = TimeZoneInfo.TryFindSystemTimeZoneById(ianaTimeZone ?? "UTC", out var tz) ? tz : TimeZoneInfo.Utc;
        var trigger = TriggerBuilder.Create().WithIdentity($"nightly:{shop}", "training").ForJob(KeyFor(shop))
            .UsingJobData(TrainingJob.ShopKey, shop).UsingJobData(TrainingJob.TriggerKey, "nightly")
            .WithCronSchedule("0 0 3 * * ?", c => c.InTimeZone(zone)).Build();
        await scheduler.ScheduleJob(trigger, new ScheduleJobOptions { Replace = true }, ct);
    }

    private async Task<IScheduler> EnsureJobAsync(string shop, CancellationToken ct)
    {
        var scheduler = await schedulers.GetScheduler(ct);
        if (await scheduler.GetJobDetail(KeyFor(shop), ct) is null)
            await scheduler.AddJob(JobBuilder.Create<TrainingJob>().WithIdentity(KeyFor(shop)).StoreDurably().Build(), AddJobOptions.Replacing, ct);
        return scheduler;
    }
}

/// <summary>Every few minutes: shops with enough orders since their newest model's data ends get a training.</summary>
[DisallowConcurrentExecution]
public sealed class NewOrdersTrainingJob(NpgsqlDataSource db, TrainingScheduler scheduler, Microsoft.Extensions.Options.IOptions<RecommendationOptions> options) : IJob
{
    public static readonly JobKey Key = new("train-on-new-orders", "system");

    public async ValueTask Execute(IJobExecutionContext context, CancellationToken ct)
    {
        await using var cmd = db.CreateCommand("""
            SELECT s.domain FROM shops s
            WHERE s.installed_at IS NOT NULL AND s.uninstalled_at IS NULL AND s.token_revoked_at IS NULL
              AND NOT EXISTS (SELECT 1 FROM training_runs t WHERE t.shop_id = s.id AND t.state = 'running')
              AND (SELECT count(*) FROM orders o WHERE o.shop_id = s.id
                   AND o.created_at > coalesce((SELECT m.data_to FROM models m WHERE m.shop_id = s.id AND m.kind = 'recommender' ORDER BY m.version DESC LIMIT 1), '-infinity')) >= $1
            """);
        cmd.Parameters.AddWithValue(options.Value.RetrainAfterNewOrders);
        var shops = new List<string>();
        await using (var r = await cmd.ExecuteReaderAsync(ct)) while (await r.ReadAsync(ct)) shops.Add(r.GetString(0));
        foreach (var shop in shops) await scheduler.TrainNowAsync(shop, "new orders", ct);
    }
}
