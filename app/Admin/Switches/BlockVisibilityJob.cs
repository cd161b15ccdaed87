using Hangfire;
using Npgsql;
using PluginApp.Data;
using PluginApp.Outbox;
using PluginApp.Shopify;
using PluginApp.StoreData;

namespace PluginApp.Admin.Switches;

/// <summary>
/// A feature's theme blocks and when they are not rendered: while the feature is off with <paramref name="HiddenWhenOff"/>
/// (say "nothing"), the app's metafield <c>pluginapp.{MetafieldKey}</c> on its installation is true, and the blocks'
/// Liquid renders nothing, so a shopper meets no empty box kept for what will not come (the script alone could only
/// empty the box it had reserved). Missing (never set) reads as shown.
/// </summary>
/// <param name="HiddenAnyway">Whether the blocks are hidden for a reason of the feature's own while it is on (cart offers
/// not enabled in their settings); its callers queue the job again when that changes.</param>
public sealed record BlockVisibility(string MetafieldKey, string HiddenWhenOff,
    Func<IServiceProvider, long, CancellationToken, Task<bool>>? HiddenAnyway = null)
{
    public const string Namespace = "pluginapp";
}

/// <summary>
/// After a merchant's switch of a feature with blocks: sets its <see cref="BlockVisibility"/> metafield on the app's
/// installation (read from Shopify, <c>currentAppInstallation</c>) to what the switch now says, through the outbox. Why a
/// job: the installation is asked of Shopify, which may be slow or down; Hangfire tries again. Why the switch read after
/// Shopify answered, under a lock per shop and feature, in the transaction that queues the call: the outbox sends calls on
/// one metafield in the order they were queued, so the last one queued says the switch as it last was; a job held up in
/// Shopify's answer cannot queue what an earlier switch said after a later job queued what the later one said.
/// </summary>
public sealed class BlockVisibilityJob(AiFeatures features, AiFeatureSwitches switches, AdminGraphQLClient shopify, NpgsqlDataSource db,
    OutboxScheduler outbox, IServiceProvider services, TimeProvider clock)
{
    public const string InstallationQuery = "query AppInstallation { currentAppInstallation { id } }";

    public static void Enqueue(IServiceProvider services, long shopId, string feature) =>
        services.GetRequiredService<IBackgroundJobClient>().Enqueue<BlockVisibilityJob>(j => j.SyncAsync(shopId, feature, false, CancellationToken.None));

    /// <summary>
    /// At an install: Shopify drops the app's metafields with its installation, so a shop installed again whose switch
    /// was left off gets its blocks hidden again. A feature that is on sets nothing (a metafield never set reads as shown).
    /// </summary>
    public async Task InstalledAsync(string shop, CancellationToken ct)
    {
        long? shopId;
        await using (var cmd = db.CreateCommand("SELECT id FROM shops WHERE domain = $1"))
        {
            cmd.Parameters.Add(Sql.Param(shop));
            shopId = await cmd.ExecuteScalarAsync(ct) as long?;
        }
        if (shopId is null) return;
        foreach (var f in features.All.Where(f => f.Blocks is not null))
            await SyncAsync(shopId.Value, f.Name, onlyIfHidden: true, ct);
    }

    /// <param name="onlyIfHidden">Set the metafield only when the blocks are to be hidden (at an install).</param>
    public async Task SyncAsync(long shopId, string feature, bool onlyIfHidden, CancellationToken ct)
    {
        if (features.Find(feature)?.Blocks is not { } blocks) return;
        string? domain;
        // Reachable: a shop uninstalled has no metafields (Shopify dropped them with the installation), and one whose token
        // was revoked answers nothing; its next install sets them (InstalledAsync).
        await using (var cmd = db.CreateCommand($"SELECT domain FROM shops s WHERE s.id = $1 AND {ShopStatus.Reachable("s")}"))
        {
            cmd.Parameters.Add(Sql.Param(shopId));
            domain = await cmd.ExecuteScalarAsync(ct) as string;
        }
        if (domain is null) return;
        if (onlyIfHidden && !await HiddenAsync(shopId, feature, blocks, ct)) return;
        var data = await shopify.ExecuteAsync(domain, InstallationQuery, null, ct);
        var owner = data.GetProperty("currentAppInstallation").GetProperty("id").GetString()
            ?? throw new ShopifyGraphQLException(domain, "currentAppInstallation has no id");
        await using var conn = await db.OpenConnectionAsync(ct);
        await using var tx = await conn.BeginTransactionAsync(ct);
        await using (var lockCmd = new NpgsqlCommand("SELECT pg_advisory_xact_lock(hashtextextended('blocks:' || $1::text || ':' || $2, 0))", conn, tx))
        {
            lockCmd.Parameters.Add(Sql.Param(shopId));
            lockCmd.Parameters.Add(Sql.Param(feature));
            await lockCmd.ExecuteNonQueryAsync(ct);
        }
        var hidden = await HiddenAsync(shopId, feature, blocks, ct);
        var now = clock.GetUtcNow();
        await using var batch = new NpgsqlBatch(conn, tx);
        OutboxWriter.Enqueue(new StoreWriter(batch, shopId), new OutboxCall(OutboxOperation.MetafieldsSet,
            $"{owner}/{BlockVisibility.Namespace}.{blocks.MetafieldKey}",
            new { metafields = new[] { new { ownerId = owner, @namespace = BlockVisibility.Namespace, key = blocks.MetafieldKey, type = "boolean", value = hidden ? "true" : "false" } } },
            $"blocks:{feature}:{(hidden ? "hidden" : "shown")}:{now.UtcTicks}"), now);
        await batch.ExecuteNonQueryAsync(ct);
        await tx.CommitAsync(ct);
        outbox.Kick(shopId);
    }

    /// <summary>The blocks are hidden: the feature is off with its hiding choice, or hidden for a reason of its own.</summary>
    private async Task<bool> HiddenAsync(long shopId, string feature, BlockVisibility blocks, CancellationToken ct)
    {
        var state = (await switches.GetAsync(shopId, ct)).Single(s => s.Feature == feature);
        if (!state.Enabled) return state.WhenOff == blocks.HiddenWhenOff;
        return blocks.HiddenAnyway is { } own && await own(services, shopId, ct);
    }
}
