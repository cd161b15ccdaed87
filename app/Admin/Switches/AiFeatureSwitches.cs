using System.Collections.Concurrent;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Npgsql;
using NpgsqlTypes;
using PluginApp.Jobs;

namespace PluginApp.Admin.Switches;

/// <summary>An AI feature a merchant can turn off for the shop: upsells, cart offers, purchase intent, order risk, churn segments.</summary>
/// <param name="OffChoices">What the feature does when off, e.g. "nothing" or "bestsellers", the first being the default.</param>
public sealed record AiFeature(string Name, string Title, string WhatItDoes, string[] OffChoices)
{
    /// <summary>Called on every instance right after the shop's switch or shopper notice changed (NOTIFY feature_switched).</summary>
    public Action<IServiceProvider, long>? OnChanged { get; init; }

    /// <summary>Called once, on the instance that saved it, after the merchant switched the feature on (e.g. to queue work its being off held back).</summary>
    public Action<IServiceProvider, long>? WhenSwitchedOn { get; init; }

    /// <summary>
    /// Awaited once, on the instance that saved it, after the merchant switched the feature off: e.g. to drop the Shopify calls
    /// the feature queued and has not sent, which would otherwise go on changing the store after the merchant said stop.
    /// </summary>
    public Func<IServiceProvider, long, CancellationToken, Task>? WhenSwitchedOff { get; init; }

    /// <summary>
    /// The feature's theme blocks, when it has any: not rendered at all while the feature is off with their
    /// <see cref="BlockVisibility.HiddenWhenOff"/> choice (<see cref="BlockVisibilityJob"/>).
    /// </summary>
    public BlockVisibility? Blocks { get; init; }

    /// <summary>What each off choice means, in the merchant's words (e.g. "rule_prior" → "scores from the documented rules only").</summary>
    public IReadOnlyDictionary<string, string> OffMeaning { get; init; } = new Dictionary<string, string>();

    public string Meaning(string whenOff) => OffMeaning.TryGetValue(whenOff, out var m) ? m : whenOff.Replace('_', ' ');
}

/// <summary>A feature's state for one shop: on, or off with what shows instead.</summary>
public sealed record FeatureSwitch(string Feature, bool Enabled, string WhenOff);

public sealed record FeatureSwitchChange(string Feature, bool Enabled, string WhenOff, DateTimeOffset At, string? By, string? Reason);

/// <summary>Every registered feature, by name.</summary>
public sealed class AiFeatures(IEnumerable<AiFeature> features)
{
    public IReadOnlyList<AiFeature> All { get; } = features.ToList();

    public AiFeature? Find(string name) => All.FirstOrDefault(f => f.Name == name);
}

/// <summary>
/// The switches per shop, each change kept with who made it, when and why. A feature nobody switched is on. Every change
/// is announced (NOTIFY feature_switched) in its own transaction, so every instance drops what it cached and applies it
/// within milliseconds; features read their switch through <see cref="IsOnAsync"/>, which is cached per shop until then.
/// </summary>
public sealed class AiFeatureSwitches(NpgsqlDataSource db, AiFeatures features, TimeProvider clock)
{
    public const string Channel = "feature_switched";
    private readonly ConcurrentDictionary<long, Task<List<FeatureSwitch>>> _cache = new();

    /// <summary>The shop's switch for a feature, from this instance's cache (filled on first use, dropped on every change anywhere).</summary>
    public async ValueTask<FeatureSwitch> StateAsync(long shopId, string feature, CancellationToken ct)
    {
        var all = _cache.GetOrAdd(shopId, id => GetAsync(id, CancellationToken.None));
        try { return (await all.WaitAsync(ct)).Single(s => s.Feature == feature); }
        catch (Exception e) when (e is not OperationCanceledException) { _cache.TryRemove(shopId, out _); throw; }
    }

    public async ValueTask<bool> IsOnAsync(long shopId, string feature, CancellationToken ct) => (await StateAsync(shopId, feature, ct)).Enabled;

    /// <summary>Another instance (or this one) changed the shop's switches: forget them, then let each feature drop its own state.</summary>
    internal void Changed(IServiceProvider services, long shopId)
    {
        _cache.TryRemove(shopId, out _);
        foreach (var f in features.All) f.OnChanged?.Invoke(services, shopId);
    }

    internal void ForgetAll() => _cache.Clear();

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

