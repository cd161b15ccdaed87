using Hangfire;
using Npgsql;
using PluginApp.Data;
using PluginApp.Install;
using PluginApp.Jobs;
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
/// Shopify's answer cannot queue what an earlier switch said after a later job queued what the later one said. A daily
/// check (<see cref="SweepAsync"/>) puts right what a job that failed all its tries left.
/// </summary>
public sealed class BlockVisibilityJob(AiFeatures features, AiFeatureSwitches switches, AdminGraphQLClient shopify, NpgsqlDataSource db,
    OutboxScheduler outbox, IServiceProvider services, TimeProvider clock, ILogger<BlockVisibilityJob> logger)
{
    /// <summary>The installation, owner of the app's metafields, with the values Shopify holds in the app's namespace.</summary>
    public const string InstallationQuery =
        "query AppInstallation { currentAppInstallation { id metafields(first: 20, namespace: \"" + BlockVisibility.Namespace + "\") { nodes { key value } } } }";

    /// <summary>The daily check's recurring job.</summary>
    public const string CheckId = "block-visibility-check";

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
        if (await DomainAsync(shopId, ct) is not { } domain) return;
        if (onlyIfHidden && !await HiddenAsync(shopId, feature, blocks, ct)) return;
        var (owner, _) = await InstallationAsync(domain, ct);
        await QueueAsync(shopId, feature, blocks, owner, _ => true, ct);
    }

    /// <summary>
    /// Every reachable shop's blocks checked against what Shopify holds, daily: a switch whose job failed all its tries
    /// (Shopify down for longer than its retries), or a metafield Shopify lost, is put right within a day rather than at the
    /// merchant's next change. One job per shop, so one shop's trouble delays no other. Why spread, <see cref="CheckGroup"/>
    /// shops every <see cref="CheckGroupSpacing"/>: the checks share the long jobs' two workers with backfills and trainings,
    /// and until 6 Dec 2026 a deployment's thousands of shops were all queued at once, so a merchant's first import waited
    /// behind every shop's round trip to Shopify. Spread, 10,000 shops take under three hours and leave a worker free.
    /// </summary>
    [AutomaticRetry(Attempts = 0)]
    public async Task SweepAsync(CancellationToken ct)
    {
        var shops = new List<long>();
        await using (var cmd = db.CreateCommand($"SELECT s.id FROM shops s WHERE {ShopStatus.Reachable("s")} ORDER BY s.id"))
        await using (var r = await cmd.ExecuteReaderAsync(ct))
            while (await r.ReadAsync(ct)) shops.Add(r.GetInt64(0));
        var jobs = services.GetRequiredService<IBackgroundJobClient>();
        for (var i = 0; i < shops.Count; i++)
        {
            var shop = shops[i];
            var delay = CheckGroupSpacing * (i / CheckGroup);
            if (delay == TimeSpan.Zero) jobs.Enqueue<BlockVisibilityJob>(j => j.CheckAsync(shop, CancellationToken.None));
            else jobs.Schedule<BlockVisibilityJob>(j => j.CheckAsync(shop, CancellationToken.None), delay);
        }
    }

    /// <summary>How many shops' checks are queued together (the first group at once).</summary>
    public const int CheckGroup = 10;

    /// <summary>The time between one group of checks and the next.</summary>
    public static readonly TimeSpan CheckGroupSpacing = TimeSpan.FromSeconds(10);

    /// <summary>
    /// One shop's check: each feature's blocks whose metafield in Shopify (missing reads as shown) is not what its switch
    /// says get the switch's value queued, and so do those with a call still queued (it may say an older switch); a shop
    /// whose values hold is sent nothing. A shop Shopify will not answer now (frozen, or its token lapsed) is passed over
    /// until the next day's check. On the long jobs' queue: a round trip to Shopify for every shop must not hold up the
    /// short jobs behind it.
    /// </summary>
    [Queue(JobQueues.Long)]
    public async Task CheckAsync(long shopId, CancellationToken ct)
    {
        if (await DomainAsync(shopId, ct) is not { } domain) return;
        string owner;
        Dictionary<string, string?> held;
        try { (owner, held) = await InstallationAsync(domain, ct); }
        catch (Exception e) when (e is ShopNotConnectedException or ShopFrozenException)
        {
            logger.LogInformation("Shop {Shop}: blocks' visibility not checked today: {Reason}", shopId, e.Message);
            return;
        }
        foreach (var f in features.All)
            if (f.Blocks is { } blocks)
            {
                var shopifyHides = held.GetValueOrDefault(blocks.MetafieldKey) == "true";
                var queued = await QueuedAsync(shopId, Resource(owner, blocks), ct);
                await QueueAsync(shopId, f.Name, blocks, owner, hidden => queued || hidden != shopifyHides, ct);
            }
    }

    /// <summary>The outbox's key of the blocks' metafield on the installation.</summary>
    private static string Resource(string owner, BlockVisibility blocks) => $"{owner}/{BlockVisibility.Namespace}.{blocks.MetafieldKey}";

    /// <summary>Whether a call on the metafield is still to be sent (a switch's, or one the outbox is trying again).</summary>
    private async Task<bool> QueuedAsync(long shopId, string resource, CancellationToken ct)
    {
        // Not stated as the queue's walks state it (OutboxDrainer.InLine): a resource's calls are found by its own index.
        await using var cmd = db.CreateCommand("""
            SELECT EXISTS (SELECT 1 FROM outbox_messages WHERE shop_id = $1 AND resource_key = $2 AND completed_at IS NULL AND failed_at IS NULL)
            """);
        cmd.Parameters.Add(Sql.Param(shopId));
        cmd.Parameters.Add(Sql.Param(resource));
        return await cmd.ExecuteScalarAsync(ct) is true;
    }

    /// <summary>
    /// The shop's domain, when Shopify can be asked: a shop uninstalled has no metafields (Shopify dropped them with the
    /// installation), and one whose token was revoked answers nothing; its next install sets them (InstalledAsync).
    /// </summary>
    private async Task<string?> DomainAsync(long shopId, CancellationToken ct)
    {
        await using var cmd = db.CreateCommand($"SELECT domain FROM shops s WHERE s.id = $1 AND {ShopStatus.Reachable("s")}");
        cmd.Parameters.Add(Sql.Param(shopId));
        return await cmd.ExecuteScalarAsync(ct) as string;
    }

    /// <summary>The app's installation on the shop, and its metafields' values in the app's namespace by key.</summary>
    private async Task<(string Owner, Dictionary<string, string?> Held)> InstallationAsync(string domain, CancellationToken ct)
    {
        var installation = (await shopify.ExecuteAsync(domain, InstallationQuery, null, ct)).GetProperty("currentAppInstallation");
        var owner = installation.GetProperty("id").GetString()
            ?? throw new ShopifyGraphQLException(domain, "currentAppInstallation has no id");
        var held = new Dictionary<string, string?>(StringComparer.Ordinal);
        if (installation.TryGetProperty("metafields", out var metafields) && metafields.TryGetProperty("nodes", out var nodes))
            foreach (var m in nodes.EnumerateArray())
                if (m.GetProperty("key").GetString() is { } key) held[key] = m.GetProperty("value").GetString();
        return (owner, held);
    }

    /// <summary>
    /// Queues the blocks' metafield as the switch says when <paramref name="send"/> agrees, reading the switch under a lock per
    /// shop and feature in the transaction that queues the call (see the class).
    /// </summary>
    private async Task QueueAsync(long shopId, string feature, BlockVisibility blocks, string owner, Func<bool, bool> send, CancellationToken ct)
    {
        await using var conn = await db.OpenConnectionAsync(ct);
        await using var tx = await conn.BeginTransactionAsync(ct);
        await using (var lockCmd = new NpgsqlCommand("SELECT pg_advisory_xact_lock(hashtextextended('blocks:' || $1::text || ':' || $2, 0))", conn, tx))
        {
            lockCmd.Parameters.Add(Sql.Param(shopId));
            lockCmd.Parameters.Add(Sql.Param(feature));
            await lockCmd.ExecuteNonQueryAsync(ct);
        }
        var hidden = await HiddenAsync(shopId, feature, blocks, ct);
        if (!send(hidden)) return;
        var now = clock.GetUtcNow();
        await using var batch = new NpgsqlBatch(conn, tx);
        OutboxWriter.Enqueue(new StoreWriter(batch, shopId), new OutboxCall(OutboxOperation.MetafieldsSet, Resource(owner, blocks),
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
