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

public enum IngestOutcome { Normalized, StoredRaw, UnknownShop, ShopNotInstalled, Duplicate, Refused, KeptFailed, OrderDeleted }

/// <param name="Reason">Why a delivery was refused, or the data error that kept it aside.</param>
public sealed record IngestResult(IngestOutcome Outcome, string? Reason = null);

/// <summary>
/// Stores one verified delivery: its record and its normalized rows, once per delivery id, in the transaction of its batch
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

    // The outcome is decided in SQL, from the shop row, in the same statement that claims the delivery id. The raw body is
    // kept only when nothing else holds what it said: a topic the app does not act on. A delivery it acts on keeps its
    // summary (size, digest, resource id; $23) and its rows hold what the app keeps of it, so no second copy of a shopper's
    // data stays for good in the deliveries' log; a shop we do not hold (or no longer serve) gets the summary too. Why:
    // besides the privacy, parsing, compressing and logging the body took 314 µs of the 1,264 of statement time an order
    // delivery cost, and 4 KB of its 12 KB of write-ahead log (HISTORY.md, 3 Dec 2026). Why one statement for a segment of
    // deliveries (one row each, $1-$11, $22 and $23 their columns; the ids each owns as (delivery, id) pairs, $12-$21): a
    // statement per delivery cost PostgreSQL about as much again as the work of recording it (pgbench, 8 deliveries in one
    // transaction: 3.1 ms as 8 statements, 1.9 ms as one; HISTORY.md, 2 Dec 2026).
    internal static readonly string RecordSegmentSql = $$"""
        WITH d AS (
          SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[], $7::timestamptz[],
                               $8::bool[], $9::bool[], $10::bytea[], $11::int8[], $22::int8[], $23::text[])
               WITH ORDINALITY AS d(delivery_id, shop_domain, topic, api_version, event_id, triggered_at, received_at,
                                    acts_uninstalled, handled, body, shopify_shop_id, customer_id, summary, n))
        INSERT INTO webhook_deliveries (delivery_id, shop_domain, shop_id, topic, api_version, event_id, triggered_at, received_at, outcome, body)
        SELECT d.delivery_id, d.shop_domain, s.id, d.topic, d.api_version, d.event_id, d.triggered_at, d.received_at, decided.outcome,
               CASE WHEN s.id IS NULL THEN d.summary::jsonb || jsonb_build_object('withheld', 'no shop of ours')
                    -- A retry or late event of a customer who was erased: their personal data stays out of the raw body too.
                    -- Why here, before the segment's rows: customers/redact is a segment of its own, so an erasure is
                    -- stored before any record that follows it (IngestBatcher).
                    WHEN EXISTS (SELECT 1 FROM customers c WHERE c.shop_id = s.id AND c.id = d.customer_id AND c.redacted_at IS NOT NULL)
                    THEN jsonb_build_object('redacted_at', d.received_at)
                    WHEN NOT (d.acts_uninstalled OR {{ShopStatus.Installed("s")}})
                      THEN d.summary::jsonb || jsonb_build_object('withheld', 'the shop is not installed')
                    WHEN decided.outcome = 'order_deleted' THEN d.summary::jsonb || jsonb_build_object('withheld', 'its order was deleted in Shopify: nothing of it is kept')
                    WHEN d.body IS NULL THEN d.summary::jsonb || jsonb_build_object('withheld', 'acted on: its rows hold what the app keeps')
                    ELSE convert_from(d.body, 'UTF8')::jsonb END
        FROM d LEFT JOIN shops s ON s.domain = d.shop_domain
        -- What becomes of the delivery (its body kept follows from it).
        CROSS JOIN LATERAL (SELECT CASE WHEN d.shopify_shop_id IS NOT NULL AND s.shopify_shop_id IS NOT NULL AND s.shopify_shop_id <> d.shopify_shop_id
                          THEN 'refused: the payload names another Shopify shop id'
                        -- An id it names is already held for another shop: a signed body replayed for that shop. Why each looked
                        -- up by its delivery's array of ids: a join of every delivery's ids was planned as a scan of a whole table.
                        WHEN EXISTS (SELECT 1 FROM orders o WHERE o.id = ANY (ARRAY(SELECT x.id FROM unnest($12::int8[], $13::int8[]) AS x(n, id) WHERE x.n = d.n)) AND o.shop_id <> s.id)
                          OR EXISTS (SELECT 1 FROM customers c WHERE c.id = ANY (ARRAY(SELECT x.id FROM unnest($14::int8[], $15::int8[]) AS x(n, id) WHERE x.n = d.n)) AND c.shop_id <> s.id)
                          OR EXISTS (SELECT 1 FROM products p WHERE p.id = ANY (ARRAY(SELECT x.id FROM unnest($16::int8[], $17::int8[]) AS x(n, id) WHERE x.n = d.n)) AND p.shop_id <> s.id)
                          OR EXISTS (SELECT 1 FROM checkouts k WHERE k.token = ANY (ARRAY(SELECT x.token FROM unnest($18::int8[], $19::text[]) AS x(n, token) WHERE x.n = d.n)) AND k.shop_id <> s.id)
                          OR EXISTS (SELECT 1 FROM carts t WHERE t.token = ANY (ARRAY(SELECT x.token FROM unnest($20::int8[], $21::text[]) AS x(n, token) WHERE x.n = d.n)) AND t.shop_id <> s.id)
                          THEN 'refused: its resource is already held for another shop'
                        WHEN s.id IS NULL THEN 'unknown_shop'
                        WHEN d.acts_uninstalled THEN 'normalized'
                        WHEN NOT {{ShopStatus.Installed("s")}} THEN 'shop_not_installed'
                        -- An order Shopify deleted: a delivery of it (or of its refund or transaction) that comes later, or a copy of
                        -- its deletion, writes nothing, and no feature's step runs for it.
                        WHEN {{StoreWriter.OrderDeleted("s.id", "ANY (ARRAY(SELECT x.id FROM unnest($12::int8[], $13::int8[]) AS x(n, id) WHERE x.n = d.n))")}}
                          THEN 'order_deleted'
                        WHEN d.handled THEN 'normalized'
                        ELSE 'stored_raw' END AS outcome) decided
        -- Why looked up first as well: a copy Shopify sent again is then answered without parsing and compressing its body
        -- (the conflict clause still settles copies in flight at once).
        WHERE NOT EXISTS (SELECT 1 FROM webhook_deliveries w WHERE w.delivery_id = d.delivery_id)
        ORDER BY d.n
        ON CONFLICT (delivery_id) DO NOTHING
        RETURNING delivery_id AS ingest_delivery, shop_id AS ingest_shop_id, outcome AS ingest_outcome
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
        var body = JsonSanitizer.StripNul(signedBody);
        using var doc = ParseJson(body);
        var root = doc.RootElement;
        var claim = ShopBinding.Read(h.Topic, root);
        if (ShopBinding.Mismatch(h.Topic, h.ShopDomain, root, claim) is { } mismatch) return (null, new IngestResult(IngestOutcome.Refused, mismatch));

        topics.Handlers.TryGetValue(h.Topic, out var handler);
        var delivery = new PendingDelivery(h, body, handler, claim.ShopifyShopId, clock.GetUtcNow())
        {
            Summary = Summary(body, root),
        };
        try { delivery.Rows = handler?.Parse(root); }
        catch (InvalidOperationException e)
        {
            // Valid JSON whose values .NET cannot read (e.g. a lone surrogate in a string): keep it aside, do not make Shopify retry.
            // Its customer, where it can be read, keeps an erased customer's body out (AddKeepFailed).
            try { delivery.CustomerId = CustomerIdOf(h.Topic, root); }
            catch (Exception unreadable) when (unreadable is InvalidOperationException or MalformedPayloadException) { }
            KeepAside(delivery, e.GetType().Name);
            return (delivery, null);
        }
        delivery.Owned = delivery.Rows is not null && handler!.Owned is { } o ? o(delivery.Rows) : OwnedIds.None;
        delivery.CustomerId = delivery.Rows is null ? null : CustomerIdOf(h.Topic, root);
        return (delivery, null);
    }

    /// <summary>
    /// Adds the statement that records a segment of deliveries (claiming each id, learning each shop, and whether a body was
    /// replayed from another shop) to the batch's next round trip. Its answer, read by <see cref="ReadRecordsAsync"/>, decides
    /// the rows. The segment's delivery ids are distinct (<see cref="IngestBatcher"/> ends a segment at a copy).
    /// </summary>
    internal static void AddRecords(NpgsqlBatch batch, IReadOnlyList<PendingDelivery> segment)
    {
        var n = segment.Count;
        var (ids, domains, topics, versions, events) = (new string[n], new string[n], new string[n], new string?[n], new string?[n]);
        var (triggered, received) = (new DateTime?[n], new DateTime[n]);
        var (actsUninstalled, handled, bodies, shopifyShopIds, customerIds) = (new bool[n], new bool[n], new byte[]?[n], new long?[n], new long?[n]);
        var summaries = new string[n];
        var (orders, customers, products, checkouts, carts) = (new Owned<long>(), new Owned<long>(), new Owned<long>(), new Owned<string>(), new Owned<string>());
        for (var i = 0; i < n; i++)
        {
            var d = segment[i];
            var h = d.Headers;
            (ids[i], domains[i], topics[i], versions[i], events[i]) = (h.DeliveryId, h.ShopDomain, h.Topic, h.ApiVersion, h.EventId);
            (triggered[i], received[i]) = (h.TriggeredAt?.UtcDateTime, d.ReceivedAt.UtcDateTime);
            actsUninstalled[i] = h.Topic == WebhookTopics.ShopRedact || d.Handler?.ActsOnUninstalledShop == true;
            handled[i] = d.Handler is not null || h.Topic is WebhookTopics.AppUninstalled or WebhookTopics.ShopRedact;
            // Only a body kept raw goes to PostgreSQL: the bytes as received (valid UTF-8: the body was parsed), read as jsonb
            // in SQL, so no copy of the body is made as a .NET string only to be encoded back to UTF-8 on the wire.
            bodies[i] = handled[i] ? null : d.Body;
            summaries[i] = d.Summary;
            shopifyShopIds[i] = d.ClaimedShopifyShopId;
            customerIds[i] = d.CustomerId;
            // Numbered from 1, as WITH ORDINALITY numbers the deliveries.
            orders.Add(i + 1, d.Owned.Orders);
            customers.Add(i + 1, d.Owned.Customers);
            products.Add(i + 1, d.Owned.Products);
            checkouts.Add(i + 1, d.Owned.CheckoutTokens);
            carts.Add(i + 1, d.Owned.CartTokens);
        }
        var record = new NpgsqlBatchCommand(RecordSegmentSql);
        var p = record.Parameters;
        p.Add(Sql.Array(ids, NpgsqlDbType.Text));
        p.Add(Sql.Array(domains, NpgsqlDbType.Text));
        p.Add(Sql.Array(topics, NpgsqlDbType.Text));
        p.Add(Sql.Array(versions, NpgsqlDbType.Text));
        p.Add(Sql.Array(events, NpgsqlDbType.Text));
        p.Add(Sql.Array(triggered, NpgsqlDbType.TimestampTz));
        p.Add(Sql.Array(received, NpgsqlDbType.TimestampTz));
        p.Add(Sql.Array(actsUninstalled, NpgsqlDbType.Boolean));
        p.Add(Sql.Array(handled, NpgsqlDbType.Boolean));
        p.Add(Sql.Array(bodies, NpgsqlDbType.Bytea));
        p.Add(Sql.Array(shopifyShopIds, NpgsqlDbType.Bigint));
        foreach (var owned in new[] { orders, customers, products })
        {
            p.Add(Sql.Array(owned.Deliveries.ToArray(), NpgsqlDbType.Bigint));
            p.Add(Sql.Array(owned.Ids.ToArray(), NpgsqlDbType.Bigint));
        }
        foreach (var owned in new[] { checkouts, carts })
        {
            p.Add(Sql.Array(owned.Deliveries.ToArray(), NpgsqlDbType.Bigint));
            p.Add(Sql.Array(owned.Ids.ToArray(), NpgsqlDbType.Text));
        }
        p.Add(Sql.Array(customerIds, NpgsqlDbType.Bigint));
        p.Add(Sql.Array(summaries, NpgsqlDbType.Text));
        batch.BatchCommands.Add(record);
    }


    /// <summary>The ids the deliveries of a segment own, as (delivery, id) pairs.</summary>
    private sealed class Owned<T>
    {
        public List<long> Deliveries { get; } = [];
        public List<T> Ids { get; } = [];

        public void Add(int delivery, IEnumerable<T> ids)
        {
            foreach (var id in ids)
            {
                Deliveries.Add(delivery);
                Ids.Add(id);
            }
        }
    }

    /// <summary>
    /// What the record statement of a round trip answered, by delivery id: a delivery it did not answer was already stored
    /// (an earlier delivery, or a copy in flight in another transaction), and nothing was written for it.
    /// </summary>
    /// <remarks>Why found by column name: the round trip also carries the previous deliveries' rows, some of which return rows.</remarks>
    internal static async Task<Dictionary<string, (long? ShopId, string Outcome)>> ReadRecordsAsync(NpgsqlDataReader reader, CancellationToken ct)
    {
        var answers = new Dictionary<string, (long? ShopId, string Outcome)>(StringComparer.Ordinal);
        var found = false;
        do
        {
            if (reader.FieldCount != 3 || reader.GetName(2) != "ingest_outcome") continue;
            found = true;
            while (await reader.ReadAsync(ct))
                answers.Add(reader.GetString(0), (reader.IsDBNull(1) ? null : reader.GetInt64(1), reader.GetString(2)));
        } while (await reader.NextResultAsync(ct));
        return found ? answers : throw new InvalidOperationException("The round trip carried no delivery record.");
    }

    /// <summary>
    /// Adds what the recorded delivery writes to the batch's next round trip: its rows and every ingestion step (normalized),
    /// or the removal of its record (refused). Nothing here commits; a statement PostgreSQL refuses aborts the whole
    /// transaction, and the batcher writes the batch again without this delivery (or with it kept aside).
    /// </summary>
    /// <param name="notified">The notifications the transaction already asks for (see <see cref="StoreWriter"/>).</param>
    /// <param name="segment">Where the segment's order rows and its steps' rows gather, to be written one statement per table and per step.</param>
    internal IngestResult AddRows(NpgsqlBatch batch, PendingDelivery d, (long? ShopId, string Outcome)? recorded,
        ISet<(string Channel, string Payload)> notified, SegmentRows? segment = null)
    {
        if (recorded is not var (shopId, outcome))
            return new IngestResult(IngestOutcome.Duplicate); // an earlier delivery, or a copy earlier in this batch
        var h = d.Headers;
        var store = new StoreWriter(batch, shopId ?? 0, notified, segment);
        if (outcome.StartsWith("refused", StringComparison.Ordinal))
        {
            // Why a delete, not a rollback: the batch-mates' rows stay in the transaction; a refused delivery leaves no row.
            store.Add("DELETE FROM webhook_deliveries WHERE delivery_id = $1", h.DeliveryId);
            return new IngestResult(IngestOutcome.Refused, outcome["refused: ".Length..]);
        }
        if (outcome != "normalized") return new IngestResult(Outcome(outcome));

        if (h.Topic == WebhookTopics.ShopRedact) ComplianceService.AddShopRedaction(store, h.ShopDomain, h.DeliveryId, h.TriggeredAt ?? d.ReceivedAt, d.ReceivedAt);
        else if (h.Topic == WebhookTopics.AppUninstalled) AddUninstall(store, shopId!.Value, h, d.ReceivedAt);
        else AddTopicRows(store, h.ShopDomain, d.Handler!, d.Rows!, new IngestionContext(h.ShopDomain, h.Topic, h.DeliveryId, d.ReceivedAt));
        return new IngestResult(IngestOutcome.Normalized);
    }

    /// <summary>The topic's rows, then every ingestion step that takes them.</summary>
    private void AddTopicRows(StoreWriter store, string shop, TopicHandler handler, object rows, IngestionContext context)
    {
        handler.Write(new TopicContext(store, new ComplianceService(store, store.ShopId, personalData), shop, context.Now), rows);
        foreach (var step in _steps)
            if (step.Rows.IsInstanceOfType(rows)) step.Add(store, rows, context);
    }

    /// <summary>
    /// Adds to the batch what a delivery of <paramref name="topic"/> with these rows writes, its topic's rows and every
    /// ingestion step, with no delivery recorded: for a job that writes again what a race undid (DeletedOrdersRecheck).
    /// </summary>
    internal void AddAsDelivered(NpgsqlBatch batch, long shopId, string shop, string topic, object rows, string why, DateTimeOffset now) =>
        AddTopicRows(new StoreWriter(batch, shopId), shop, topics.Handlers[topic], rows, new IngestionContext(shop, topic, why, now));

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
                   CASE WHEN erased.yes THEN jsonb_build_object('redacted_at', $7::timestamptz)
                        WHEN s.id IS NULL OR $9
                        THEN $10::jsonb || jsonb_build_object('withheld', CASE WHEN s.id IS NULL THEN 'no shop of ours' ELSE 'kept as bytes in raw_body' END)
                        ELSE $8::jsonb END,
                   CASE WHEN s.id IS NOT NULL AND $9 AND NOT erased.yes THEN $11 END, $12
            FROM (SELECT 1) one LEFT JOIN shops s ON s.domain = $2
            -- A retry or late event of what was erased (the customer, or a guest's order, checkout or cart; an order the
            -- erasure listed before we held it, erased_orders) keeps none of it, as RecordSegmentSql. Until 5 Dec 2026 an order
            -- listed before we held it, and an erased cart, were kept aside with all she gave.
            CROSS JOIN LATERAL (SELECT s.id IS NOT NULL AND (
                EXISTS (SELECT 1 FROM customers c WHERE c.shop_id = s.id AND c.id = $13 AND c.redacted_at IS NOT NULL)
                OR EXISTS (SELECT 1 FROM orders o WHERE o.shop_id = s.id AND o.id = ANY($14) AND o.redacted_at IS NOT NULL)
                OR EXISTS (SELECT 1 FROM erased_orders e WHERE e.shop_id = s.id AND e.order_id = ANY($14))
                OR EXISTS (SELECT 1 FROM checkouts k WHERE k.shop_id = s.id AND k.token = ANY($15) AND k.redacted_at IS NOT NULL)
                OR EXISTS (SELECT 1 FROM carts t WHERE t.shop_id = s.id AND t.token = ANY($16) AND t.redacted_at IS NOT NULL)) AS yes) erased
            ON CONFLICT (delivery_id) DO NOTHING
            """;
        var asBytes = d.KeepAsBytes;
        var cmd = new NpgsqlBatchCommand(sql);
        AddDeliveryParameters(cmd.Parameters, d.Headers, d.ReceivedAt);
        cmd.Parameters.Add(new NpgsqlParameter { Value = asBytes ? "{}" : Encoding.UTF8.GetString(d.Body), NpgsqlDbType = NpgsqlDbType.Jsonb });
        cmd.Parameters.Add(Sql.Param(asBytes));
        cmd.Parameters.Add(Sql.Param(d.Summary));
        cmd.Parameters.Add(new NpgsqlParameter { Value = d.Body, NpgsqlDbType = NpgsqlDbType.Bytea });
        cmd.Parameters.Add(Sql.Param(d.KeptAsideFor));
        cmd.Parameters.Add(new NpgsqlParameter<long?> { TypedValue = d.CustomerId, NpgsqlDbType = NpgsqlDbType.Bigint });
        // The orders, checkouts and carts it names (a refund its order's); one kept aside before its rows were read, its own
        // id (a cart's and a checkout's is its token).
        var summary = d.Rows is null ? JsonNode.Parse(d.Summary) : null;
        var own = summary?["id"] is JsonValue ownId && ownId.TryGetValue<long>(out var id) ? [id] : Array.Empty<long>();
        var topic = d.Headers.Topic;
        // A cart's body may name it by its id alone (CatalogPayloads.Cart), which is its token.
        string[] OwnToken(string prefix) => topic.StartsWith(prefix, StringComparison.Ordinal)
            && (summary?["token"] ?? summary?["id"]) is JsonValue t && t.TryGetValue<string>(out var token) ? [token] : [];
        cmd.Parameters.Add(Sql.Param(d.Owned.Orders.Length > 0 || !topic.StartsWith("orders/", StringComparison.Ordinal) ? d.Owned.Orders : own));
        cmd.Parameters.Add(Sql.Param(d.Owned.CheckoutTokens.Length > 0 ? d.Owned.CheckoutTokens : OwnToken("checkouts/")));
        cmd.Parameters.Add(Sql.Param(d.Owned.CartTokens.Length > 0 ? d.Owned.CartTokens : OwnToken("carts/")));
        batch.BatchCommands.Add(cmd);
        return new IngestResult(IngestOutcome.KeptFailed, d.KeptAsideFor);
    }

    internal static bool IsDataError(PostgresException e) => e.SqlState.StartsWith("22", StringComparison.Ordinal) || e.SqlState.StartsWith("23", StringComparison.Ordinal);

    /// <summary>
    /// What a delivery record holds of a body it may keep aside: its size and hash, and the ids an erasure finds it by (its
    /// own, a cart's or checkout's token, a refund's or transaction's order, the customer's id), so a body kept only as
    /// bytes (raw_body) is found as its parsed body would be. Until 6 Dec 2026 it held the resource's id alone, and a kept
    /// cart, checkout, refund or transaction stayed through her erasure and out of her export.
    /// </summary>
    private static string Summary(byte[] body, JsonElement root)
    {
        var summary = new JsonObject { ["bytes"] = body.Length, ["sha256"] = Convert.ToHexStringLower(SHA256.HashData(body)), ["id"] = ResourceId(root) };
        foreach (var name in (ReadOnlySpan<string>)["token", "order_id"])
            if (root.TryGetProperty(name, out var v) && v.ValueKind is JsonValueKind.Number or JsonValueKind.String) summary[name] = JsonValue.Create(v);
        if (root.TryGetProperty("customer", out var c) && c.ValueKind == JsonValueKind.Object && c.TryGetProperty("id", out var cid) && cid.ValueKind == JsonValueKind.Number)
            summary["customer"] = new JsonObject { ["id"] = JsonValue.Create(cid) };
        else if (root.TryGetProperty("customer_id", out var consentOf) && consentOf.ValueKind == JsonValueKind.Number) // a consent update's
            summary["customer"] = new JsonObject { ["id"] = JsonValue.Create(consentOf) };
        return summary.ToJsonString();
    }

    /// <summary>The resource's own id, as the body gives it (a number, or a cart's token), for the summary.</summary>
    private static JsonNode? ResourceId(JsonElement root)
    {
        foreach (var name in (ReadOnlySpan<string>)["id", "token"])
            if (root.TryGetProperty(name, out var id) && id.ValueKind is JsonValueKind.Number or JsonValueKind.String) return JsonValue.Create(id);
        return null;
    }

    /// <summary>$1 to $7 of the kept-aside insert: the delivery's headers and when it was received.</summary>
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

    /// <summary>
    /// app/uninstalled. Why not acted on at once while Shopify may still accept the app's token: the body is the shop's own
    /// object, the same at every uninstall, and the time it was triggered is an unsigned header, so a signed copy sent again
    /// with a fresh time disconnected an installed shop, and a replayed shop/redact then erased it (until 6 Dec 2026).
    /// Shopify revokes the token at an uninstall, so <see cref="Compliance.ShopTokenChecks"/> asks with it a minute later
    /// (<see cref="Compliance.ShopTokenChecks.FirstAsk"/>, so a revocation a moment behind its webhook is seen): refused, the
    /// shop is uninstalled as below. A shop with no token Shopify would take is uninstalled now.
    /// </summary>
    private static void AddUninstall(StoreWriter store, long shopId, WebhookDeliveryHeaders h, DateTimeOffset now)
    {
        var asked = $"{StoreData.ShopStatus.Reachable()} AND access_token_enc IS NOT NULL";
        store.Add($"""
            INSERT INTO shop_token_checks (shop_id, topic, delivery_id, triggered_at, requested_at, next_at)
            SELECT id, $2, $3, coalesce($4, $5), $5, $6 FROM shops
            WHERE id = $1 AND {asked} AND ($4::timestamptz IS NULL OR granted_at IS NULL OR granted_at <= $4)
            -- A later uninstall (after an install meanwhile) replaces one still waiting: its time is the one the rule weighs.
            ON CONFLICT (shop_id, topic) DO UPDATE SET delivery_id = excluded.delivery_id,
              triggered_at = greatest(shop_token_checks.triggered_at, excluded.triggered_at), requested_at = excluded.requested_at,
              next_at = least(shop_token_checks.next_at, excluded.next_at)
            """, shopId, WebhookTopics.AppUninstalled, h.DeliveryId, TypedNull.Time(h.TriggeredAt), now, now + Compliance.ShopTokenChecks.FirstAsk);
        Uninstall(store, shopId, h.ShopDomain, h.TriggeredAt, now, $"AND NOT ({asked})");
    }

    /// <summary>
    /// The shop uninstalled: its tokens dropped, the app stops acting for it; data stays until shop/redact. Why the time
    /// guard: Shopify retries a delivery for hours, so an uninstall can arrive after the merchant installed again; triggered
    /// before the shop's latest grant, it no longer holds, and the new token stays (without the header, it acts). Nor when
    /// the merchant's admin sent a session token issued after it (<c>session_seen_at</c>): Shopify issues them only to an
    /// installed app, so she installed again (a managed install tells the app nothing) and still runs it on the token
    /// Shopify revoked at the uninstall. That token is marked revoked instead, so her next visit exchanges a new one and
    /// the calls wait for it (until 7 Dec 2026 the shop was disconnected, and erased by the shop/redact 48 hours later).
    /// The shop is set up as a new install (installed when her session says, its setup marked for the install sweep: its
    /// store imported again, as nothing was stored while the app was away, and its blocks' visibility set again). Why two
    /// minutes after the uninstall: a page already open at the uninstall is not taken for a new install.
    /// </summary>
    public static void Uninstall(StoreWriter store, long shopId, string domain, DateTimeOffset? triggeredAt, DateTimeOffset now, string condition = "")
    {
        const string grantedBefore = "($3::timestamptz IS NULL OR granted_at IS NULL OR granted_at <= $3)";
        const string seenSince = "coalesce(session_seen_at > $3::timestamptz + interval '2 minutes', false)";
        store.Add($"""
            UPDATE shops SET token_revoked_at = coalesce(token_revoked_at, $2), installed_at = session_seen_at,
              setup_pending_since = coalesce(setup_pending_since, $2), updated_at = $2
            WHERE id = $1 AND {grantedBefore} AND {seenSince} {condition}
            """, shopId, now, TypedNull.Time(triggeredAt));
        store.Add($"""
            UPDATE shops SET uninstalled_at = $2, access_token_enc = NULL, access_token_expires_at = NULL,
              refresh_token_enc = NULL, refresh_token_expires_at = NULL, updated_at = $2
            WHERE id = $1 AND {grantedBefore} AND NOT {seenSince} {condition}
            """, shopId, now, TypedNull.Time(triggeredAt));
        // Every instance stops serving the storefront at once (ShopDirectory listens).
        store.Notify("shop_changed", domain);
    }

    private static long? CustomerIdOf(string topic, JsonElement root) =>
        topic is "customers/create" or "customers/update" ? root.OptionalId("id")
        : topic == WebhookTopics.ConsentTopic ? root.OptionalId("customer_id")
        : topic.StartsWith("customers/", StringComparison.Ordinal) ? null // compliance topics redact their own body
        : root.OptionalObject("customer")?.OptionalId("id");

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
        "order_deleted" => IngestOutcome.OrderDeleted,
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
    /// <summary>
    /// What the deliveries' log keeps of a body it does not keep whole, and no personal data: its size, its digest and the
    /// resource's id (JSON; <see cref="WebhookIngestor.RecordSegmentSql"/>).
    /// </summary>
    public string Summary { get; init; } = "{}";
    /// <summary>The customer whose erasure must also keep this raw body out (<see cref="WebhookIngestor.RecordSegmentSql"/>).</summary>
    public long? CustomerId { get; set; }
    /// <summary>Set when the rows cannot be stored: the delivery is written as failed, with this error.</summary>
    public string? KeptAsideFor { get; set; }
    public bool KeepAsBytes { get; set; }
    public TaskCompletionSource<IngestResult> Answer { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
}
