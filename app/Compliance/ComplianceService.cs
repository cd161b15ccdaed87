using System.Text.Json;
using System.Text.Json.Nodes;
using Npgsql;
using PluginApp.Store;
using PluginApp.Webhooks.Payloads;

namespace PluginApp.Compliance;

/// <summary>
/// The three mandatory privacy actions, run inside the delivery's transaction so that a request is
/// either fully carried out and recorded, or not recorded and retried by Shopify.
/// </summary>
internal sealed class ComplianceService(NpgsqlConnection conn, NpgsqlTransaction tx, long shopId)
{
    /// <summary>customers/data_request: assemble what we hold on the customer and keep it for the merchant.</summary>
    public async Task RecordDataRequestAsync(JsonElement payload, DateTimeOffset now, CancellationToken ct)
    {
        var customerId = payload.OptionalObject("customer")?.RequiredId("id")
                         ?? throw new MalformedPayloadException("'customer.id' is missing");
        var requestedOrders = payload.OptionalArray("orders_requested").Select(o => o.GetInt64()).ToArray();
        var export = new JsonObject
        {
            ["customer"] = await QueryJson("SELECT to_jsonb(c) - 'shop_id' FROM customers c WHERE c.shop_id = $1 AND c.id = $2",
                ct, shopId, customerId),
            ["orders"] = await QueryJson("""
                SELECT coalesce(jsonb_agg(to_jsonb(o) - 'shop_id' || jsonb_build_object('lines',
                  (SELECT coalesce(jsonb_agg(to_jsonb(l) - 'shop_id'), '[]') FROM order_lines l WHERE l.shop_id = o.shop_id AND l.order_id = o.id),
                  'refunds',
                  (SELECT coalesce(jsonb_agg(to_jsonb(r) - 'shop_id'), '[]') FROM refunds r WHERE r.shop_id = o.shop_id AND r.order_id = o.id))), '[]')
                FROM orders o WHERE o.shop_id = $1 AND (o.customer_id = $2 OR o.id = ANY($3))
                """, ct, shopId, customerId, requestedOrders),
            ["checkouts"] = await QueryJson("""
                SELECT coalesce(jsonb_agg(to_jsonb(k) - 'shop_id'), '[]') FROM checkouts k WHERE k.shop_id = $1 AND k.customer_id = $2
                """, ct, shopId, customerId),
        };
        await using var cmd = new NpgsqlCommand("""
            INSERT INTO customer_data_requests (shop_id, customer_id, data_request_id, requested_at, export)
            VALUES ($1, $2, $3, $4, $5::jsonb)
            """, conn, tx);
        cmd.Parameters.Add(UpsertStatement.Param(shopId));
        cmd.Parameters.Add(UpsertStatement.Param(customerId));
        cmd.Parameters.Add(UpsertStatement.Param(payload.OptionalObject("data_request")?.OptionalId("id")));
        cmd.Parameters.Add(UpsertStatement.Param(now));
        cmd.Parameters.Add(UpsertStatement.Param(export.ToJsonString()));
        await cmd.ExecuteNonQueryAsync(ct);
    }

    /// <summary>customers/redact: erase the customer's personal data wherever we hold it, raw deliveries included.</summary>
    public async Task RedactCustomerAsync(JsonElement payload, DateTimeOffset now, CancellationToken ct)
    {
        var customerId = payload.OptionalObject("customer")?.RequiredId("id")
                         ?? throw new MalformedPayloadException("'customer.id' is missing");
        var orders = payload.OptionalArray("orders_to_redact").Select(o => o.GetInt64()).ToArray();
        // Why text: raw bodies of other topics hold non-numeric ids, and a cast would fail on them.
        var orderKeys = orders.Select(o => o.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        await using var batch = new NpgsqlBatch(conn, tx);
        void Add(string sql)
        {
            var c = new NpgsqlBatchCommand(sql);
            c.Parameters.Add(UpsertStatement.Param(shopId));
            c.Parameters.Add(UpsertStatement.Param(customerId));
            c.Parameters.Add(UpsertStatement.Param(orders));
            c.Parameters.Add(UpsertStatement.Param(now));
            c.Parameters.Add(UpsertStatement.Param(orderKeys));
            batch.BatchCommands.Add(c);
        }
        // Why a tombstone row when we never saw the customer: a late delivery must not bring the data back.
        Add("""
            INSERT INTO customers (shop_id, id, redacted_at) VALUES ($1, $2, $4)
            ON CONFLICT (shop_id, id) DO UPDATE SET email = NULL, first_name = NULL, last_name = NULL, phone = NULL,
              tags = '', accepts_marketing = NULL, redacted_at = $4
            """);
        Add("UPDATE orders SET email = NULL, browser_ip = NULL WHERE shop_id = $1 AND (customer_id = $2 OR id = ANY($3))");
        Add("UPDATE checkouts SET email = NULL WHERE shop_id = $1 AND customer_id = $2");
        Add("DELETE FROM customer_data_requests WHERE shop_id = $1 AND customer_id = $2");
        Add("""
            UPDATE webhook_deliveries d SET body = jsonb_build_object('redacted_at', $4::timestamptz)
            WHERE d.shop_id = $1 AND NOT d.body ? 'redacted_at' AND (
                 d.body @> jsonb_build_object('customer', jsonb_build_object('id', $2::bigint))
              OR (d.topic LIKE 'customers/%' AND d.body @> jsonb_build_object('id', $2::bigint))
              OR (d.topic LIKE 'orders/%' AND (d.body ->> 'id') = ANY($5))
              OR (d.topic = 'refunds/create' AND (d.body ->> 'order_id') = ANY($5)))
            """);
        await batch.ExecuteNonQueryAsync(ct);
    }

    /// <summary>shop/redact: erase everything we hold for the shop. Rows cascade from the shop row.</summary>
    public static async Task RedactShopAsync(NpgsqlConnection conn, NpgsqlTransaction tx, string domain, string keepDeliveryId,
        CancellationToken ct)
    {
        await using var batch = new NpgsqlBatch(conn, tx)
        {
            BatchCommands =
            {
                new NpgsqlBatchCommand("DELETE FROM webhook_deliveries WHERE shop_domain = $1 AND delivery_id <> $2")
                    { Parameters = { UpsertStatement.Param(domain), UpsertStatement.Param(keepDeliveryId) } },
                new NpgsqlBatchCommand("DELETE FROM shops WHERE domain = $1") { Parameters = { UpsertStatement.Param(domain) } },
            },
        };
        await batch.ExecuteNonQueryAsync(ct);
    }

    private async Task<JsonNode?> QueryJson(string sql, CancellationToken ct, params object[] args)
    {
        await using var cmd = new NpgsqlCommand(sql, conn, tx);
        foreach (var a in args) cmd.Parameters.Add(UpsertStatement.Param(a));
        var result = await cmd.ExecuteScalarAsync(ct);
        return result is string s ? JsonNode.Parse(s) : null;
    }
}