    public async Task SaveAsync(long shopId, string feature, bool enabled, string whenOff, string? by, string? reason, CancellationToken ct)
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
                Cmd("INSERT INTO ai_feature_switch_history (shop_id, feature, enabled, when_off, changed_at, changed_by, reason) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    shopId, feature, enabled, whenOff, now, by, reason),
                new NpgsqlBatchCommand("SELECT pg_notify($1, $2)") { Parameters = { new() { Value = Channel }, new() { Value = shopId.ToString(System.Globalization.CultureInfo.InvariantCulture) } } },
            },
        };
        await batch.ExecuteNonQueryAsync(ct);
        await tx.CommitAsync(ct);
    }

    /// <summary>
    /// SQL: whether the feature was switched off at <paramref name="at"/> in the shop <paramref name="shop"/> (SQL expressions;
    /// <paramref name="feature"/> a name, not user input), from the switch's history: a feature never switched is on.
    /// </summary>
    public static string OffAt(string shop, string feature, string at) => $"""
        coalesce((SELECT NOT h.enabled FROM ai_feature_switch_history h
                  WHERE h.shop_id = {shop} AND h.feature = {feature} AND h.changed_at <= {at}
                  ORDER BY h.changed_at DESC, h.id DESC LIMIT 1), false)
        """;

    /// <summary>
    /// SQL: the periods the feature was switched off in the shop (from_at, to_at; to_at infinity while it still is), from
    /// the switch's history, for a query that weighs many rows against them (as a CTE, read once) where <see cref="OffAt"/>
    /// would look the history up for each.
    /// </summary>
    public static string OffPeriods(string shop, string feature) => $"""
        SELECT p.from_at, p.to_at FROM (
          SELECT h.changed_at AS from_at, lead(h.changed_at, 1, 'infinity') OVER (ORDER BY h.changed_at, h.id) AS to_at, h.enabled
          FROM ai_feature_switch_history h WHERE h.shop_id = {shop} AND h.feature = {feature}) p
        WHERE NOT p.enabled
        """;

    public async Task<List<FeatureSwitchChange>> HistoryAsync(long shopId, CancellationToken ct)
    {
        await using var cmd = db.CreateCommand("""
            SELECT feature, enabled, when_off, changed_at, changed_by, reason FROM ai_feature_switch_history WHERE shop_id = $1 ORDER BY id DESC LIMIT 50
            """);
        cmd.Parameters.AddWithValue(shopId);
        var list = new List<FeatureSwitchChange>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
            list.Add(new FeatureSwitchChange(r.GetString(0), r.GetBoolean(1), r.GetString(2), r.GetFieldValue<DateTimeOffset>(3), r.IsDBNull(4) ? null : r.GetString(4),
                r.IsDBNull(5) ? null : r.GetString(5)));
        return list;
    }

    private static NpgsqlBatchCommand Cmd(string sql, long shopId, string feature, bool enabled, string whenOff, DateTimeOffset at, string? by,
        string? reason = null)
    {
        var cmd = new NpgsqlBatchCommand(sql)
        {
            Parameters =
            {
                new() { Value = shopId }, new() { Value = feature }, new() { Value = enabled }, new() { Value = whenOff }, new() { Value = at },
                new() { Value = (object?)by ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text },
            },
        };
        if (sql.Contains("$7", StringComparison.Ordinal)) cmd.Parameters.Add(new() { Value = (object?)reason ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
        return cmd;
    }
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

    /// <summary>
    /// Saves the notice; an empty one goes back to the theme's default. Announced as a switch is (NOTIFY feature_switched), so
    /// every instance serves it at once; until 7 Dec 2026 only the instance that saved it did, the others when their catalog
    /// aged out.
    /// </summary>
    public async Task SaveAsync(long shopId, string? text, string? by, CancellationToken ct)
    {
        text = string.IsNullOrWhiteSpace(text) ? null : text.Trim();
        await using var cmd = db.CreateCommand(text is null
            ? $"WITH d AS (DELETE FROM shopper_notices WHERE shop_id = $1) SELECT pg_notify('{AiFeatureSwitches.Channel}', $1::text)"
            : $"""
              WITH s AS (INSERT INTO shopper_notices (shop_id, text, updated_at, updated_by) VALUES ($1, $2, $3, $4)
                         ON CONFLICT (shop_id) DO UPDATE SET text = $2, updated_at = $3, updated_by = $4)
              SELECT pg_notify('{AiFeatureSwitches.Channel}', $1::text)
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
        if (!services.Any(d => d.ServiceType == typeof(SwitchListener)))
        {
            services.AddSingleton<SwitchListener>();
            services.AddSingleton(sp =>
            {
                var switches = sp.GetRequiredService<AiFeatureSwitches>();
                return Data.ChangeSubscription.OfShops(AiFeatureSwitches.Channel, shopId => switches.Changed(sp, shopId), switches.ForgetAll);
            });
        }
        services.TryAddSingleton<ShopperNotices>();
        services.TryAddTransient<BlockVisibilityJob>();
        if (feature.Blocks is not null && !services.Any(d => !d.IsKeyedService && d.ImplementationInstance is RecurringJobDeclaration { Id: BlockVisibilityJob.CheckId }))
            services.AddRecurringJob<BlockVisibilityJob>(BlockVisibilityJob.CheckId, j => j.SweepAsync(CancellationToken.None), _ => "40 4 * * *");
        return services.AddSingleton(feature);
    }
}

/// <summary>Marks that the switches' change subscription is registered (once, however many features register).</summary>
internal sealed class SwitchListener;
