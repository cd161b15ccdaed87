using Microsoft.AspNetCore.Http.HttpResults;
using Npgsql;
using PluginApp.Data;

namespace PluginApp.Backfill;

public sealed record BackfillRunView(string State, string? Phase, long RowsDone, DateTimeOffset StartedAt, DateTimeOffset? FinishedAt, string? Error);

/// <summary>The history import's runs and their progress.</summary>
public static class BackfillAdminApi
{
    public static RouteGroupBuilder MapBackfillAdmin(this RouteGroupBuilder api)
    {
        api.MapGet("/backfill", async (NpgsqlDataSource db, ShopScope scope, CancellationToken ct) => TypedResults.Ok(await RunsAsync(db, scope.ShopId, ct)));
        return api;
    }

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
