using System.Globalization;
using System.Text.Json;
using PluginApp.Store;
using PluginApp.Webhooks.Payloads;

namespace PluginApp.Compliance;

/// <summary>
/// The three mandatory privacy actions, added to the delivery's batch so that a request is either
/// fully carried out and recorded, or not recorded at all and retried by Shopify.
/// </summary>
internal sealed class ComplianceService(StoreWriter store, long shopId)
{
    /// <summary>customers/data_request: assemble what we hold on the customer and keep it for the merchant.</summary>
    public void AddDataRequest(JsonElement payload, DateTimeOffset now)
    {
        var customerId = CustomerId(payload);
        var orders = OrderIds(payload, "orders_requested");
        store.Add("""
            INSERT INTO customer_data_requests (shop_id, customer_id, data_request_id, requested_at, export)
            SELECT $1, $2, $3, $4, jsonb_build_object(
              'customer', (SELECT to_jsonb(c) - 'shop_id' FROM customers c WHERE c.shop_id = $1 AND c.id = $2),
              'orders', (SELECT coalesce(jsonb_agg(to_jsonb(o) - 'shop_id' || jsonb_build_object(
                   'lines', (SELECT coalesce(jsonb_agg(to_jsonb(l) - 'shop_id'), '[]') FROM order_lines l WHERE l.shop_id = o.shop_id AND l.order_id = o.id),
                   'refunds', (SELECT coalesce(jsonb_agg(to_jsonb(r) - 'shop_id'), '[]') FROM refunds r WHERE r.shop_id = o.shop_id AND r.order_id = o.id))), '[]')
                 FROM orders o WHERE o.shop_id = $1 AND (o.customer_id = $2 OR o.id = ANY($5))),
              'checkouts', (SELECT coalesce(jsonb_agg(to_jsonb(k) - 'shop_id'), '[]') FROM checkouts k WHERE k.shop_id = $1 AND k.customer_id = $2))
            """, shopId, customerId, payload.OptionalObject("data_request")?.OptionalId("id") ?? (object)new TypedNull(NpgsqlTypes.NpgsqlDbType.Bigint),
            now, orders);
    }

    /// <summary>customers/redact: erase the customer's personal data wherever we hold it, raw deliveries included.</summary>
    public void AddCustomerRedaction(JsonElement payload, DateTimeOffset now)
    {
        var customerId = CustomerId(payload);
        var orders = OrderIds(payload, "orders_to_redact");
        // Why text: raw bodies of other topics hold non-numeric ids, and a cast would fail on them.
        var orderKeys = orders.Select(o => o.ToString(CultureInfo.InvariantCulture)).ToArray();
        // Why a tombstone row when we never saw the customer: a late delivery must not bring the data back.
        store.Add("""
            INSERT INTO customers (shop_id, id, redacted_at) VALUES ($1, $2, $3)
            ON CONFLICT (shop_id, id) DO UPDATE SET email = NULL, first_name = NULL, last_name = NULL, phone = NULL,
              tags = '', accepts_marketing = NULL, redacted_at = $3
            """, shopId, customerId, now);
        store.Add("UPDATE orders SET email = NULL, browser_ip = NULL WHERE shop_id = $1 AND (customer_id = $2 OR id = ANY($3))", shopId, customerId, orders);
        store.Add("UPDATE checkouts SET email = NULL WHERE shop_id = $1 AND customer_id = $2", shopId, customerId);
        store.Add("DELETE FROM customer_data_requests WHERE shop_id = $1 AND customer_id = $2", shopId, customerId);
        store.Add("DELETE FROM recommendation_events WHERE shop_id = $1 AND customer_id = $2", shopId, customerId);
        store.Add("UPDATE recommendation_decisions SET customer_id = NULL WHERE shop_id = $1 AND customer_id = $2", shopId, customerId);
        store.Add("""
            UPDATE webhook_deliveries d SET body = jsonb_build_object('redacted_at', $3::timestamptz)
            WHERE d.shop_id = $1 AND NOT d.body ? 'redacted_at' AND (
                 d.body @> jsonb_build_object('customer', jsonb_build_object('id', $2::bigint))
              OR (d.topic LIKE 'customers/%' AND d.body @> jsonb_build_object('id', $2::bigint))
              OR (d.topic LIKE 'orders/%' AND (d.body ->> 'id') = ANY($4))
              OR (d.topic = 'refunds/create' AND (d.body ->> 'order_id') = ANY($4)))
            """, shopId, customerId, now, orderKeys);
    }

    /// <summary>shop/redact: erase everything we hold for the shop. Store rows cascade from the shop row.</summary>
    public static void AddShopRedaction(StoreWriter store, string domain, string keepDeliveryId)
    {
        store.Add("DELETE FROM webhook_deliveries WHERE shop_domain = $1 AND delivery_id <> $2", domain, keepDeliveryId);
        // Decisions are a high-volume log without a foreign key; the rest cascades from the shop row.
        store.Add("DELETE FROM recommendation_decisions WHERE shop_id = (SELECT id FROM shops WHERE domain = $1)", domain);
        store.Add("DELETE FROM shops WHERE domain = $1", domain);
    }

    /// <summary>Checks a compliance payload before anything is written.</summary>
    public static void Validate(string topic, JsonElement payload)
    {
        _ = CustomerId(payload);
        _ = OrderIds(payload, topic == "customers/redact" ? "orders_to_redact" : "orders_requested");
    }

    private static long CustomerId(JsonElement payload) =>
        payload.OptionalObject("customer")?.RequiredId("id") ?? throw new MalformedPayloadException("'customer.id' is missing");

    private static long[] OrderIds(JsonElement payload, string list) => payload.OptionalArray(list).Select(o =>
        o.ValueKind == JsonValueKind.Number && o.TryGetInt64(out var id) ? id
            : throw new MalformedPayloadException($"'{list}' holds a value that is not an order id")).ToArray();
}
