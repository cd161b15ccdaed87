using Hangfire;
using Npgsql;
using PluginApp.Data;
using PluginApp.Install;
using PluginApp.Jobs;
using PluginApp.Shopify;
using PluginApp.StoreData;

namespace PluginApp.Recommendations;

/// <summary>
/// The products of the collections a merchant blocked in the rules, read from Shopify. No webhook tells a collection's
/// members (products webhooks carry no collections), so until 7 Dec 2026 they came from the import alone: a product added
/// to a blocked collection afterwards was still recommended, and one taken out stayed blocked, until the next import.
/// Read when the rules are saved with a blocked collection, and every hour for each shop that blocks one. Each read
/// replaces the collection's members (<c>product_collections</c>) and, when they changed, has every instance reload the
/// shop's catalog; a collection Shopify no longer has blocks nothing. An import in between writes its own snapshot's
/// members until the next hour's read. Why on the long jobs' queue, the shops' reads spread out, one at a time per shop:
/// a shop may block 500 collections, each read a page at a time within its rate limit, and neither that nor a
/// deployment's shops all at once may hold up the short jobs (scoring, the outbox); a read that overlapped another of the
/// same shop (a save during the hourly one) could commit the older members last.
/// </summary>
public sealed class BlockedCollectionsJob(RulesStore rules, ShopLookup shops, AdminGraphQLClient shopify, NpgsqlDataSource db,
    IBackgroundJobClient jobs, JobLocks locks, ILogger<BlockedCollectionsJob> logger)
{
    /// <summary>A collection's products, a page at a time.</summary>
    public const string Query = """
        query CollectionProducts($id: ID!, $after: String) {
          collection(id: $id) { products(first: 250, after: $after) { nodes { id } pageInfo { hasNextPage endCursor } } }
        }
        """;

    /// <summary>The hourly read's recurring job.</summary>
    public const string SweepId = "blocked-collections";

    public static void Enqueue(IBackgroundJobClient jobs, long shopId) =>
        jobs.Enqueue<BlockedCollectionsJob>(j => j.RefreshAsync(shopId, CancellationToken.None));

    /// <summary>Every reachable shop whose rules block a collection gets its read queued, as the daily block check spreads
    /// its shops (<see cref="PluginApp.Admin.Switches.BlockVisibilityJob.CheckGroup"/>).</summary>
    [AutomaticRetry(Attempts = 0)]
    public async Task SweepAsync(CancellationToken ct)
    {
        var shopIds = new List<long>();
        await using (var cmd = db.CreateCommand($"""
            SELECT r.shop_id FROM recommendation_rules r JOIN shops s ON s.id = r.shop_id
            WHERE {ShopStatus.Reachable("s")} AND jsonb_array_length(coalesce(r.rules -> 'blockedCollectionIds', '[]')) > 0
            ORDER BY r.shop_id
            """))
        await using (var r = await cmd.ExecuteReaderAsync(ct))
            while (await r.ReadAsync(ct)) shopIds.Add(r.GetInt64(0));
        for (var i = 0; i < shopIds.Count; i++)
        {
            var shopId = shopIds[i];
            var delay = PluginApp.Admin.Switches.BlockVisibilityJob.CheckGroupSpacing * (i / PluginApp.Admin.Switches.BlockVisibilityJob.CheckGroup);
            if (delay == TimeSpan.Zero) Enqueue(jobs, shopId);
            else jobs.Schedule<BlockedCollectionsJob>(j => j.RefreshAsync(shopId, CancellationToken.None), delay);
        }
    }

    /// <summary>
    /// Reads each blocked collection's products from Shopify and writes them as its members, in one transaction for the
    /// shop. A shop Shopify will not answer now (frozen, or its token lapsed) keeps what it had until the next hour.
    /// </summary>
    [Queue(JobQueues.Long)]
    public async Task RefreshAsync(long shopId, CancellationToken ct)
    {
        if (await shops.ReachableDomainAsync(shopId, ct) is not { } domain) return;
        await using var held = await locks.AcquireAsync($"blocked-collections:{shopId}", ct);
        var blocked = (await rules.GetAsync(shopId, ct)).Rules.BlockedCollectionIds.Distinct().ToArray();
        if (blocked.Length == 0) return;
        var members = new List<(long Collection, long[] Products)>(blocked.Length);
        try
        {
            foreach (var collection in blocked) members.Add((collection, await ProductsAsync(domain, collection, ct)));
        }
        catch (Exception e) when (e is ShopNotConnectedException or ShopFrozenException)
        {
            logger.LogInformation("Shop {Shop}: blocked collections not read: {Reason}", shopId, e.Message);
            return;
        }
        await using var conn = await db.OpenConnectionAsync(ct);
        await using var tx = await conn.BeginTransactionAsync(ct);
        await using var batch = new NpgsqlBatch(conn, tx);
        var store = new StoreWriter(batch, shopId);
        foreach (var (collection, products) in members)
            store.Add($"""
                WITH gone AS (DELETE FROM product_collections WHERE shop_id = $1 AND collection_id = $2 AND NOT (product_id = ANY($3)) RETURNING 1),
                added AS (INSERT INTO product_collections (shop_id, product_id, collection_id) SELECT $1, unnest($3::int8[]), $2
                          ON CONFLICT DO NOTHING RETURNING 1)
                SELECT pg_notify('{CatalogCache.Channel}', $1::text) WHERE EXISTS (SELECT 1 FROM gone) OR EXISTS (SELECT 1 FROM added)
                """, shopId, collection, products);
        await batch.ExecuteNonQueryAsync(ct);
        await tx.CommitAsync(ct);
    }

    /// <summary>The collection's products (none when Shopify no longer has it).</summary>
    private async Task<long[]> ProductsAsync(string domain, long collection, CancellationToken ct)
    {
        var ids = new List<long>();
        string? after = null;
        do
        {
            var data = await shopify.ExecuteAsync(domain, Query, new { id = Gid.Of("Collection", collection), after }, ct, expectedCost: 260);
            if (data.GetProperty("collection") is not { ValueKind: System.Text.Json.JsonValueKind.Object } c) break;
            var page = c.GetProperty("products");
            foreach (var node in page.GetProperty("nodes").EnumerateArray()) ids.Add(Gid.Id(node.GetProperty("id").GetString()!));
            var info = page.GetProperty("pageInfo");
            after = info.GetProperty("hasNextPage").GetBoolean() ? info.GetProperty("endCursor").GetString() : null;
        } while (after is not null);
        return [.. ids.Distinct()];
    }
}
