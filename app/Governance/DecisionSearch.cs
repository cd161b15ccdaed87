using System.Text.Json;
using Npgsql;
using NpgsqlTypes;
using PluginApp.Data;

namespace PluginApp.Governance;

/// <summary>What the merchant searches the decision log by; every field optional, all given ones must match.</summary>
public sealed record DecisionQuery(string? Kind = null, long? OrderId = null, long? CustomerId = null, long? ProductId = null,
    DateTimeOffset? From = null, DateTimeOffset? To = null, int Limit = 50);

public sealed record DecisionView(string DecisionId, string Kind, DateTimeOffset At, string? Subject, string Path, bool Fallback, string? ModelKind,
    int? ModelVersion, string? Arm, long? OrderId, long? CustomerId, long[] InputIds, long[] OutputIds, JsonElement? Inputs, JsonElement? Output,
    string[] Reasons, float? LatencyMs, JsonElement? Shadow);

/// <summary>The decision log as the merchant searches it: newest first, one shop only.</summary>
public sealed class DecisionSearch(NpgsqlDataSource db)
{
    public const int MaxLimit = 200;

    /// <summary>Problems with a query, by field.</summary>
    public static Dictionary<string, string[]> Problems(DecisionQuery q)
    {
        var problems = new Dictionary<string, string[]>();
        if (q.Kind is not null && !DecisionKinds.All.Contains(q.Kind)) problems["kind"] = [$"kind must be one of {string.Join(", ", DecisionKinds.All)}"];
        // An empty period too: the page's whole days end at the next midnight, so a period ending the day before it starts
        // arrives here as equal times (until 6 Dec 2026 it was searched as empty, "No decision matches").
        if (q.From is { } f && q.To is { } t && f >= t) problems["to"] = ["the end of the period must be after its start"];
        if (q.Limit is < 1 or > MaxLimit) problems["limit"] = [$"limit must be between 1 and {MaxLimit}"];
        return problems;
    }

    // Why an order's or a customer's decisions are gathered by lookups first: as conditions on the whole log (an OR of its
    // columns) they were found by reading the store's decisions newest first until the page filled, and an order has a few:
    // 269 ms for an order and 212 ms for a customer in a log of 1,000,000 decisions, growing with the store's traffic (5 ms
    // and 1 ms now). Each lookup has its index (decisions by order, by customer, by decision id, by cart since migration
    // 0045; the order's attributions through its lines); UNION keeps a decision found twice once. The WHERE below applies
    // the other filters.
    private const string OrdersDecisions = """
        (SELECT * FROM decisions WHERE shop_id = $1 AND order_id = $3
         UNION SELECT * FROM decisions WHERE shop_id = $1 AND decision_id IN (
             SELECT a.request_id FROM recommendation_attributions a
             WHERE a.shop_id = $1 AND a.order_id = $3 AND a.line_id IN (SELECT l.id FROM order_lines l WHERE l.shop_id = $1 AND l.order_id = $3))
         UNION SELECT * FROM decisions WHERE shop_id = $1 AND cart_token = (SELECT o.cart_token FROM orders o WHERE o.shop_id = $1 AND o.id = $3))
        """;

    private const string CustomersDecisions = """
        (SELECT * FROM decisions WHERE shop_id = $1 AND customer_id = $4
         UNION SELECT * FROM decisions WHERE shop_id = $1 AND order_id IN (SELECT o.id FROM orders o WHERE o.shop_id = $1 AND o.customer_id = $4))
        """;

    private const string OfTheCustomer = "($4::bigint IS NULL OR customer_id = $4 OR order_id IN (SELECT o.id FROM orders o WHERE o.shop_id = $1 AND o.customer_id = $4))";

    /// <summary>
    /// The search's statement: $1 shop, $2 kind, $3 order, $4 customer, $5 product, $6 from, $7 to, $8 limit. An order's
    /// decisions: its risk scores, the upsell answers it bought from, the offers its cart was shown. A customer's: those made
    /// for them (upsells, offers, churn) and those about their orders (risk). What the source already holds only is not
    /// asked again of each row (each parameter stays named in the statement).
    /// </summary>
    internal static string Statement(DecisionQuery q)
    {
        var (source, order, customer) = (q.OrderId, q.CustomerId) switch
        {
            (not null, _) => (OrdersDecisions, "$3::bigint IS NOT NULL", OfTheCustomer),
            (null, not null) => (CustomersDecisions, "$3::bigint IS NULL", "$4::bigint IS NOT NULL"),
            _ => ("decisions", "$3::bigint IS NULL", "$4::bigint IS NULL"),
        };
        return $"""
            SELECT decision_id, kind, decided_at, subject, path, fallback, model_kind, model_version, arm, order_id, customer_id, input_ids, output_ids,
                   inputs::text, output::text, reasons, latency_ms, shadow::text
            FROM {source} d
            WHERE shop_id = $1
              AND ($2::text IS NULL OR kind = $2)
              AND {order}
              AND {customer}
              AND ($5::bigint IS NULL OR $5 = ANY(input_ids) OR $5 = ANY(output_ids))
              AND ($6::timestamptz IS NULL OR decided_at >= $6)
              AND ($7::timestamptz IS NULL OR decided_at < $7)
            ORDER BY decided_at DESC, decision_id LIMIT $8
            """;
    }

    public async Task<List<DecisionView>> FindAsync(long shopId, DecisionQuery q, CancellationToken ct)
    {
        await using var cmd = db.CreateCommand(Statement(q));
        cmd.Parameters.Add(Sql.Param(shopId));
        cmd.Parameters.Add(Sql.Text(q.Kind));
        cmd.Parameters.Add(Long(q.OrderId));
        cmd.Parameters.Add(Long(q.CustomerId));
        cmd.Parameters.Add(Long(q.ProductId));
        cmd.Parameters.Add(new NpgsqlParameter { Value = (object?)q.From?.ToUniversalTime() ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.TimestampTz });
        cmd.Parameters.Add(new NpgsqlParameter { Value = (object?)q.To?.ToUniversalTime() ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.TimestampTz });
        cmd.Parameters.Add(Sql.Param(q.Limit));
        var list = new List<DecisionView>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
            list.Add(new DecisionView(r.GetString(0), r.GetString(1), r.GetFieldValue<DateTimeOffset>(2), r.IsDBNull(3) ? null : r.GetString(3), r.GetString(4),
                r.GetBoolean(5), r.IsDBNull(6) ? null : r.GetString(6), r.IsDBNull(7) ? null : r.GetInt32(7), r.IsDBNull(8) ? null : r.GetString(8),
                r.IsDBNull(9) ? null : r.GetInt64(9), r.IsDBNull(10) ? null : r.GetInt64(10), r.GetFieldValue<long[]>(11), r.GetFieldValue<long[]>(12),
                Json(r, 13), Json(r, 14), r.GetFieldValue<string[]>(15), r.IsDBNull(16) ? null : r.GetFloat(16), Json(r, 17)));
        return list;
    }

    private static NpgsqlParameter Long(long? v) => new() { Value = (object?)v ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Bigint };

    private static JsonElement? Json(NpgsqlDataReader r, int i) => r.IsDBNull(i) ? null : JsonDocument.Parse(r.GetString(i)).RootElement.Clone();
}
