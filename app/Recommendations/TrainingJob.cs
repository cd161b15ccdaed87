using Hangfire;
using Npgsql;
using PluginApp.Install;
using PluginApp.Jobs;

namespace PluginApp.Recommendations;

/// <summary>Trains one shop's recommender on Hangfire. One training per shop at a time; a failure is retried at 1, 4 and 16 minutes.</summary>
public sealed class TrainingJob(TrainingService training, TrainingScheduler scheduler, JobLocks locks, ILogger<TrainingJob> logger)
{
    [AutomaticRetry(Attempts = 3, DelaysInSeconds = [60, 240, 960], OnAttemptsExceeded = AttemptsExceededAction.Fail)]
    public async Task RunAsync(string shop, string trigger, CancellationToken ct)
    {
        await using var lease = await locks.TryAcquireAsync($"training:{shop}", ct);
        if (lease is null)
        {
            // The running training already learns from what this trigger would; a second one at once would only race it.
            logger.LogInformation("{Shop} is already training; the {Trigger} run is not needed", shop, trigger);
            return;
        }
        try
        {
            await training.TrainAsync(shop, trigger, ct);
        }
        catch (ShopNotConnectedException)
        {
            // Uninstalled or erased: stop this shop's training for good.
            logger.LogInformation("{Shop} is no longer installed; removing its training schedule", shop);
            scheduler.RemoveNightly(shop);
        }
    }
}

/// <summary>When training runs: on demand, after a backfill, nightly at 03:00 in the shop's time zone, and after enough new orders.</summary>
public sealed class TrainingScheduler(IBackgroundJobClient jobs, IRecurringJobManager recurring)
{
    public static string NightlyId(string shop) => $"train-nightly:{shop}";

    public void TrainNow(string shop, string reason) => jobs.Enqueue<TrainingJob>(j => j.RunAsync(shop, reason, CancellationToken.None));

    public void EnsureNightly(string shop, string? ianaTimeZone)
    {
        var zone = TimeZoneInfo.TryFindSystemTimeZoneById(ianaTimeZone ?? "UTC", out var tz) ? tz : TimeZoneInfo.Utc;
        recurring.AddOrUpdate<TrainingJob>(NightlyId(shop), j => j.RunAsync(shop, "nightly", CancellationToken.None), "0 3 * * *",
            new RecurringJobOptions { TimeZone = zone });
    }

    public void RemoveNightly(string shop) => recurring.RemoveIfExists(NightlyId(shop));
}

/// <summary>Every few minutes: shops with enough orders since their newest model's data ends get a training.</summary>
public sealed class NewOrdersTrainingJob(NpgsqlDataSource db, TrainingScheduler scheduler, Microsoft.Extensions.Options.IOptions<RecommendationOptions> options)
{
    [AutomaticRetry(Attempts = 0)] // the next run comes in a few minutes anyway
    public async Task RunAsync(CancellationToken ct)
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
        foreach (var shop in shops) scheduler.TrainNow(shop, "new orders");
    }
}
