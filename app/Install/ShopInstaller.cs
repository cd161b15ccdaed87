using Npgsql;
using PluginApp.Backfill;
using PluginApp.Shopify;
using PluginApp.Recommendations;

namespace PluginApp.Install;

/// <summary>What every install path does with a fresh grant: keep the token; on a new install queue the history backfill and the nightly training.</summary>
public sealed class ShopInstaller(OfflineTokenStore tokens, BackfillScheduler backfill, TrainingScheduler training, AdminGraphQLClient shopify,
    NpgsqlDataSource db, ILogger<ShopInstaller> logger)
{
    public async Task<long> InstallAsync(string shop, TokenGrant grant, CancellationToken ct)
    {
        var (shopId, newInstall) = await tokens.SaveGrantAsync(shop, grant, ct);
        if (newInstall)
        {
            logger.LogInformation("Installed {Shop}; queueing its backfill", shop);
            var timeZone = await ReadSettingsAsync(shop, ct);
            await backfill.ScheduleAsync(shop, ct);
            await training.EnsureNightlyAsync(shop, timeZone, ct);
        }
        return shopId;
    }

    /// <summary>The shop's time zone (nightly jobs run in it) and currency. Returns the time zone, or null if Shopify did not say.</summary>
    private async Task<string?> ReadSettingsAsync(string shop, CancellationToken ct)
    {
        try
        {
            var data = await shopify.ExecuteAsync(shop, GraphQLDocuments.Load("Install/Queries/shop-settings.graphql"), null, ct, expectedCost: 1);
            if (!data.TryGetProperty("shop", out var s) || s.ValueKind != System.Text.Json.JsonValueKind.Object) return null;
            var zone = s.TryGetProperty("ianaTimezone", out var z) ? z.GetString() : null;
            var currency = s.TryGetProperty("currencyCode", out var c) ? c.GetString() : null;
            await using var cmd = db.CreateCommand("UPDATE shops SET iana_timezone = coalesce($2, iana_timezone), currency = coalesce($3, currency) WHERE domain = $1");
            cmd.Parameters.AddWithValue(shop);
            cmd.Parameters.Add(new NpgsqlParameter { Value = (object?)zone ?? DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Text });
            cmd.Parameters.Add(new NpgsqlParameter { Value = (object?)currency ?? DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Text });
            await cmd.ExecuteNonQueryAsync(ct);
            return zone;
        }
        catch (Exception e) when (e is ShopifyGraphQLException or HttpRequestException or ShopTokenRevokedException)
        {
            logger.LogWarning("Could not read {Shop}'s settings: {Message}; nightly jobs run on UTC", shop, e.Message);
            return null;
        }
    }
}
