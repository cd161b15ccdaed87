using System.Globalization;
using Npgsql;
using PluginApp.Data;

namespace PluginApp.Governance;

/// <summary>A shop's staged-release choices for one model kind (release_settings), or the Governance defaults.</summary>
public sealed record ReleaseSettings(bool Staged, int ShadowDecisions, double CanaryShare, int CanaryDecisions, bool Chosen = false)
{
    /// <summary>Above half of the visitors it is no longer a canary.</summary>
    public const double MaxCanaryShare = 0.5;

    public static ReleaseSettings Defaults(GovernanceOptions o) => new(o.StagedReleases, o.ShadowDecisions, o.CanaryShare, o.CanaryDecisions);

    /// <summary>Reads the shop's choice inside the caller's transaction (the registry's gate), or the defaults.</summary>
    public static async Task<ReleaseSettings> GetAsync(NpgsqlConnection conn, NpgsqlTransaction? tx, long shopId, string kind, GovernanceOptions o,
        CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand(
            "SELECT staged, shadow_decisions, canary_share, canary_decisions FROM release_settings WHERE shop_id = $1 AND model_kind = $2", conn, tx);
        cmd.Parameters.Add(Sql.Param(shopId));
        cmd.Parameters.Add(Sql.Param(kind));
        await using var r = await cmd.ExecuteReaderAsync(ct);
        return await r.ReadAsync(ct) ? new ReleaseSettings(r.GetBoolean(0), r.GetInt32(1), r.GetDouble(2), r.GetInt32(3), Chosen: true) : Defaults(o);
    }

    public static async Task<ReleaseSettings> GetAsync(NpgsqlDataSource db, long shopId, string kind, GovernanceOptions o, CancellationToken ct)
    {
        await using var conn = await db.OpenConnectionAsync(ct);
        return await GetAsync(conn, null, shopId, kind, o, ct);
    }

    /// <summary>What is wrong with a shop's choice, by field (empty when it may be saved).</summary>
    public Dictionary<string, string[]> Problems()
    {
        var p = new Dictionary<string, string[]>();
        if (ShadowDecisions is < 1 or > 1_000_000) p["shadowDecisions"] = [$"must be between 1 and 1000000, not {ShadowDecisions}"];
        if (!(CanaryShare is > 0 and <= ReleaseSettings.MaxCanaryShare))
            p["canaryShare"] = [string.Create(CultureInfo.InvariantCulture, $"must be above 0 and at most {ReleaseSettings.MaxCanaryShare}, not {CanaryShare}")];
        if (CanaryDecisions is < 1 or > 1_000_000) p["canaryDecisions"] = [$"must be between 1 and 1000000, not {CanaryDecisions}"];
        return p;
    }

    public async Task SaveAsync(NpgsqlDataSource db, long shopId, string kind, string? by, DateTimeOffset at, CancellationToken ct)
    {
        // Why the announcement in the same statement: a canary's share is read with the model on every instance, and one
        // sent apart could be lost while the settings stay saved, leaving other instances on the old share.
        await using var cmd = db.CreateCommand("""
            WITH saved AS (
              INSERT INTO release_settings (shop_id, model_kind, staged, shadow_decisions, canary_share, canary_decisions, updated_at, updated_by)
              VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
              ON CONFLICT (shop_id, model_kind) DO UPDATE SET staged = excluded.staged, shadow_decisions = excluded.shadow_decisions,
                  canary_share = excluded.canary_share, canary_decisions = excluded.canary_decisions, updated_at = excluded.updated_at, updated_by = excluded.updated_by
              RETURNING shop_id)
            SELECT pg_notify($9, shop_id::text) FROM saved
            """);
        foreach (var v in new object[] { shopId, kind, Staged, ShadowDecisions, CanaryShare, CanaryDecisions, at }) cmd.Parameters.Add(Sql.Param(v));
        cmd.Parameters.Add(Sql.Text(by));
        cmd.Parameters.Add(Sql.Param(Training.ModelRegistry.Channel));
        await cmd.ExecuteNonQueryAsync(ct);
    }
}
