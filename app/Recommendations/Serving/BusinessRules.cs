using System.Text.Json;
using Npgsql;

namespace PluginApp.Recommendations;

/// <summary>A merchant's rules for what may be recommended. The defaults are the safe ones.</summary>
public sealed record BusinessRules
{
    public bool ExcludeOutOfStock { get; init; } = true;
    public bool ExcludeInCart { get; init; } = true;
    public long[] BlockedProductIds { get; init; } = [];
    public long[] BlockedCollectionIds { get; init; } = [];
    /// <summary>Shown first, in this order, when they pass the other rules.</summary>
    public long[] PinnedProductIds { get; init; } = [];
    /// <summary>A candidate may cost at most this many times the anchor product (the viewed product, or the dearest cart item).</summary>
    public decimal? MaxPriceRatio { get; init; }
    /// <summary>Minimum (price - cost) / price, in percent, for products whose cost is known.</summary>
    public decimal? MinMarginPercent { get; init; }
    public int? MaxPerProductType { get; init; }

    public static readonly BusinessRules Default = new();

    /// <summary>Every problem with these rules by field (camelCase, as the JSON and the form name them), each naming the bad value.</summary>
    public Dictionary<string, string[]> Problems()
    {
        var p = new Dictionary<string, List<string>>();
        void Add(string field, string message) => (p.TryGetValue(field, out var l) ? l : p[field] = []).Add(message);
        foreach (var (name, ids, max) in new[] { ("blockedProductIds", BlockedProductIds, 500), ("blockedCollectionIds", BlockedCollectionIds, 500), ("pinnedProductIds", PinnedProductIds, 20) })
        {
            if (ids is null) { Add(name, "must be a list of ids"); continue; }
            if (ids.Length > max) Add(name, $"has {ids.Length} entries; at most {max}");
            if (ids.Any(i => i <= 0)) Add(name, $"holds {ids.First(i => i <= 0)}, which is not an id");
        }
        if (MaxPriceRatio is { } r && (r <= 0 || r > 100)) Add("maxPriceRatio", $"{r} must be above 0 and at most 100");
        if (MinMarginPercent is { } m && (m < 0 || m >= 100)) Add("minMarginPercent", $"{m} must be from 0 to below 100");
        if (MaxPerProductType is { } t && (t < 1 || t > 50)) Add("maxPerProductType", $"{t} must be from 1 to 50");
        return p.ToDictionary(kv => kv.Key, kv => kv.Value.ToArray());
    }
}

/// <summary>Rules per shop with their change history.</summary>
public sealed class RulesStore(NpgsqlDataSource db, TimeProvider clock)
{
    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    public async Task<(BusinessRules Rules, int Version)> GetAsync(long shopId, CancellationToken ct)
    {
        await using var cmd = db.CreateCommand("SELECT rules::text, version FROM recommendation_rules WHERE shop_id = $1");
        cmd.Parameters.AddWithValue(shopId);
        await using var r = await cmd.ExecuteReaderAsync(ct);
        return await r.ReadAsync(ct) ? (JsonSerializer.Deserialize<BusinessRules>(r.GetString(0), Json)!, r.GetInt32(1)) : (BusinessRules.Default, 0);
    }

    public async Task<int> SaveAsync(long shopId, BusinessRules rules, string? changedBy, CancellationToken ct)
    {
        var json = JsonSerializer.Serialize(rules, Json);
        await using var batch = new NpgsqlBatch(await db.OpenConnectionAsync(ct))
        {
            BatchCommands =
            {
                new NpgsqlBatchCommand("""
                    INSERT INTO recommendation_rules (shop_id, version, rules, updated_at) VALUES ($1, 1, $2::jsonb, $3)
                    ON CONFLICT (shop_id) DO UPDATE SET version = recommendation_rules.version + 1, rules = excluded.rules, updated_at = excluded.updated_at
                    """) { Parameters = { new() { Value = shopId }, new() { Value = json }, new() { Value = clock.GetUtcNow() } } },
                new NpgsqlBatchCommand("""
                    INSERT INTO recommendation_rules_history (shop_id, version, rules, changed_at, changed_by)
                    SELECT shop_id, version, rules, updated_at, $2 FROM recommendation_rules WHERE shop_id = $1 RETURNING version
                    """) { Parameters = { new() { Value = shopId }, new() { Value = (object?)changedBy ?? DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Text } } },
                // Every instance drops the shop's catalog snapshot, and the answers cached against it, when this commits.
                CatalogCache.Announcement(shopId),
            },
        };
        await using var conn = batch.Connection!;
        await using var tx = await conn.BeginTransactionAsync(ct);
        batch.Transaction = tx;
        var version = (int)(await batch.ExecuteScalarAsync(ct) ?? 0);
        await tx.CommitAsync(ct);
        return version;
    }

    /// <summary>How many changes of its rules the admin lists (the Rules page and the history API), newest first.</summary>
    public const int HistoryShown = 100;

    /// <summary>The shop's latest <paramref name="limit"/> versions of its rules, newest first.</summary>
    public async Task<List<(int Version, DateTimeOffset At, string? By, JsonElement Rules)>> HistoryAsync(long shopId, int limit, CancellationToken ct)
    {
        await using var cmd = db.CreateCommand("SELECT version, changed_at, changed_by, rules::text FROM recommendation_rules_history WHERE shop_id = $1 ORDER BY id DESC LIMIT $2");
        cmd.Parameters.AddWithValue(shopId);
        cmd.Parameters.AddWithValue(limit);
        var list = new List<(int, DateTimeOffset, string?, JsonElement)>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
            list.Add((r.GetInt32(0), r.GetFieldValue<DateTimeOffset>(1), r.IsDBNull(2) ? null : r.GetString(2), JsonDocument.Parse(r.GetString(3)).RootElement.Clone()));
        return list;
    }
}
