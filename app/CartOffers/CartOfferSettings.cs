using System.Text.Json;
using Npgsql;
using PluginApp.Data;

namespace PluginApp.CartOffers;

/// <summary>
/// A merchant's cart offer settings. Amounts are in the shop's currency; percentages are 0–100. The defaults are the
/// safe ones: off until the merchant turns it on, and no offer unless every cap can be checked.
/// </summary>
public sealed record CartOfferSettings
{
    public bool Enabled { get; init; }
    /// <summary>Free shipping from this cart value (the progress bar and the threshold upsell); null: no bar.</summary>
    public decimal? FreeShippingThreshold { get; init; }
    /// <summary>Whether the policy may pick the guarded offer at all.</summary>
    public bool OffersEnabled { get; init; } = true;
    /// <summary>The discount an offer gives.</summary>
    public decimal OfferPercent { get; init; } = 10;
    /// <summary>Cap: no offer above this discount, whatever the other settings say.</summary>
    public decimal MaxDiscountPercent { get; init; } = 15;
    /// <summary>Cap: (value after discount − cost) / value after discount must stay at or above this; carts with a line of unknown cost get no offer.</summary>
    public decimal MarginFloorPercent { get; init; } = 20;
    /// <summary>Cap: discounts handed out per day (the shop's, in its time zone), counted at the discount each cart would get.</summary>
    public decimal DailyBudget { get; init; } = 100;
    /// <summary>How long a handed-out code stays valid.</summary>
    public int CodeExpiryHours { get; init; } = 48;
    /// <summary>Codes kept ready ahead of need.</summary>
    public int PoolSize { get; init; } = 5;

    public static readonly CartOfferSettings Default = new();

    public Dictionary<string, string[]> Problems()
    {
        var p = new Dictionary<string, string[]>();
        if (FreeShippingThreshold is { } t && (t <= 0 || t > 1_000_000)) p["freeShippingThreshold"] = [$"{t} must be above 0 and at most 1,000,000"];
        if (OfferPercent is <= 0 or > 90) p["offerPercent"] = [$"{OfferPercent} must be above 0 and at most 90"];
        // Why: codes are kept at the percent to the hundredth, and a pool asked for 12.345 % would never find one of its own.
        else if (OfferPercent != decimal.Round(OfferPercent, 2)) p["offerPercent"] = [$"{OfferPercent} has more than two decimals"];
        if (MaxDiscountPercent is <= 0 or > 90) p["maxDiscountPercent"] = [$"{MaxDiscountPercent} must be above 0 and at most 90"];
        else if (OfferPercent > MaxDiscountPercent) p["offerPercent"] = [$"{OfferPercent} is above the {MaxDiscountPercent} % cap"];
        if (MarginFloorPercent is < 0 or >= 100) p["marginFloorPercent"] = [$"{MarginFloorPercent} must be from 0 to below 100"];
        if (DailyBudget is < 0 or > 1_000_000) p["dailyBudget"] = [$"{DailyBudget} must be from 0 to 1,000,000"];
        if (CodeExpiryHours is < 1 or > 720) p["codeExpiryHours"] = [$"{CodeExpiryHours} must be from 1 to 720 hours"];
        if (PoolSize is < 1 or > 50) p["poolSize"] = [$"{PoolSize} must be from 1 to 50"];
        return p;
    }
}

/// <summary>Settings per shop, with who changed them last.</summary>
public sealed class CartOfferSettingsStore(NpgsqlDataSource db, TimeProvider clock)
{
    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    public async Task<(CartOfferSettings Settings, int Version, DateTimeOffset? At, string? By)> GetAsync(long shopId, CancellationToken ct)
    {
        await using var cmd = db.CreateCommand("SELECT settings::text, version, updated_at, updated_by FROM cart_offer_settings WHERE shop_id = $1");
        cmd.Parameters.Add(Sql.Param(shopId));
        await using var r = await cmd.ExecuteReaderAsync(ct);
        return await r.ReadAsync(ct)
            ? (JsonSerializer.Deserialize<CartOfferSettings>(r.GetString(0), Json)!, r.GetInt32(1), r.GetFieldValue<DateTimeOffset>(2), r.IsDBNull(3) ? null : r.GetString(3))
            : (CartOfferSettings.Default, 0, null, null);
    }

    /// <summary>Why a pause of the cart offers' experiment began when the block was turned off here (migration 0084).</summary>
    public const string BlockOffCause = "block_off";

    /// <summary>
    /// Saves the settings. Turning the block off pauses its experiment, and on again resumes it, as stopping and starting the
    /// experiment do: every arm is served nothing meanwhile, so the results leave out the orders placed then. Until 6 Dec 2026
    /// they counted for the arms of their visitors' earlier carts, pulling the measured lift toward nothing.
    /// </summary>
    public async Task<int> SaveAsync(long shopId, CartOfferSettings settings, string? by, CancellationToken ct)
    {
        var now = clock.GetUtcNow();
        await using var conn = await db.OpenConnectionAsync(ct);
        await using var tx = await conn.BeginTransactionAsync(ct);
        bool? was;
        await using (var read = new NpgsqlCommand("SELECT (settings->>'enabled')::boolean FROM cart_offer_settings WHERE shop_id = $1 FOR UPDATE", conn, tx))
        {
            read.Parameters.Add(Sql.Param(shopId));
            was = await read.ExecuteScalarAsync(ct) as bool?;
        }
        await using var batch = new NpgsqlBatch(conn, tx);
        var save = new NpgsqlBatchCommand("""
            INSERT INTO cart_offer_settings (shop_id, settings, version, updated_at, updated_by) VALUES ($1, $2::jsonb, 1, $3, $4)
            ON CONFLICT (shop_id) DO UPDATE SET settings = excluded.settings, version = cart_offer_settings.version + 1,
              updated_at = excluded.updated_at, updated_by = excluded.updated_by
            RETURNING version
            """);
        save.Parameters.Add(Sql.Param(shopId));
        save.Parameters.Add(Sql.Param(JsonSerializer.Serialize(settings, Json)));
        save.Parameters.Add(Sql.Param(now));
        save.Parameters.Add(Sql.Text(by));
        batch.BatchCommands.Add(save);
        if (was is { } before && before != settings.Enabled)
        {
            var pause = new NpgsqlBatchCommand(settings.Enabled ? Experiments.ExperimentStore.ResumeSql(BlockOffCause) : Experiments.ExperimentStore.PauseSql(BlockOffCause));
            pause.Parameters.Add(Sql.Param(shopId));
            pause.Parameters.Add(Sql.Param(CartOffersExperiment.Key));
            pause.Parameters.Add(Sql.Param(now));
            batch.BatchCommands.Add(pause);
        }
        var version = (int)(await batch.ExecuteScalarAsync(ct))!;
        await tx.CommitAsync(ct);
        return version;
    }
}
