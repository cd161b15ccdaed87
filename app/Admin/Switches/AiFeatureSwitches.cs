using Microsoft.Extensions.DependencyInjection.Extensions;
using Npgsql;
using NpgsqlTypes;

namespace PluginApp.Admin.Switches;

/// <summary>An AI feature a merchant can turn off for the shop (upsells now; risk, churn and offers as they land).</summary>
/// <param name="OffChoices">What the feature does when off, e.g. "nothing" or "bestsellers", the first being the default.</param>
public sealed record AiFeature(string Name, string Title, string WhatItDoes, string[] OffChoices)
{
    /// <summary>Called on this instance after the shop's switch or shopper notice changed (others reload within seconds).</summary>
    public Action<IServiceProvider, long>? OnChanged { get; init; }
}

/// <summary>A feature's state for one shop: on, or off with what shows instead.</summary>
public sealed record FeatureSwitch(string Feature, bool Enabled, string WhenOff);

public sealed record FeatureSwitchChange(string Feature, bool Enabled, string WhenOff, DateTimeOffset At, string? By);

/// <summary>Every registered feature, by name.</summary>
public sealed class AiFeatures(IEnumerable<AiFeature> features)
{
    public IReadOnlyList<AiFeature> All { get; } = features.ToList();

    public AiFeature? Find(string name) => All.FirstOrDefault(f => f.Name == name);
}

/// <summary>The switches per shop, each change kept with who made it and when. A feature nobody switched is on.</summary>
public sealed class AiFeatureSwitches(NpgsqlDataSource db, AiFeatures features, TimeProvider clock)
{
    public async Task<List<FeatureSwitch>> GetAsync(long shopId, CancellationToken ct)
    {
        await using var cmd = db.CreateCommand("SELECT feature, enabled, when_off FROM ai_feature_switches WHERE shop_id = $1");
        cmd.Parameters.AddWithValue(shopId);
        var stored = new Dictionary<string, FeatureSwitch>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct)) stored[r.GetString(0)] = new FeatureSwitch(r.GetString(0), r.GetBoolean(1), r.GetString(2));
        return features.All.Select(f => stored.GetValueOrDefault(f.Name) ?? new FeatureSwitch(f.Name, true, f.OffChoices[0])).ToList();
    }

    /// <summary>Problems with a requested switch, by field.</summary>
    public Dictionary<string, string[]> Problems(string? feature, string? whenOff)
    {
        var f = feature is null ? null : features.Find(feature);
        if (f is null) return new() { ["feature"] = [$"feature must be one of {string.Join(", ", features.All.Select(x => x.Name))}"] };
        if (whenOff is not null && !f.OffChoices.Contains(whenOff)) return new() { ["whenOff"] = [$"when off, {f.Title} can show {string.Join(" or ", f.OffChoices)}"] };
        return [];
    }

    public async Task SaveAsync(long shopId, string feature, bool enabled, string whenOff, string? by, CancellationToken ct)
    {
        var now = clock.GetUtcNow();
        await using var conn = await db.OpenConnectionAsync(ct);
        await using var tx = await conn.BeginTransactionAsync(ct);
        await using var batch = new NpgsqlBatch(conn, tx)
        {
            BatchCommands =
            {
                Cmd("""
                    INSERT INTO ai_feature_switches (shop_id, feature, enabled, when_off, updated_at, updated_by) VALUES ($1, $2, $3, $4, $5, $6)
                    ON CONFLICT (shop_id, feature) DO UPDATE SET enabled = $3, when_off = $4, updated_at = $5, updated_by = $6
                    """, shopId, feature, enabled, whenOff, now, by),
                Cmd("INSERT INTO ai_feature_switch_history (shop_id, feature, enabled, when_off, changed_at, changed_by) VALUES ($1, $2, $3, $4, $5, $6)",
                    shopId, feature, enabled, whenOff, now, by),
            },
        };
        await batch.ExecuteNonQueryAsync(ct);
        await tx.CommitAsync(ct);
    }

    public async Task<List<FeatureSwitchChange>> HistoryAsync(long shopId, CancellationToken ct)
    {
        await using var cmd = db.CreateCommand("""
            SELECT feature, enabled, when_off, changed_at, changed_by FROM ai_feature_switch_history WHERE shop_id = $1 ORDER BY id DESC LIMIT 50
            """);
        cmd.Parameters.AddWithValue(shopId);
        var list = new List<FeatureSwitchChange>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
            list.Add(new FeatureSwitchChange(r.GetString(0), r.GetBoolean(1), r.GetString(2), r.GetFieldValue<DateTimeOffset>(3), r.IsDBNull(4) ? null : r.GetString(4)));
        return list;
    }

    private static NpgsqlBatchCommand Cmd(string sql, long shopId, string feature, bool enabled, string whenOff, DateTimeOffset at, string? by) => new(sql)
    {
        Parameters =
        {
            new() { Value = shopId }, new() { Value = feature }, new() { Value = enabled }, new() { Value = whenOff }, new() { Value = at },
            new() { Value = (object?)by ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text },
        },
    };
}

/// <summary>The short text shoppers see behind "Why am I seeing this?"; null means the theme's default.</summary>
public sealed class ShopperNotices(NpgsqlDataSource db, TimeProvider clock)
{
    public const int MaxLength = 280;

    public async Task<string?> GetAsync(long shopId, CancellationToken ct)
    {
        await using var cmd = db.CreateCommand("SELECT text FROM shopper_notices WHERE shop_id = $1");
        cmd.Parameters.AddWithValue(shopId);
        return await cmd.ExecuteScalarAsync(ct) as string;
    }

    /// <summary>Saves the notice; an empty one goes back to the theme's default.</summary>
    public async Task SaveAsync(long shopId, string? text, string? by, CancellationToken ct)
    {
        text = string.IsNullOrWhiteSpace(text) ? null : text.Trim();
        await using var cmd = db.CreateCommand(text is null
            ? "DELETE FROM shopper_notices WHERE shop_id = $1"
            : """
              INSERT INTO shopper_notices (shop_id, text, updated_at, updated_by) VALUES ($1, $2, $3, $4)
              ON CONFLICT (shop_id) DO UPDATE SET text = $2, updated_at = $3, updated_by = $4
              """);
        cmd.Parameters.AddWithValue(shopId);
        if (text is not null)
        {
            cmd.Parameters.AddWithValue(text);
            cmd.Parameters.AddWithValue(clock.GetUtcNow());
            cmd.Parameters.Add(new NpgsqlParameter { Value = (object?)by ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
        }
        await cmd.ExecuteNonQueryAsync(ct);
    }
}

public static class AiFeatureExtensions
{
    /// <summary>Gives a feature its switch in the admin; serving reads the switch and calls nothing else.</summary>
    public static IServiceCollection AddAiFeature(this IServiceCollection services, AiFeature feature)
    {
        services.TryAddSingleton<AiFeatures>();
        services.TryAddSingleton<AiFeatureSwitches>();
        services.TryAddSingleton<ShopperNotices>();
        return services.AddSingleton(feature);
    }
}
