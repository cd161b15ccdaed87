using Microsoft.AspNetCore.Http.HttpResults;
using Npgsql;
using PluginApp.Data;

namespace PluginApp.Outbox;

public sealed record OutboxView(long Id, string ResourceKey, string Operation, int Attempts, string? LastError,
    DateTimeOffset CreatedAt, DateTimeOffset? CompletedAt, DateTimeOffset? FailedAt);

public sealed record OutboxCounts(long Pending, long Failed, long CompletedLastWeek);

/// <summary>Calls to Shopify as the merchant sees them: what is pending, what failed and why, and a retry for a failed one.</summary>
public static class OutboxAdminApi
{
    public static RouteGroupBuilder MapOutboxAdmin(this RouteGroupBuilder api)
    {
        api.MapGet("/outbox", async (NpgsqlDataSource db, ShopScope scope, string? state, CancellationToken ct) =>
            TypedResults.Ok(await ListAsync(db, scope.ShopId, state, ct)));
        api.MapPost("/outbox/{id:long}/retry", RetryAsync);
        return api;
    }

    /// <summary>state=failed lists those that failed for good, state=pending those still to go, otherwise all (newest first).</summary>
    public static async Task<List<OutboxView>> ListAsync(NpgsqlDataSource db, long shopId, string? state, CancellationToken ct)
    {
        var filter = state switch
        {
            "failed" => "failed_at IS NOT NULL",
            "pending" => OutboxDrainer.InLine,
            _ => "true",
        };
        await using var cmd = db.CreateCommand($"""
            SELECT id, resource_key, operation, attempts, last_error, created_at, completed_at, failed_at
            FROM outbox_messages WHERE shop_id = $1 AND {filter} ORDER BY id DESC LIMIT 100
            """);
        cmd.Parameters.AddWithValue(shopId);
        var list = new List<OutboxView>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
            list.Add(new OutboxView(r.GetInt64(0), r.GetString(1), r.GetString(2), r.GetInt32(3), r.IsDBNull(4) ? null : r.GetString(4),
                r.GetFieldValue<DateTimeOffset>(5), r.IsDBNull(6) ? null : r.GetFieldValue<DateTimeOffset>(6), r.IsDBNull(7) ? null : r.GetFieldValue<DateTimeOffset>(7)));
        return list;
    }

    public static async Task<OutboxCounts> CountsAsync(NpgsqlDataSource db, long shopId, DateTimeOffset now, CancellationToken ct)
    {
        await using var cmd = db.CreateCommand("""
            SELECT count(*) FILTER (WHERE completed_at IS NULL AND failed_at IS NULL), count(*) FILTER (WHERE failed_at IS NOT NULL),
                   count(*) FILTER (WHERE completed_at >= $2)
            FROM outbox_messages WHERE shop_id = $1
            """);
        cmd.Parameters.AddWithValue(shopId);
        cmd.Parameters.AddWithValue(now.AddDays(-7));
        await using var r = await cmd.ExecuteReaderAsync(ct);
        await r.ReadAsync(ct);
        return new OutboxCounts(r.GetInt64(0), r.GetInt64(1), r.GetInt64(2));
    }

    /// <summary>
    /// Puts a failed call back in line (its attempts start again) and wakes the shop's drain. The call keeps its idempotency
    /// key and its check, so a retry of a call that did reach Shopify still takes effect once.
    /// </summary>
    private static async Task<Results<Accepted, NotFound>> RetryAsync(long id, NpgsqlDataSource db, OutboxScheduler scheduler, ShopScope scope,
        TimeProvider clock, CancellationToken ct)
    {
        await using var cmd = db.CreateCommand("""
            UPDATE outbox_messages SET failed_at = NULL, attempts = 0, next_attempt_at = $3
            WHERE shop_id = $1 AND id = $2 AND failed_at IS NOT NULL
            """);
        cmd.Parameters.AddWithValue(scope.ShopId);
        cmd.Parameters.AddWithValue(id);
        cmd.Parameters.AddWithValue(clock.GetUtcNow());
        if (await cmd.ExecuteNonQueryAsync(ct) == 0) return TypedResults.NotFound();
        scheduler.Kick(scope.ShopId);
        return TypedResults.Accepted((string?)null);
    }
}
