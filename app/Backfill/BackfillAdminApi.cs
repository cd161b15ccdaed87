using Microsoft.AspNetCore.Http.HttpResults;
using Npgsql;
using PluginApp.Data;
using PluginApp.Jobs;

namespace PluginApp.Backfill;

public sealed record BackfillRunView(string State, string? Phase, long RowsDone, DateTimeOffset StartedAt, DateTimeOffset? FinishedAt, string? Error);

/// <summary>The history import's runs and their progress, and importing the store again.</summary>
public static class BackfillAdminApi
{
    public static RouteGroupBuilder MapBackfillAdmin(this RouteGroupBuilder api)
    {
        api.MapGet("/backfill", async (NpgsqlDataSource db, ShopScope scope, CancellationToken ct) => TypedResults.Ok(await RunsAsync(db, scope.ShopId, ct)));
        api.MapPost("/backfill/retry", ImportAgainAsync);
        return api;
    }

    /// <summary>
    /// Queues the shop's import again. After a run that failed for good (its retries spent: Shopify refused or failed for
    /// longer than they last) it resumes where it stopped: the phases and chunks it merged are not imported twice; nothing
    /// else queues it again, so without this a failed import would leave the store without its history until a reinstall.
    /// After a run that completed it imports the whole store once more, under the webhooks' rules (what a newer webhook
    /// brought stands): it adds what the app missed, such as orders from days its webhooks could not reach it, and the
    /// email consent that webhooks of API 2025-01 on, which carry none, wrote over until 6 Dec 2026. Refused while an import
    /// runs; a second request before the new run has finished imports nothing more (<see cref="BackfillService.RunQueuedAsync"/>).
    /// A run shown running whose worker is gone (its job lost, or deleted from the Hangfire dashboard: no instance holds its
    /// lock) is resumed, rather than left running for ever.
    /// </summary>
    /// <remarks>A refusal is a problem document, whose detail the admin shows (until 8 Dec 2026 a bare string: "The app answered 409.").</remarks>
    private static async Task<Results<Accepted, ProblemHttpResult>> ImportAgainAsync(NpgsqlDataSource db, ShopScope scope,
        BackfillScheduler scheduler, JobLocks locks, TimeProvider clock, CancellationToken ct)
    {
        switch ((await RunsAsync(db, scope.ShopId, ct)).FirstOrDefault())
        {
            case null:
                return Refused("No import has run yet; the first starts right after install.");
            case { State: "running" }:
                await using (var probe = await locks.TryAcquireAsync(BackfillService.LockKey(scope.Domain), ct))
                    if (probe is null) return Refused("An import runs now; import again once it has finished.");
                break;
        }
        scheduler.ScheduleAgain(scope.Domain, clock.GetUtcNow());
        return TypedResults.Accepted((string?)null);
    }

    private static ProblemHttpResult Refused(string why) => TypedResults.Problem(title: "Not imported again", detail: why, statusCode: StatusCodes.Status409Conflict);

    public static async Task<List<BackfillRunView>> RunsAsync(NpgsqlDataSource db, long shopId, CancellationToken ct)
    {
        await using var cmd = db.CreateCommand("""
            SELECT state, phase, rows_done, started_at, finished_at, error FROM backfill_runs WHERE shop_id = $1 ORDER BY id DESC LIMIT 20
            """);
        cmd.Parameters.AddWithValue(shopId);
        var list = new List<BackfillRunView>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
            list.Add(new BackfillRunView(r.GetString(0), r.IsDBNull(1) ? null : r.GetString(1), r.GetInt64(2),
                r.GetFieldValue<DateTimeOffset>(3), r.IsDBNull(4) ? null : r.GetFieldValue<DateTimeOffset>(4), r.IsDBNull(5) ? null : r.GetString(5)));
        return list;
    }
}
