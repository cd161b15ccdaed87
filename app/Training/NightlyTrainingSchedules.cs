using Hangfire;
using Hangfire.Storage;
using Npgsql;
using PluginApp.StoreData;

namespace PluginApp.Training;

/// <summary>
/// Every hour: each reachable shop has every model kind's nightly training, in the shop's time zone. Why: the nightly jobs
/// were registered at install only (<see cref="TrainingScheduler.OnInstalled"/>), so a kind a later release added never
/// trained nightly in the shops installed before it (a small store, never reaching the new-orders threshold, never trained
/// it at all), and a job Hangfire lost stayed lost; until 5 Dec 2026.
/// </summary>
public sealed class NightlyTrainingSchedules(NpgsqlDataSource db, JobStorage storage, TrainingScheduler scheduler, ModelKinds kinds,
    ILogger<NightlyTrainingSchedules> logger)
{
    public const string Id = "train-nightly-schedules";

    /// <returns>How many shops' nightly trainings were scheduled (none once every shop has them as they should be).</returns>
    [AutomaticRetry(Attempts = 0)] // the next run comes within the hour
    public async Task<int> RunAsync(CancellationToken ct)
    {
        var shops = new List<(string Domain, string? Zone)>();
        // A shop still being set up is left to its setup, which schedules the same jobs.
        await using (var cmd = db.CreateCommand($"SELECT domain, iana_timezone FROM shops s WHERE {ShopStatus.Reachable("s")} AND setup_pending_since IS NULL ORDER BY id"))
        await using (var r = await cmd.ExecuteReaderAsync(ct))
            while (await r.ReadAsync(ct)) shops.Add((r.GetString(0), r.IsDBNull(1) ? null : r.GetString(1)));
        using var connection = storage.GetConnection();
        var scheduled = 0;
        foreach (var (shop, zone) in shops)
        {
            ct.ThrowIfCancellationRequested();
            var want = ShopDays.Zone(zone).Id;
            var jobs = connection.GetRecurringJobs([.. kinds.All.Select(k => TrainingScheduler.NightlyId(shop, k.Name))]);
            if (jobs.Count == kinds.All.Count && jobs.All(j => !j.Removed && j.TimeZoneId == want)) continue;
            scheduler.OnInstalled(shop, zone);
            scheduled++;
        }
        if (scheduled > 0) logger.LogInformation("Scheduled the nightly trainings of {Count} shops that lacked one or had it in another time zone", scheduled);
        return scheduled;
    }
}
