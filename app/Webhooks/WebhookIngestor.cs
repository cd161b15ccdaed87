using System.Text;
using System.Text.Json;
using Npgsql;
using NpgsqlTypes;
using PluginApp.Compliance;
using PluginApp.Store;
using PluginApp.Webhooks.Payloads;

namespace PluginApp.Webhooks;

public sealed record WebhookDeliveryHeaders(string DeliveryId, string Topic, string ShopDomain, string? ApiVersion,
    string? EventId, DateTimeOffset? TriggeredAt);

public enum IngestOutcome { Normalized, StoredRaw, UnknownShop, ShopNotInstalled, Duplicate }

/// <summary>
/// Stores one verified delivery: the raw body and its normalized rows in one transaction, once per
/// delivery id. Concurrent copies of a delivery wait on the unique key and then write nothing.
/// Three round trips: record the delivery (and learn the shop), write its rows, commit.
/// </summary>
public sealed class WebhookIngestor(NpgsqlDataSource dataSource, TimeProvider clock)
{
    // The outcome is decided in SQL, from the shop row, in the same statement that claims the delivery id.
    private const string RecordDeliverySql = """
        WITH shop AS (SELECT id, installed_at IS NOT NULL AND uninstalled_at IS NULL AS live FROM shops WHERE domain = $2)
        INSERT INTO webhook_deliveries (delivery_id, shop_domain, shop_id, topic, api_version, event_id, triggered_at, received_at, outcome, body)
        SELECT $1, $2, shop.id, $3, $4, $5, $6, $7,
               CASE WHEN shop.id IS NULL THEN 'unknown_shop'
                    WHEN $8 THEN 'normalized'
                    WHEN NOT shop.live THEN 'shop_not_installed'
                    WHEN $9 THEN 'normalized'
                    ELSE 'stored_raw' END,
               $10::jsonb
        FROM (SELECT 1) one LEFT JOIN shop ON true
        ON CONFLICT (delivery_id) DO NOTHING
        RETURNING shop_id, outcome
        """;

    /// <exception cref="MalformedPayloadException">The body is not JSON or not the topic's shape; nothing was written.</exception>
    public async Task<IngestOutcome> IngestAsync(WebhookDeliveryHeaders h, byte[] body, CancellationToken ct)
    {
        // Parse and map first: a malformed payload must fail before we touch the database.
        using var doc = ParseJson(body);
        var root = doc.RootElement;
        WebhookTopics.Handlers.TryGetValue(h.Topic, out var handler);
        var rows = handler?.Parse(root);
        var actsOnShopRow = h.Topic is WebhookTopics.AppUninstalled or WebhookTopics.ShopRedact;

        var now = clock.GetUtcNow();
        await using var conn = await dataSource.OpenConnectionAsync(ct);
        await using var tx = await conn.BeginTransactionAsync(ct);

        long? shopId;
        IngestOutcome outcome;
        await using (var record = new NpgsqlCommand(RecordDeliverySql, conn, tx))
        {
            record.Parameters.Add(UpsertStatement.Param(h.DeliveryId));
            record.Parameters.Add(UpsertStatement.Param(h.ShopDomain));
            record.Parameters.Add(UpsertStatement.Param(h.Topic));
            record.Parameters.Add(new NpgsqlParameter { Value = (object?)h.ApiVersion ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
            record.Parameters.Add(new NpgsqlParameter { Value = (object?)h.EventId ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
            record.Parameters.Add(UpsertStatement.Param(TypedNull.Time(h.TriggeredAt)));
            record.Parameters.Add(UpsertStatement.Param(now));
            record.Parameters.Add(UpsertStatement.Param(h.Topic == WebhookTopics.ShopRedact || handler?.ActsOnUninstalledShop == true));
            record.Parameters.Add(UpsertStatement.Param(handler is not null || actsOnShopRow));
            record.Parameters.Add(new NpgsqlParameter { Value = Encoding.UTF8.GetString(body), NpgsqlDbType = NpgsqlDbType.Jsonb });
            await using var reader = await record.ExecuteReaderAsync(ct);
            if (!await reader.ReadAsync(ct))
            {
                await reader.DisposeAsync();
                await tx.RollbackAsync(ct);
                return IngestOutcome.Duplicate;
            }
            shopId = reader.IsDBNull(0) ? null : reader.GetInt64(0);
            outcome = Outcome(reader.GetString(1));
        }

        if (outcome == IngestOutcome.Normalized)
        {
            await using var batch = new NpgsqlBatch(conn, tx);
            var store = new StoreWriter(batch, shopId!.Value);
            if (h.Topic == WebhookTopics.ShopRedact) ComplianceService.AddShopRedaction(store, h.ShopDomain, h.DeliveryId);
            else if (h.Topic == WebhookTopics.AppUninstalled) AddUninstall(store, shopId.Value, now);
            else
            {
                handler!.Write(new TopicContext(store, new ComplianceService(store, shopId.Value), h.ShopDomain, now), rows!);
                if (CustomerIdOf(h.Topic, root) is { } customerId) AddRawRedactionGuard(store, h.DeliveryId, shopId.Value, customerId, now);
            }
            await batch.ExecuteNonQueryAsync(ct);
        }
        await tx.CommitAsync(ct);
        return outcome;
    }

    private static void AddUninstall(StoreWriter store, long shopId, DateTimeOffset now) =>
        // The token is already dead at Shopify; drop it and stop acting for the shop. Data stays until shop/redact.
        store.Add("""
            UPDATE shops SET uninstalled_at = $2, access_token_enc = NULL, access_token_expires_at = NULL,
              refresh_token_enc = NULL, refresh_token_expires_at = NULL, updated_at = $2
            WHERE id = $1
            """, shopId, now);

    private static long? CustomerIdOf(string topic, JsonElement root) =>
        topic is "customers/create" or "customers/update" ? root.OptionalId("id")
        : topic.StartsWith("customers/", StringComparison.Ordinal) ? null // compliance topics redact their own body
        : root.OptionalObject("customer")?.OptionalId("id");

    // Why: a retry or late event may still carry the personal data of a customer who was erased; keep its raw body out too.
    private static void AddRawRedactionGuard(StoreWriter store, string deliveryId, long shopId, long customerId, DateTimeOffset now) =>
        store.Add("""
            UPDATE webhook_deliveries SET body = jsonb_build_object('redacted_at', $4::timestamptz)
            WHERE delivery_id = $1 AND EXISTS (SELECT 1 FROM customers WHERE shop_id = $2 AND id = $3 AND redacted_at IS NOT NULL)
            """, deliveryId, shopId, customerId, now);

    private static JsonDocument ParseJson(byte[] body)
    {
        try
        {
            var doc = JsonDocument.Parse(body);
            if (doc.RootElement.ValueKind == JsonValueKind.Object) return doc;
            doc.Dispose();
            throw new MalformedPayloadException("the body is not a JSON object");
        }
        catch (JsonException e)
        {
            throw new MalformedPayloadException($"the body is not valid JSON: {e.Message}");
        }
    }

    private static IngestOutcome Outcome(string name) => name switch
    {
        "normalized" => IngestOutcome.Normalized,
        "stored_raw" => IngestOutcome.StoredRaw,
        "unknown_shop" => IngestOutcome.UnknownShop,
        _ => IngestOutcome.ShopNotInstalled,
    };
}
