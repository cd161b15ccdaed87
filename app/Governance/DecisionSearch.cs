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
        if (q.From is { } f && q.To is { } t && f > t) problems["to"] = ["the end of the period is before its start"];
        if (q.Limit is < 1 or > MaxLimit) problems["limit"] = [$"limit must be between 1 and {MaxLimit}"];
        return problems;
    }

    public async Task<List<DecisionView>> FindAsync(long shopId, DecisionQuery q, CancellationToken ct)
    {
        // An order's decisions: its risk scores, the upsell answers it bought from, the offers its cart was shown. A customer's: those
        // made for them (upsells, offers, churn) and those about their orders (risk).
        await using var cmd = db.CreateCommand("""
            SELECT decision_id, kind, decided_at, subject, path, fallback, model_kind, model_version, arm, order_id, customer_id, input_ids, output_ids,
                   inputs::text, output::text, reasons, latency_ms, shadow::text
            FROM decisions d
            WHERE shop_id = $1
              AND ($2::text IS NULL OR kind = $2)
              AND ($3::bigint IS NULL OR order_id = $3
                   OR decision_id IN (SELECT a.request_id FROM recommendation_attributions a WHERE a.shop_id = $1 AND a.order_id = $3)
                   OR cart_token = (SELECT o.cart_token FROM orders o WHERE o.shop_id = $1 AND o.id = $3))
              AND ($4::bigint IS NULL OR customer_id = $4 OR order_id IN (SELECT o.id FROM orders o WHERE o.shop_id = $1 AND o.customer_id = $4))
              AND ($5::bigint IS NULL OR $5 = ANY(input_ids) OR $5 = ANY(output_ids))
              AND ($6::timestamptz IS NULL OR decided_at >= $6)
              AND ($7::timestamptz IS NULL OR decided_at < $7)
            ORDER BY decided_at DESC, decision_id LIMIT $8
            """);
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
