using System.Text.Json;
using PluginApp.StoreData;

namespace PluginApp.Outbox;

/// <summary>One call a decision asks Shopify for.</summary>
/// <param name="ResourceKey">The resource it acts on (e.g. the order's GID); calls for one resource run in order.</param>
/// <param name="IdempotencyKey">Deterministic per effect (e.g. "risk:{order}:{model version}"): the same decision written twice queues one call.</param>
public sealed record OutboxCall(OutboxOperation Operation, string ResourceKey, object Variables, string IdempotencyKey);

/// <summary>
/// Queues a call to Shopify in the same transaction as the decision that asks for it, so the decision and its side effect
/// are written together or not at all. After the transaction commits, the caller kicks the shop's drain (OutboxScheduler).
/// Each statement takes the shop's lock once (FOR KEY SHARE, what a foreign key's check took for every call), so the shop
/// cannot be deleted before the transaction ends; a shop already deleted queues nothing, and deleting a shop deletes its
/// calls (migration 0042).
/// </summary>
internal static class OutboxWriter
{
    private const string Shop = "(SELECT id FROM shops WHERE id = $1 FOR KEY SHARE) s";

    /// <summary>
    /// The call <paramref name="m"/> is still queued at <paramref name="now"/>: not sent for good, failed for good, nor being
    /// sent (a claim past its time was an attempt that died). What a feature switched off may drop (its queued calls); a call
    /// being sent at that moment goes.
    /// </summary>
    public static string Queued(string m, string now) =>
        $"{m}.completed_at IS NULL AND {m}.failed_at IS NULL AND ({m}.claimed_until IS NULL OR {m}.claimed_until < {now})";

    /// <summary>
    /// Queues one call. A call on a customer (her GID as the resource) whose data was erased, or whom Shopify deleted, queues nothing, read when the
    /// statement runs: a job that read her before the erasure and writes after it (the abandonment sweep scores its
    /// checkouts in between) must not tag her in Shopify, nor leave a call naming her that the erasure's second pass could
    /// only delete after it had gone out. Until 5 Dec 2026 the sweep's calls were queued whatever had happened meanwhile.
    /// </summary>
    public static void Enqueue(StoreWriter store, OutboxCall call, DateTimeOffset now) =>
        store.Add($"""
            INSERT INTO outbox_messages (shop_id, resource_key, operation, variables, idempotency_key, created_at, next_attempt_at)
            SELECT s.id, $2, $3, $4::jsonb, $5, $6, $6 FROM {Shop}
            WHERE NOT EXISTS (SELECT 1 FROM customers c WHERE c.shop_id = s.id AND $2 LIKE 'gid://shopify/Customer/%'
                              AND c.id = substring($2 FROM '[0-9]+$')::bigint AND {StoreData.StoreWriter.CustomerGone("c")})
            ON CONFLICT (shop_id, idempotency_key) DO NOTHING
            """, store.ShopId, call.ResourceKey, call.Operation.Name, JsonSerializer.Serialize(call.Variables), call.IdempotencyKey, now);

    /// <summary>
    /// Queues many calls with one statement, in the order given (so calls for one resource keep their order); a call whose
    /// idempotency key is already queued, or repeated in the list, is queued once.
    /// </summary>
    public static void EnqueueMany(StoreWriter store, IReadOnlyCollection<OutboxCall> calls, DateTimeOffset now)
    {
        if (calls.Count == 0) return;
        store.Add($"""
            INSERT INTO outbox_messages (shop_id, resource_key, operation, variables, idempotency_key, created_at, next_attempt_at)
            SELECT s.id, c.resource_key, c.operation, c.variables::jsonb, c.idempotency_key, $6, $6
            FROM {Shop} CROSS JOIN unnest($2::text[], $3::text[], $4::text[], $5::text[]) WITH ORDINALITY
                 AS c(resource_key, operation, variables, idempotency_key, position)
            ORDER BY c.position
            ON CONFLICT (shop_id, idempotency_key) DO NOTHING
            """, store.ShopId, calls.Select(c => c.ResourceKey).ToArray(), calls.Select(c => c.Operation.Name).ToArray(),
            calls.Select(c => JsonSerializer.Serialize(c.Variables)).ToArray(),
            calls.Select(c => c.IdempotencyKey).ToArray(), now);
    }
}
