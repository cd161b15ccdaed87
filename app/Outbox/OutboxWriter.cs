using System.Text.Json;
using PluginApp.Store;

namespace PluginApp.Outbox;

/// <summary>
/// Queues a call to Shopify in the same transaction as the decision that asks for it, so the decision
/// and its side effect are written together or not at all.
/// </summary>
internal static class OutboxWriter
{
    /// <param name="resourceKey">The resource the call acts on (e.g. the order's GID); calls for one resource run in order.</param>
    /// <param name="operation">The mutation's payload field, e.g. "tagsAdd", where its userErrors are read.</param>
    public static void Enqueue(StoreWriter store, long shopId, string resourceKey, string operation, string document, object variables,
        DateTimeOffset now) =>
        store.Add("""
            INSERT INTO outbox_messages (shop_id, resource_key, operation, document, variables, created_at, next_attempt_at)
            VALUES ($1, $2, $3, $4, $5::jsonb, $6, $6)
            """, shopId, resourceKey, operation, document, JsonSerializer.Serialize(variables), now);
}
