using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Npgsql;
using NpgsqlTypes;
using PluginApp.Compliance;
using PluginApp.StoreData;
using PluginApp.Data;

namespace PluginApp.Webhooks;

public sealed record WebhookDeliveryHeaders(string DeliveryId, string Topic, string ShopDomain, string? ApiVersion,
    string? EventId, DateTimeOffset? TriggeredAt);

public enum IngestOutcome { Normalized, StoredRaw, UnknownShop, ShopNotInstalled, Duplicate, Refused, KeptFailed }

/// <param name="Reason">Why a delivery was refused, or the data error that kept it aside.</param>
public sealed record IngestResult(IngestOutcome Outcome, string? Reason = null);

/// <summary>
/// Stores one verified delivery: the raw body and its normalized rows in one transaction, once per delivery id.
/// Concurrent copies of a delivery wait on the unique key and then write nothing. Three round trips: record the
/// delivery (learning the shop, and whether the body was replayed from another shop), write its rows, commit.
/// </summary>
internal sealed class WebhookIngestor(NpgsqlDataSource dataSource, PersonalDataCatalog personalData, IEnumerable<IngestionStep> steps,
    WebhookTopicTable topics, TimeProvider clock, ILogger<WebhookIngestor> logger)
{
    private readonly IngestionStep[] _steps = steps.ToArray();

    /// <summary>Security events (refused replays) are logged under this id, so they can be alerted on.</summary>
    public static readonly EventId SecurityEvent = new(9001, "SecurityEvent");

    // The outcome is decided in SQL, from the shop row, in the same statement that claims the delivery id. A shop we do
    // not hold gets a summary (size, digest, resource id) instead of the body: we keep no personal data for shops we do not
    // serve. Why in SQL: the CASE computes it only for those deliveries, not for every one.
    private static readonly string RecordDeliverySql = $$"""
        WITH shop AS (SELECT id, shopify_shop_id, {{ShopStatus.Installed()}} AS live FROM shops WHERE domain = $2),
        replay AS (SELECT
            EXISTS (SELECT 1 FROM orders o JOIN shop ON o.shop_id <> shop.id WHERE o.id = ANY($11))
            OR EXISTS (SELECT 1 FROM customers c JOIN shop ON c.shop_id <> shop.id WHERE c.id = ANY($12))
            OR EXISTS (SELECT 1 FROM products p JOIN shop ON p.shop_id <> shop.id WHERE p.id = ANY($13))
            OR EXISTS (SELECT 1 FROM checkouts k JOIN shop ON k.shop_id <> shop.id WHERE k.id = ANY($14))
            OR EXISTS (SELECT 1 FROM carts t JOIN shop ON t.shop_id <> shop.id WHERE t.token = ANY($15)) AS foreign_id,
            EXISTS (SELECT 1 FROM shop WHERE $16::int8 IS NOT NULL AND shop.shopify_shop_id IS NOT NULL AND shop.shopify_shop_id <> $16) AS foreign_shop)
        INSERT INTO webhook_deliveries (delivery_id, shop_domain, shop_id, topic, api_version, event_id, triggered_at, received_at, outcome, body)
        SELECT $1, $2, shop.id, $3, $4, $5, $6, $7,
               CASE WHEN replay.foreign_shop THEN 'refused: the payload names another Shopify shop id'
                    WHEN replay.foreign_id THEN 'refused: its resource is already held for another shop'
                    WHEN shop.id IS NULL THEN 'unknown_shop'
                    WHEN $8 THEN 'normalized'
                    WHEN NOT shop.live THEN 'shop_not_installed'
                    WHEN $9 THEN 'normalized'
                    ELSE 'stored_raw' END,
               CASE WHEN shop.id IS NULL
                    THEN jsonb_build_object('withheld', 'no shop of ours', 'bytes', octet_length($10::text),
                           'sha256', encode(sha256(convert_to($10::text, 'UTF8')), 'hex'), 'id', $10::jsonb -> 'id')
                    ELSE $10::jsonb END
        FROM (SELECT 1) one LEFT JOIN shop ON true CROSS JOIN replay
        ON CONFLICT (delivery_id) DO NOTHING
        RETURNING shop_id, outcome
        """;

    /// <exception cref="MalformedPayloadException">The body is not JSON or not the topic's shape; nothing was written.</exception>
    public async Task<IngestResult> IngestAsync(WebhookDeliveryHeaders h, byte[] signedBody, CancellationToken ct)
    {
        // Parse and map first: a malformed payload must fail before we touch the database.
        var body = JsonSanitizer.HasNul(signedBody) ? StripNul(signedBody) : signedBody;
        using var doc = ParseJson(body);
        var root = doc.RootElement;
        var claim = ShopBinding.Read(h.Topic, root);
        if (ShopBinding.Mismatch(h.Topic, h.ShopDomain, root, claim) is { } mismatch) return Refuse(h, mismatch);

        topics.Handlers.TryGetValue(h.Topic, out var handler);
        object? rows;
        try { rows = handler?.Parse(root); }
        catch (InvalidOperationException e)
        {
            // Valid JSON whose values .NET cannot read (e.g. a lone surrogate in a string): keep it aside, do not make Shopify retry.
            return await KeepFailedAsync(h, body, e.GetType().Name, ct);
        }
        var owned = rows is not null && handler!.Owned is { } o ? o(rows) : OwnedIds.None;
        var actsOnShopRow = h.Topic is WebhookTopics.AppUninstalled or WebhookTopics.ShopRedact;

        var now = clock.GetUtcNow();
        await using var conn = await dataSource.OpenConnectionAsync(ct);
        await using var tx = await conn.BeginTransactionAsync(ct);
        long? shopId;
        string outcome;
        try
        {
            await using (var record = new NpgsqlCommand(RecordDeliverySql, conn, tx))
            {
                AddDeliveryParameters(record, h, now);
                record.Parameters.Add(Sql.Param(h.Topic == WebhookTopics.ShopRedact || handler?.ActsOnUninstalledShop == true));
                record.Parameters.Add(Sql.Param(handler is not null || actsOnShopRow));
                // Text, parsed as jsonb in SQL: the withheld summary digests the body as received.
                record.Parameters.Add(new NpgsqlParameter { Value = Encoding.UTF8.GetString(body), NpgsqlDbType = NpgsqlDbType.Text });
                record.Parameters.Add(Sql.Param(owned.Orders));
                record.Parameters.Add(Sql.Param(owned.Customers));
                record.Parameters.Add(Sql.Param(owned.Products));
                record.Parameters.Add(Sql.Param(owned.Checkouts));
                record.Parameters.Add(Sql.Param(owned.CartTokens));
                record.Parameters.Add(Sql.Param(claim.ShopifyShopId ?? (object)new TypedNull(NpgsqlDbType.Bigint)));
                await using var reader = await record.ExecuteReaderAsync(ct);
                if (!await reader.ReadAsync(ct))
                {
                    await reader.DisposeAsync();
                    await tx.RollbackAsync(ct);
                    return new IngestResult(IngestOutcome.Duplicate);
                }
                shopId = reader.IsDBNull(0) ? null : reader.GetInt64(0);
                outcome = reader.GetString(1);
            }
            if (outcome.StartsWith("refused", StringComparison.Ordinal))
            {
                await tx.RollbackAsync(ct);
                return Refuse(h, outcome["refused: ".Length..]);
            }

            if (outcome == "normalized")
            {
                await using var batch = new NpgsqlBatch(conn, tx);
                var store = new StoreWriter(batch, shopId!.Value);
                if (h.Topic == WebhookTopics.ShopRedact) ComplianceService.AddShopRedaction(store, h.ShopDomain, h.DeliveryId);
                else if (h.Topic == WebhookTopics.AppUninstalled) AddUninstall(store, shopId.Value, h.ShopDomain, now);
                else
                {
                    handler!.Write(new TopicContext(store, new ComplianceService(store, shopId.Value, personalData), h.ShopDomain, now), rows!);
                    var context = new IngestionContext(h.ShopDomain, h.Topic, h.DeliveryId, now);
                    foreach (var step in _steps)
                        if (step.Rows.IsInstanceOfType(rows)) step.Add(store, rows!, context);
                    if (CustomerIdOf(h.Topic, root) is { } customerId) AddRawRedactionGuard(store, h.DeliveryId, shopId.Value, customerId, now);
                }
                await batch.ExecuteNonQueryAsync(ct);
            }
            await tx.CommitAsync(ct);
        }
        catch (PostgresException e) when (IsDataError(e))
        {
            await tx.RollbackAsync(CancellationToken.None);
            return await KeepFailedAsync(h, body, $"{e.SqlState}: {e.MessageText}", ct);
        }
        return new IngestResult(Outcome(outcome));
    }

    private IngestResult Refuse(WebhookDeliveryHeaders h, string reason)
    {
        logger.LogWarning(SecurityEvent, "Refused webhook {DeliveryId} ({Topic}) for {Shop}: {Reason}. A signed body replayed for another shop acts on nothing.",
            h.DeliveryId, h.Topic, h.ShopDomain, reason);
        return new IngestResult(IngestOutcome.Refused, reason);
    }

    /// <summary>
    /// A signed, well-formed delivery PostgreSQL refused (a value out of range, a string it cannot hold): kept aside with its
    /// error for inspection, and answered 200 so Shopify does not retry it for hours. Neither the body nor the error detail
    /// is logged, as both may hold what a shopper typed.
    /// </summary>
    private async Task<IngestResult> KeepFailedAsync(WebhookDeliveryHeaders h, byte[] body, string error, CancellationToken ct)
    {
        logger.LogError("Webhook {DeliveryId} ({Topic}) for {Shop} could not be stored as rows ({Error}); kept as failed for inspection",
            h.DeliveryId, h.Topic, h.ShopDomain, error);
        const string sql = """
            INSERT INTO webhook_deliveries (delivery_id, shop_domain, shop_id, topic, api_version, event_id, triggered_at, received_at, outcome, body, raw_body, error)
            SELECT $1, $2, s.id, $3, $4, $5, $6, $7, CASE WHEN s.id IS NULL THEN 'unknown_shop' ELSE 'failed' END,
                   CASE WHEN s.id IS NULL OR $9 THEN $10::jsonb ELSE $8::jsonb END,
                   CASE WHEN s.id IS NOT NULL AND $9 THEN $11 END, $12
            FROM (SELECT 1) one LEFT JOIN shops s ON s.domain = $2
            ON CONFLICT (delivery_id) DO NOTHING
            """;
        foreach (var asBytes in new[] { false, true })
        {
            try
            {
                await using var cmd = dataSource.CreateCommand(sql);
                AddDeliveryParameters(cmd, h, clock.GetUtcNow());
                // Why the bytes as a second try: when even jsonb refuses the body, it is kept exactly as signed.
                cmd.Parameters.Add(new NpgsqlParameter { Value = asBytes ? "{}" : Encoding.UTF8.GetString(body), NpgsqlDbType = NpgsqlDbType.Jsonb });
                cmd.Parameters.Add(Sql.Param(asBytes));
                cmd.Parameters.Add(new NpgsqlParameter { Value = WithheldSummary(body, asBytes ? "kept as bytes in raw_body" : "no shop of ours"), NpgsqlDbType = NpgsqlDbType.Jsonb });
                cmd.Parameters.Add(new NpgsqlParameter { Value = body, NpgsqlDbType = NpgsqlDbType.Bytea });
                cmd.Parameters.Add(Sql.Param(error));
                await cmd.ExecuteNonQueryAsync(ct);
                return new IngestResult(IngestOutcome.KeptFailed, error);
            }
            catch (PostgresException e) when (!asBytes && IsDataError(e)) { }
        }
        return new IngestResult(IngestOutcome.KeptFailed, error);
    }

    /// <summary>Data errors (class 22) and constraint violations on the rows (class 23) are the body's fault: retrying will not help.</summary>
    private static bool IsDataError(PostgresException e) => e.SqlState.StartsWith("22", StringComparison.Ordinal) || e.SqlState.StartsWith("23", StringComparison.Ordinal);

    /// <summary>What debugging a delivery we cannot keep needs, and no personal data: its size and digest.</summary>
    private static string WithheldSummary(byte[] body, string why) => new JsonObject
    {
        ["withheld"] = why,
        ["bytes"] = body.Length,
        ["sha256"] = Convert.ToHexStringLower(SHA256.HashData(body)),
    }.ToJsonString();

    /// <summary>$1 to $7 of both delivery inserts: the delivery's headers and when it was received.</summary>
    private static void AddDeliveryParameters(NpgsqlCommand cmd, WebhookDeliveryHeaders h, DateTimeOffset receivedAt)
    {
        cmd.Parameters.Add(Sql.Param(h.DeliveryId));
        cmd.Parameters.Add(Sql.Param(h.ShopDomain));
        cmd.Parameters.Add(Sql.Param(h.Topic));
        cmd.Parameters.Add(new NpgsqlParameter { Value = (object?)h.ApiVersion ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
        cmd.Parameters.Add(new NpgsqlParameter { Value = (object?)h.EventId ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
        cmd.Parameters.Add(Sql.Param(TypedNull.Time(h.TriggeredAt)));
        cmd.Parameters.Add(Sql.Param(receivedAt));
    }

    private static byte[] StripNul(byte[] body)
    {
        try { return JsonSanitizer.StripNul(body); }
        catch (JsonException e) { throw new MalformedPayloadException($"the body is not valid JSON: {e.Message}"); }
    }

    private static void AddUninstall(StoreWriter store, long shopId, string shop, DateTimeOffset now)
    {
        // The token is already dead at Shopify; drop it and stop acting for the shop. Data stays until shop/redact.
        store.Add("""
            UPDATE shops SET uninstalled_at = $2, access_token_enc = NULL, access_token_expires_at = NULL,
              refresh_token_enc = NULL, refresh_token_expires_at = NULL, updated_at = $2
            WHERE id = $1
            """, shopId, now);
        // Every instance stops serving the storefront at once (ShopDirectory listens).
        store.Add("SELECT pg_notify('shop_changed', $1)", shop);
    }

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
