using System.Text.Json;
using Npgsql;
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
/// </summary>
public sealed class WebhookIngestor(NpgsqlDataSource dataSource, TimeProvider clock)
{
    /// <exception cref="MalformedPayloadException">The body is not JSON or not the topic's shape; nothing was written.</exception>
    public async Task<IngestOutcome> IngestAsync(WebhookDeliveryHeaders h, byte[] body, CancellationToken ct)
    {
        // Parse and map first: a malformed payload must fail before we touch the database.
        using var doc = ParseJson(body);
        var root = doc.RootElement;
        WebhookTopics.Handlers.TryGetValue(h.Topic, out var handler);
        var rows = handler?.Parse(root);
        WebhookTopics.CheckCompliancePayload(h.Topic, root);

        var now = clock.GetUtcNow();
        await using var conn = await dataSource.OpenConnectionAsync(ct);
        await using var tx = await conn.BeginTransactionAsync(ct);

        var (shopId, installed) = await FindShopAsync(conn, tx, h.ShopDomain, ct);
        var outcome = shopId is null ? IngestOutcome.UnknownShop
            : h.Topic == WebhookTopics.ShopRedact ? IngestOutcome.Normalized
            : !installed && handler?.RunsForUninstalledShop != true ? IngestOutcome.ShopNotInstalled
            : handler is null && h.Topic != WebhookTopics.AppUninstalled ? IngestOutcome.StoredRaw
            : IngestOutcome.Normalized;

        if (!await InsertDeliveryAsync(conn, tx, h, shopId, outcome, body, now, ct))
        {
            await tx.RollbackAsync(ct);
            return IngestOutcome.Duplicate;
        }

        if (outcome == IngestOutcome.Normalized)
        {
            if (h.Topic == WebhookTopics.ShopRedact)
                await ComplianceService.RedactShopAsync(conn, tx, h.ShopDomain, h.DeliveryId, ct);
            else if (h.Topic == WebhookTopics.AppUninstalled)
                await MarkUninstalledAsync(conn, tx, shopId!.Value, now, ct);
            else
            {
                var ctx = new TopicContext(new StoreWriter(conn, tx, shopId!.Value), new ComplianceService(conn, tx, shopId.Value), now, ct);
                await handler!.Apply(ctx, rows!);
                if (CustomerIdOf(h.Topic, root) is { } customerId)
                    await RedactIfCustomerErasedAsync(conn, tx, h.DeliveryId, shopId.Value, customerId, now, ct);
            }
        }
        await tx.CommitAsync(ct);
        return outcome;
    }

    private static long? CustomerIdOf(string topic, JsonElement root) =>
        topic is "customers/create" or "customers/update" ? root.OptionalId("id") : root.OptionalObject("customer")?.OptionalId("id");

    // Why: a retry or late event may still carry the personal data of a customer who was erased; keep its raw body out too.
    private static async Task RedactIfCustomerErasedAsync(NpgsqlConnection conn, NpgsqlTransaction tx, string deliveryId, long shopId,
        long customerId, DateTimeOffset now, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand("""
            UPDATE webhook_deliveries SET body = jsonb_build_object('redacted_at', $4::timestamptz)
            WHERE delivery_id = $1 AND EXISTS (SELECT 1 FROM customers WHERE shop_id = $2 AND id = $3 AND redacted_at IS NOT NULL)
            """, conn, tx);
        cmd.Parameters.Add(UpsertStatement.Param(deliveryId));
        cmd.Parameters.Add(UpsertStatement.Param(shopId));
        cmd.Parameters.Add(UpsertStatement.Param(customerId));
        cmd.Parameters.Add(UpsertStatement.Param(now));
        await cmd.ExecuteNonQueryAsync(ct);
    }

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

    private static async Task<(long?, bool)> FindShopAsync(NpgsqlConnection conn, NpgsqlTransaction tx, string domain, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand(
            "SELECT id, installed_at IS NOT NULL AND uninstalled_at IS NULL FROM shops WHERE domain = $1", conn, tx);
        cmd.Parameters.Add(UpsertStatement.Param(domain));
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        return await reader.ReadAsync(ct) ? (reader.GetInt64(0), reader.GetBoolean(1)) : (null, false);
    }

    private static async Task<bool> InsertDeliveryAsync(NpgsqlConnection conn, NpgsqlTransaction tx, WebhookDeliveryHeaders h,
        long? shopId, IngestOutcome outcome, byte[] body, DateTimeOffset now, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand("""
            INSERT INTO webhook_deliveries (delivery_id, shop_domain, shop_id, topic, api_version, event_id, triggered_at, received_at, outcome, body)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb)
            ON CONFLICT (delivery_id) DO NOTHING
            """, conn, tx);
        cmd.Parameters.Add(UpsertStatement.Param(h.DeliveryId));
        cmd.Parameters.Add(UpsertStatement.Param(h.ShopDomain));
        cmd.Parameters.Add(new NpgsqlParameter { Value = (object?)shopId ?? DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Bigint });
        cmd.Parameters.Add(UpsertStatement.Param(h.Topic));
        cmd.Parameters.Add(new NpgsqlParameter { Value = (object?)h.ApiVersion ?? DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Text });
        cmd.Parameters.Add(new NpgsqlParameter { Value = (object?)h.EventId ?? DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Text });
        cmd.Parameters.Add(UpsertStatement.Param(TypedNull.Time(h.TriggeredAt)));
        cmd.Parameters.Add(UpsertStatement.Param(now));
        cmd.Parameters.Add(UpsertStatement.Param(OutcomeName(outcome)));
        cmd.Parameters.Add(new NpgsqlParameter { Value = System.Text.Encoding.UTF8.GetString(body), NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Jsonb });
        return await cmd.ExecuteNonQueryAsync(ct) == 1;
    }

    private static async Task MarkUninstalledAsync(NpgsqlConnection conn, NpgsqlTransaction tx, long shopId, DateTimeOffset now, CancellationToken ct)
    {
        // The token is already dead at Shopify; drop it and stop acting for the shop. Data stays until shop/redact.
        await using var cmd = new NpgsqlCommand("""
            UPDATE shops SET uninstalled_at = $2, access_token_enc = NULL, access_token_expires_at = NULL,
              refresh_token_enc = NULL, refresh_token_expires_at = NULL, updated_at = $2
            WHERE id = $1
            """, conn, tx);
        cmd.Parameters.Add(UpsertStatement.Param(shopId));
        cmd.Parameters.Add(UpsertStatement.Param(now));
        await cmd.ExecuteNonQueryAsync(ct);
    }

    public static string OutcomeName(IngestOutcome o) => o switch
    {
        IngestOutcome.Normalized => "normalized",
        IngestOutcome.StoredRaw => "stored_raw",
        IngestOutcome.UnknownShop => "unknown_shop",
        IngestOutcome.ShopNotInstalled => "shop_not_installed",
        _ => "duplicate",
    };
}
