using Hangfire;
using Microsoft.Extensions.Options;
using Npgsql;
using PluginApp.Install;
using PluginApp.Jobs;
using PluginApp.StoreData;

namespace PluginApp.Training;

/// <summary>Trains one model kind of one shop on Hangfire. One training per shop and kind at a time; failures follow the one job retry policy.</summary>
public sealed class TrainingJob(TrainingService training, TrainingScheduler scheduler, JobLocks locks, NpgsqlDataSource db,
    IOptions<TrainingOptions> options, ILogger<TrainingJob> logger)
{
    [Queue(JobQueues.Long)]
    public async Task RunAsync(string shop, string kind, string trigger, CancellationToken ct)
    {
        await using var lease = await locks.TryAcquireAsync($"training:{kind}:{shop}", ct);
        if (lease is null)
        {
            // The running training already learns from what this trigger would; a second one at once would only race it.
            logger.LogInformation("{Shop} is already training its {Kind}; the {Trigger} run is not needed", shop, kind, trigger);
            return;
        }
        // Why again here: the check queues a shop's training every few minutes until one starts (a queued job leaves no running
        // row), so on a busy night the queue held several for one shop, and each trained in full after the other (until 5 Dec
        // 2026). The first one trains; the others find its new orders counted and end.
        if (trigger == TrainingScheduler.NewOrders && !await NewOrdersTrainingJob.DueAsync(db, shop, kind, options.Value.RetrainAfterNewOrders, ct))
        {
            logger.LogInformation("{Shop}'s {Kind} was trained since its new orders were counted; the {Trigger} run is not needed", shop, kind, trigger);
            return;
        }
        try
        {
            await training.TrainAsync(shop, kind, trigger, ct);
        }
        catch (ShopNotConnectedException)
        {
            // Uninstalled or erased: stop this shop's training for good.
            logger.LogInformation("{Shop} is no longer installed; removing its training schedule", shop);
            scheduler.RemoveNightly(shop);
        }
    }
}

/// <summary>
/// Every reason a model is trained, in one place: after the install's backfill, nightly at 03:00 in the shop's time zone,
/// on the merchant's demand, and when enough orders were placed since the kind was last trained. Each trains every kind.
/// </summary>
public sealed class TrainingScheduler(IBackgroundJobClient jobs, IRecurringJobManager recurring, ModelKinds kinds)
{
    public const string Nightly = "nightly", NewOrders = "new orders";

    /// <summary>
    /// The triggers that come by the clock rather than from the merchant or a new history: they let a version in release
    /// finish its release instead of replacing it (<see cref="TrainingService"/>).
    /// </summary>
    public static bool ComesByTheClock(string trigger) => trigger is Nightly or NewOrders;

    public static string NightlyId(string shop, string kind) => $"train-nightly:{kind}:{shop}";

    /// <summary>On install: a nightly training of every kind in the shop's time zone.</summary>
    public void OnInstalled(string shop, string? ianaTimeZone)
    {
        var zone = StoreData.ShopDays.Zone(ianaTimeZone);
        foreach (var kind in kinds.All)
            recurring.AddOrUpdate<TrainingJob>(NightlyId(shop, kind.Name), j => j.RunAsync(shop, kind.Name, Nightly, CancellationToken.None),
                "0 3 * * *", new RecurringJobOptions { TimeZone = zone });
    }

    public void AfterBackfill(string shop) => TrainNow(shop, "after backfill");

    public void OnDemand(string shop, string? kind = null) => TrainNow(shop, "on demand", kind);

    public void TrainNow(string shop, string reason, string? kind = null)
    {
        foreach (var k in kind is null ? kinds.All.Select(x => x.Name) : [kinds[kind].Name])
            jobs.Enqueue<TrainingJob>(j => j.RunAsync(shop, k, reason, CancellationToken.None));
    }

    public void RemoveNightly(string shop)
    {
        foreach (var kind in kinds.All) recurring.RemoveIfExists(NightlyId(shop, kind.Name));
    }
}

/// <summary>Every few minutes: shops with enough orders placed since a kind was last trained get that kind trained.</summary>
public sealed class NewOrdersTrainingJob(NpgsqlDataSource db, TrainingScheduler scheduler, ModelKinds kinds, IOptions<TrainingOptions> options)
{
    [AutomaticRetry(Attempts = 0)] // the next run comes in a few minutes anyway
    public async Task RunAsync(CancellationToken ct)
    {
        foreach (var kind in kinds.All)
        {
            await using var cmd = db.CreateCommand($"""
                SELECT s.domain FROM shops s
                WHERE {ShopStatus.Reachable("s")}
                  AND NOT EXISTS (SELECT 1 FROM training_runs t WHERE t.shop_id = s.id AND t.kind = $2 AND t.state = 'running')
                  -- Why not while the shop's backfill runs: its history is half imported, and the backfill trains every kind when it ends.
                  AND NOT EXISTS (SELECT 1 FROM backfill_runs b WHERE b.shop_id = s.id AND b.state = 'running')
                  AND {EnoughNewOrders}
                """);
            cmd.Parameters.AddWithValue(options.Value.RetrainAfterNewOrders);
            cmd.Parameters.AddWithValue(kind.Name);
            var shops = new List<string>();
            await using (var r = await cmd.ExecuteReaderAsync(ct)) while (await r.ReadAsync(ct)) shops.Add(r.GetString(0));
            foreach (var shop in shops) scheduler.TrainNow(shop, TrainingScheduler.NewOrders, kind.Name);
        }
    }

    /// <summary>
    /// $1 the threshold, $2 the kind, shop <c>s</c>: enough orders placed since the kind's last training began, whatever it
    /// came to, or since its newest model's data end. Why not the data end alone: order risk learns only from orders old
    /// enough to have their labels, so its data end 60 days back and every store with a few orders a day was trained again
    /// every check; and a training skipped for too little data left no model, so the store was tried again every check.
    /// </summary>
    private const string EnoughNewOrders = """
        (SELECT count(*) FROM orders o WHERE o.shop_id = s.id
         AND o.created_at > coalesce(greatest(
             (SELECT t.started_at FROM training_runs t WHERE t.shop_id = s.id AND t.kind = $2 ORDER BY t.id DESC LIMIT 1),
             (SELECT m.data_to FROM models m WHERE m.shop_id = s.id AND m.kind = $2 ORDER BY m.version DESC LIMIT 1)), '-infinity')) >= $1
        """;

    /// <summary>Whether the shop still has enough new orders for the kind: a queued training checks again when it starts.</summary>
    public static async Task<bool> DueAsync(NpgsqlDataSource db, string shop, string kind, int threshold, CancellationToken ct)
    {
        await using var cmd = db.CreateCommand($"SELECT EXISTS (SELECT 1 FROM shops s WHERE s.domain = $3 AND {EnoughNewOrders})");
        cmd.Parameters.AddWithValue(threshold);
        cmd.Parameters.AddWithValue(kind);
        cmd.Parameters.AddWithValue(shop);
        return (bool)(await cmd.ExecuteScalarAsync(ct))!;
    }
}
