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
/// Stores one verified delivery: the raw body and its normalized rows, once per delivery id, in the transaction of its batch
/// (<see cref="IngestBatcher"/>). Copies of a delivery in other transactions wait on the unique key and then write nothing.
/// Two steps per delivery: record the delivery (learning the shop, and whether the body was replayed from another shop),
/// then write its rows; the batcher records a segment of deliveries per round trip and the batch shares one commit.
/// </summary>
internal sealed class WebhookIngestor(PersonalDataCatalog personalData, IEnumerable<IngestionStep> steps,
    WebhookTopicTable topics, TimeProvider clock, ILogger<WebhookIngestor> logger)
{
    private readonly IngestionStep[] _steps = steps.ToArray();

    /// <summary>Security events (refused replays) are logged under this id, so they can be alerted on.</summary>
    public static readonly EventId SecurityEvent = new(9001, "SecurityEvent");

    // The outcome is decided in SQL, from the shop row, in the same statement that claims the delivery id. A shop we do
    // not hold gets a summary (size, digest, resource id) instead of the body: we keep no personal data for shops we do not
    // serve. Why in SQL: the CASE computes it only for those deliveries, not for every one.
    internal static readonly string RecordDeliverySql = $$"""
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
                    THEN jsonb_build_object('withheld', 'no shop of ours', 'bytes', octet_length($10),
                           'sha256', encode(sha256($10), 'hex'), 'id', convert_from($10, 'UTF8')::jsonb -> 'id')
                    ELSE convert_from($10, 'UTF8')::jsonb END
        FROM (SELECT 1) one LEFT JOIN shop ON true CROSS JOIN replay
        -- Why looked up first as well: a copy Shopify sent again is then answered without parsing and compressing its body
        -- (the conflict clause still settles copies in flight at once).
        WHERE NOT EXISTS (SELECT 1 FROM webhook_deliveries w WHERE w.delivery_id = $1)
        ON CONFLICT (delivery_id) DO NOTHING
        RETURNING shop_id AS ingest_shop_id, outcome AS ingest_outcome
        """;

    /// <summary>
    /// Everything that needs no database, done on the request's thread before the delivery queues for its batch: the shop
    /// binding, parsing and mapping to rows.
    /// </summary>
    /// <returns>The delivery to write, or the answer when it was refused before touching the database.</returns>
    /// <exception cref="MalformedPayloadException">The body is not JSON or not the topic's shape; nothing was written.</exception>
    public (PendingDelivery? Delivery, IngestResult? Answer) Prepare(WebhookDeliveryHeaders h, byte[] signedBody)
    {
        // Parse and map first: a malformed payload must fail before we touch the database.
        var body = JsonSanitizer.HasNul(signedBody) ? StripNul(signedBody) : signedBody;
        using var doc = ParseJson(body);
        var root = doc.RootElement;
        var claim = ShopBinding.Read(h.Topic, root);
        if (ShopBinding.Mismatch(h.Topic, h.ShopDomain, root, claim) is { } mismatch) return (null, new IngestResult(IngestOutcome.Refused, mismatch));

        topics.Handlers.TryGetValue(h.Topic, out var handler);
        var delivery = new PendingDelivery(h, body, handler, claim.ShopifyShopId, clock.GetUtcNow());
        try { delivery.Rows = handler?.Parse(root); }
        catch (InvalidOperationException e)
        {
            // Valid JSON whose values .NET cannot read (e.g. a lone surrogate in a string): keep it aside, do not make Shopify retry.
            KeepAside(delivery, e.GetType().Name);
            return (delivery, null);
        }
        delivery.Owned = delivery.Rows is not null && handler!.Owned is { } o ? o(delivery.Rows) : OwnedIds.None;
        delivery.CustomerId = delivery.Rows is null ? null : CustomerIdOf(h.Topic, root);
        return (delivery, null);
    }

    /// <summary>
    /// Adds the statement that records the delivery (claiming its id, learning the shop, and whether the body was replayed
    /// from another shop) to the batch's next round trip. Its answer, read by <see cref="ReadRecordsAsync"/>, decides the rows.
    /// </summary>
    internal void AddRecord(NpgsqlBatch batch, PendingDelivery d)
    {
        var h = d.Headers;
        var record = new NpgsqlBatchCommand(RecordDeliverySql);
        AddDeliveryParameters(record.Parameters, h, d.ReceivedAt);
        record.Parameters.Add(Sql.Param(h.Topic == WebhookTopics.ShopRedact || d.Handler?.ActsOnUninstalledShop == true));
        record.Parameters.Add(Sql.Param(d.Handler is not null || h.Topic is WebhookTopics.AppUninstalled or WebhookTopics.ShopRedact));
        // The bytes as received (valid UTF-8: the body was parsed), read as jsonb in SQL: the withheld summary digests them, and
        // no copy of the body is made as a .NET string only to be encoded back to UTF-8 on the wire.
        record.Parameters.Add(new NpgsqlParameter<byte[]> { TypedValue = d.Body, NpgsqlDbType = NpgsqlDbType.Bytea });
        record.Parameters.Add(Sql.Param(d.Owned.Orders));
        record.Parameters.Add(Sql.Param(d.Owned.Customers));
        record.Parameters.Add(Sql.Param(d.Owned.Products));
        record.Parameters.Add(Sql.Param(d.Owned.Checkouts));
        record.Parameters.Add(Sql.Param(d.Owned.CartTokens));
        record.Parameters.Add(Sql.Param(d.ClaimedShopifyShopId ?? (object)new TypedNull(NpgsqlDbType.Bigint)));
        batch.BatchCommands.Add(record);
    }

    /// <summary>
    /// What each record statement of a round trip answered, in order: null when the delivery id was already stored (nothing
    /// was written).
    /// </summary>
    /// <remarks>Why found by column name: the round trip also carries the previous deliveries' rows, some of which return rows.</remarks>
    internal static async Task<List<(long? ShopId, string Outcome)?>> ReadRecordsAsync(NpgsqlDataReader reader, CancellationToken ct)
    {
        var answers = new List<(long? ShopId, string Outcome)?>();
        do
        {
            if (reader.FieldCount != 2 || reader.GetName(1) != "ingest_outcome") continue;
            answers.Add(await reader.ReadAsync(ct) ? (reader.IsDBNull(0) ? null : reader.GetInt64(0), reader.GetString(1)) : null);
        } while (await reader.NextResultAsync(ct));
        return answers;
    }

    /// <summary>
    /// Adds what the recorded delivery writes to the batch's next round trip: its rows and every ingestion step (normalized),
    /// or the removal of its record (refused). Nothing here commits; a statement PostgreSQL refuses aborts the whole
    /// transaction, and the batcher writes the batch again without this delivery (or with it kept aside).
    /// </summary>
    internal IngestResult AddRows(NpgsqlBatch batch, PendingDelivery d, (long? ShopId, string Outcome)? recorded)
    {
        if (recorded is not var (shopId, outcome))
            return new IngestResult(IngestOutcome.Duplicate); // an earlier delivery, or a copy earlier in this batch
        var h = d.Headers;
        var store = new StoreWriter(batch, shopId ?? 0);
        if (outcome.StartsWith("refused", StringComparison.Ordinal))
        {
            // Why a delete, not a rollback: the batch-mates' rows stay in the transaction; a refused delivery leaves no row.
            store.Add("DELETE FROM webhook_deliveries WHERE delivery_id = $1", h.DeliveryId);
            return new IngestResult(IngestOutcome.Refused, outcome["refused: ".Length..]);
        }
        if (outcome != "normalized") return new IngestResult(Outcome(outcome));

        if (h.Topic == WebhookTopics.ShopRedact) ComplianceService.AddShopRedaction(store, h.ShopDomain, h.DeliveryId);
        else if (h.Topic == WebhookTopics.AppUninstalled) AddUninstall(store, shopId!.Value, h.ShopDomain, d.ReceivedAt);
        else
        {
            d.Handler!.Write(new TopicContext(store, new ComplianceService(store, shopId!.Value, personalData), h.ShopDomain, d.ReceivedAt), d.Rows!);
            var context = new IngestionContext(h.ShopDomain, h.Topic, h.DeliveryId, d.ReceivedAt);
            foreach (var step in _steps)
                if (step.Rows.IsInstanceOfType(d.Rows)) step.Add(store, d.Rows!, context);
            if (d.CustomerId is { } customerId) AddRawRedactionGuard(store, h.DeliveryId, shopId.Value, customerId, d.ReceivedAt);
        }
        return new IngestResult(IngestOutcome.Normalized);
    }

    /// <summary>Logs a refused delivery once, when it is answered.</summary>
    public void LogRefused(WebhookDeliveryHeaders h, string? reason) =>
        logger.LogWarning(SecurityEvent, "Refused webhook {DeliveryId} ({Topic}) for {Shop}: {Reason}. A signed body replayed for another shop acts on nothing.",
            h.DeliveryId, h.Topic, h.ShopDomain, reason);

    /// <summary>
    /// PostgreSQL refused the delivery's rows: it is written again, kept aside as failed. False when it was already being kept
    /// aside in both forms, and cannot be stored at all.
    /// </summary>
    internal bool TryKeepAside(PendingDelivery d, PostgresException e)
    {
        if (!IsDataError(e)) return false;
        if (d.KeptAsideFor is null) { KeepAside(d, $"{e.SqlState}: {e.MessageText}"); return true; }
        if (d.KeepAsBytes) return false;
        // Why the bytes as a second try: when even jsonb refuses the body, it is kept exactly as signed.
        d.KeepAsBytes = true;
        return true;
    }

    private void KeepAside(PendingDelivery d, string error)
    {
        d.KeptAsideFor = error;
        logger.LogError("Webhook {DeliveryId} ({Topic}) for {Shop} could not be stored as rows ({Error}); kept as failed for inspection",
            d.Headers.DeliveryId, d.Headers.Topic, d.Headers.ShopDomain, error);
    }

    /// <summary>
    /// A signed, well-formed delivery PostgreSQL refused (a value out of range, a string it cannot hold): kept aside with its
    /// error for inspection, and answered 200 so Shopify does not retry it for hours. Neither the body nor the error detail
    /// is logged, as both may hold what a shopper typed.
    /// </summary>
    internal static IngestResult AddKeepFailed(NpgsqlBatch batch, PendingDelivery d)
    {
        const string sql = """
            INSERT INTO webhook_deliveries (delivery_id, shop_domain, shop_id, topic, api_version, event_id, triggered_at, received_at, outcome, body, raw_body, error)
            SELECT $1, $2, s.id, $3, $4, $5, $6, $7, CASE WHEN s.id IS NULL THEN 'unknown_shop' ELSE 'failed' END,
                   CASE WHEN s.id IS NULL OR $9 THEN $10::jsonb ELSE $8::jsonb END,
                   CASE WHEN s.id IS NOT NULL AND $9 THEN $11 END, $12
            FROM (SELECT 1) one LEFT JOIN shops s ON s.domain = $2
            ON CONFLICT (delivery_id) DO NOTHING
            """;
        var asBytes = d.KeepAsBytes;
        var cmd = new NpgsqlBatchCommand(sql);
        AddDeliveryParameters(cmd.Parameters, d.Headers, d.ReceivedAt);
        cmd.Parameters.Add(new NpgsqlParameter { Value = asBytes ? "{}" : Encoding.UTF8.GetString(d.Body), NpgsqlDbType = NpgsqlDbType.Jsonb });
        cmd.Parameters.Add(Sql.Param(asBytes));
        cmd.Parameters.Add(new NpgsqlParameter { Value = WithheldSummary(d.Body, asBytes ? "kept as bytes in raw_body" : "no shop of ours"), NpgsqlDbType = NpgsqlDbType.Jsonb });
        cmd.Parameters.Add(new NpgsqlParameter { Value = d.Body, NpgsqlDbType = NpgsqlDbType.Bytea });
        cmd.Parameters.Add(Sql.Param(d.KeptAsideFor));
        batch.BatchCommands.Add(cmd);
        return new IngestResult(IngestOutcome.KeptFailed, d.KeptAsideFor);
    }

    internal static bool IsDataError(PostgresException e) => e.SqlState.StartsWith("22", StringComparison.Ordinal) || e.SqlState.StartsWith("23", StringComparison.Ordinal);

    /// <summary>What debugging a delivery we cannot keep needs, and no personal data: its size and digest.</summary>
    private static string WithheldSummary(byte[] body, string why) => new JsonObject
    {
        ["withheld"] = why,
        ["bytes"] = body.Length,
        ["sha256"] = Convert.ToHexStringLower(SHA256.HashData(body)),
    }.ToJsonString();

    /// <summary>$1 to $7 of both delivery inserts: the delivery's headers and when it was received.</summary>
    private static void AddDeliveryParameters(NpgsqlParameterCollection p, WebhookDeliveryHeaders h, DateTimeOffset receivedAt)
    {
        p.Add(Sql.Param(h.DeliveryId));
        p.Add(Sql.Param(h.ShopDomain));
        p.Add(Sql.Param(h.Topic));
        p.Add(new NpgsqlParameter { Value = (object?)h.ApiVersion ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
        p.Add(new NpgsqlParameter { Value = (object?)h.EventId ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
        p.Add(Sql.Param(TypedNull.Time(h.TriggeredAt)));
        p.Add(Sql.Param(receivedAt));
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

/// <summary>A verified, parsed delivery waiting for its batch; answered when the batch's transaction commits.</summary>
internal sealed class PendingDelivery(WebhookDeliveryHeaders headers, byte[] body, TopicHandler? handler, long? claimedShopifyShopId,
    DateTimeOffset receivedAt)
{
    public WebhookDeliveryHeaders Headers { get; } = headers;
    public byte[] Body { get; } = body;
    public TopicHandler? Handler { get; } = handler;
    public long? ClaimedShopifyShopId { get; } = claimedShopifyShopId;
    public DateTimeOffset ReceivedAt { get; } = receivedAt;
    public object? Rows { get; set; }
    public OwnedIds Owned { get; set; } = OwnedIds.None;
    /// <summary>The customer whose erasure must also keep this raw body out.</summary>
    public long? CustomerId { get; set; }
    /// <summary>Set when the rows cannot be stored: the delivery is written as failed, with this error.</summary>
    public string? KeptAsideFor { get; set; }
    public bool KeepAsBytes { get; set; }
    public TaskCompletionSource<IngestResult> Answer { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
}
