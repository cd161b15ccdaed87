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

    /// <summary>state=failed lists those that failed for good, state=pending those still to go, state=waiting those still to go
    /// after a try that did not go through (with its reason), otherwise all (newest first).</summary>
    public static async Task<List<OutboxView>> ListAsync(NpgsqlDataSource db, long shopId, string? state, CancellationToken ct)
    {
        var filter = state switch
        {
            "failed" => "failed_at IS NOT NULL",
            "pending" => OutboxDrainer.InLine,
            "waiting" => OutboxDrainer.InLine + " AND last_error IS NOT NULL",
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
    /// Puts a failed call back in line and wakes the shop's drain. It counts as tried once, so its check runs before it is
    /// sent again: a call that did reach Shopify (its last answer lost) takes effect once. Until 5 Dec 2026 its attempts
    /// started from nothing, the check (which runs from the second attempt) was skipped, and a risk assessment or a hold
    /// could be applied twice. Refused when a later call on the same resource has gone out since, or may have (it is being
    /// sent, failed after being sent, or was sent and waits to be tried again after an answer that did not say: until 6 Dec
    /// 2026 that one counted as not sent, as the drain clears its claim, and the old call went out before it and stood,
    /// a HIGH assessment over the LOW that had landed): sent now, the old call would land after it and undo it (an approved order held
    /// again, a tag swapped back). One still waiting goes after the retried call, in order. For a batch of metafields (churn's,
    /// one key for all its batches) only a later batch on one of the same customers counts: until 5 Dec 2026 any later batch
    /// did, so a failed batch could never be retried once the next run's had gone out. Refused too when its customer was
    /// erased since, which left it nothing to send (until 5 Dec 2026 it went out empty).
    /// </summary>
    private static async Task<Results<Accepted, NotFound, ProblemHttpResult>> RetryAsync(long id, NpgsqlDataSource db, OutboxScheduler scheduler,
        ShopScope scope, TimeProvider clock, IEnumerable<OutboxOperation> operations, CancellationToken ct)
    {
        // A kind whose call a later decision in the feature's own tables made unwanted says why (OutboxOperation.RetryRefusal).
        string? operation = null, key = null;
        await using (var look = db.CreateCommand("SELECT operation, idempotency_key FROM outbox_messages WHERE shop_id = $1 AND id = $2 AND failed_at IS NOT NULL"))
        {
            look.Parameters.AddWithValue(scope.ShopId);
            look.Parameters.AddWithValue(id);
            await using var r = await look.ExecuteReaderAsync(ct);
            if (await r.ReadAsync(ct)) (operation, key) = (r.GetString(0), r.GetString(1));
        }
        if (operations.FirstOrDefault(o => o.Name == operation)?.RetryRefusal is { } refusal)
        {
            await using var check = db.CreateCommand(refusal);
            check.Parameters.AddWithValue(scope.ShopId);
            check.Parameters.AddWithValue(key!);
            if (await check.ExecuteScalarAsync(ct) is string why)
                return TypedResults.Problem(statusCode: StatusCodes.Status409Conflict, title: "No longer wanted", detail: $"This call is no longer wanted: {why}.");
        }
        await using var cmd = db.CreateCommand("""
            WITH failed AS (
                SELECT m.id, EXISTS (SELECT 1 FROM outbox_messages later WHERE later.shop_id = m.shop_id AND later.resource_key = m.resource_key
                                     AND later.id > m.id AND (later.completed_at IS NOT NULL OR later.failed_at IS NOT NULL
                                                              OR later.claimed_until > $3 OR later.attempts > 0)
                                     -- A batch's key (churn's metafields) is shared by calls on different customers: only a
                                     -- later batch naming one of this one's owners could be undone by it.
                                     AND (m.resource_key LIKE 'gid://%' OR jsonb_typeof(m.variables -> 'metafields') IS DISTINCT FROM 'array'
                                          OR EXISTS (SELECT 1 FROM jsonb_array_elements(m.variables -> 'metafields') e
                                                     WHERE later.variables -> 'metafields' @> jsonb_build_array(jsonb_build_object('ownerId', e -> 'ownerId'))))) AS superseded,
                       -- What a customer's erasure left of a call on her alone (see AddOutbox): nothing to send.
                       (m.resource_key LIKE 'gid://shopify/Customer/%' AND m.variables = '{}'::jsonb)
                         OR coalesce(m.variables -> 'metafields' = '[]'::jsonb, false) AS erased
                FROM outbox_messages m WHERE m.shop_id = $1 AND m.id = $2 AND m.failed_at IS NOT NULL FOR UPDATE OF m),
            retried AS (
                UPDATE outbox_messages m SET failed_at = NULL, attempts = 1, next_attempt_at = $3
                FROM failed f WHERE m.id = f.id AND NOT f.superseded AND NOT f.erased
                RETURNING m.id)
            SELECT superseded, erased FROM failed
            """);
        cmd.Parameters.AddWithValue(scope.ShopId);
        cmd.Parameters.AddWithValue(id);
        cmd.Parameters.AddWithValue(clock.GetUtcNow());
        bool superseded, erased;
        await using (var r = await cmd.ExecuteReaderAsync(ct))
        {
            if (!await r.ReadAsync(ct)) return TypedResults.NotFound();
            (superseded, erased) = (r.GetBoolean(0), r.GetBoolean(1));
        }
        if (erased)
            return TypedResults.Problem(statusCode: StatusCodes.Status409Conflict, title: "The customer was erased",
                detail: "This call was about a customer whose data was erased since it failed (a customers/redact request); nothing of it is left to send.");
        if (superseded)
            return TypedResults.Problem(statusCode: StatusCodes.Status409Conflict, title: "A later call has gone out",
                detail: "A later call on the same order or resource has reached Shopify since this one failed; sending this one now could undo it.");
        scheduler.Kick(scope.ShopId);
        return TypedResults.Accepted((string?)null);
    }
}
