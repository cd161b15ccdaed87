using System.Globalization;
using System.Text.Json;
using Microsoft.Extensions.Options;
using Npgsql;
using PluginApp.Data;
using PluginApp.Shopify;
using PluginApp.Store;
using PluginApp.Webhooks.Payloads;

namespace PluginApp.Backfill;

/// <summary>
/// Imports a shop's history with bulk queries (products, customers, then orders of the last year),
/// writing through the same upserts as webhooks so an overlap with live traffic leaves one copy of each row.
/// Progress is kept in backfill_runs.
/// </summary>
public sealed class BackfillService(NpgsqlDataSource db, AdminGraphQLClient shopify, IHttpClientFactory httpFactory,
    IOptions<BackfillOptions> options, TimeProvider clock, ILogger<BackfillService> logger)
{
    public const string DownloadClient = "bulk-download";

    public async Task RunAsync(string shop, CancellationToken ct)
    {
        var shopId = await ShopIdAsync(shop, ct);
        var runId = await StartRunAsync(shopId, ct);
        long rows = 0;
        try
        {
            // A product's children are its variants and the collections it belongs to.
            rows += await ImportAsync(shop, shopId, runId, "products", GraphQLDocuments.Load("Backfill/Queries/products.graphql"),
                new BulkResultReader<Product, object>(BulkRecords.Product, (e, parent) =>
                    e.GetProperty("id").GetString()!.StartsWith("gid://shopify/Collection/", StringComparison.Ordinal)
                        ? Gid.Id(e.GetProperty("id").GetString()!) : BulkRecords.Variant(e, Gid.Id(parent))),
                (store, p, children) =>
                {
                    store.AddProduct(new ProductRows(p, children.OfType<Variant>().ToList()));
                    store.AddProductCollections(p.Id, children.OfType<long>().ToArray());
                }, rows, ct);
            rows += await ImportAsync(shop, shopId, runId, "customers", GraphQLDocuments.Load("Backfill/Queries/customers.graphql"),
                new BulkResultReader<Customer, object>(BulkRecords.Customer, (_, _) => new object()),
                (store, c, _) => store.AddCustomer(c), rows, ct);
            var since = clock.GetUtcNow().AddDays(-options.Value.OrderHistoryDays).ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);
            rows += await ImportAsync(shop, shopId, runId, "orders", GraphQLDocuments.Load("Backfill/Queries/orders.graphql").Replace("{since}", since),
                new BulkResultReader<(Order, List<RefundRows>), OrderLine>(BulkRecords.Order, (e, parent) => BulkRecords.OrderLine(e, Gid.Id(parent))),
                (store, o, lines) => store.AddOrder(new OrderRows(o.Item1, lines, null, o.Item2)), rows, ct);
            await UpdateRunAsync(runId, "completed", null, rows, null, finished: true, CancellationToken.None);
            logger.LogInformation("Backfill of {Shop} completed: {Rows} objects", shop, rows);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            await UpdateRunAsync(runId, "failed", null, rows, e.Message, finished: true, CancellationToken.None);
            throw;
        }
    }

    private async Task<long> ImportAsync<TParent, TChild>(string shop, long shopId, long runId, string phase, string query,
        BulkResultReader<TParent, TChild> reader, Action<StoreWriter, TParent, List<TChild>> write, long rowsBefore, CancellationToken ct)
    {
        await UpdateRunAsync(runId, "running", phase, rowsBefore, null, finished: false, ct);
        var url = await RunBulkQueryAsync(shop, query, ct);
        if (url is null) return 0;

        using (var http = httpFactory.CreateClient(DownloadClient))
        await using (var stream = await http.GetStreamAsync(url, ct))
            await reader.ReadAsync(stream, ct);

        long done = 0;
        foreach (var chunk in reader.Items.Chunk(options.Value.ChunkSize))
        {
            await using var conn = await db.OpenConnectionAsync(ct);
            await using var tx = await conn.BeginTransactionAsync(ct);
            await using var batch = new NpgsqlBatch(conn, tx);
            var store = new StoreWriter(batch, shopId);
            foreach (var (parent, children) in chunk) write(store, parent, children);
            done += chunk.Length + chunk.Sum(c => c.Children.Count);
            store.Add("UPDATE backfill_runs SET rows_done = $2, updated_at = $3 WHERE id = $1", runId, rowsBefore + done, clock.GetUtcNow());
            await batch.ExecuteNonQueryAsync(ct);
            await tx.CommitAsync(ct);
        }
        return done;
    }

    /// <summary>Starts a bulk query and waits for it; returns the result's URL, or null when it matched nothing.</summary>
    private async Task<string?> RunBulkQueryAsync(string shop, string query, CancellationToken ct)
    {
        var started = await shopify.MutateAsync(shop, GraphQLDocuments.Load("Backfill/Queries/run-bulk-query.graphql"),
            new { query }, "bulkOperationRunQuery", ct);
        var id = started.GetProperty("bulkOperation").GetProperty("id").GetString()!;
        var deadline = clock.GetUtcNow() + options.Value.MaxWait;
        while (true)
        {
            var node = (await shopify.ExecuteAsync(shop, GraphQLDocuments.Load("Backfill/Queries/bulk-operation.graphql"), new { id }, ct, expectedCost: 1))
                .GetProperty("node");
            switch (node.OptionalString("status"))
            {
                case "COMPLETED":
                    return node.OptionalString("url");
                case "FAILED" or "CANCELED" or "EXPIRED" or "CANCELING":
                    throw new ShopifyGraphQLException(shop, $"bulk operation {id} ended {node.OptionalString("status")} ({node.OptionalString("errorCode")})");
            }
            if (clock.GetUtcNow() > deadline) throw new TimeoutException($"{shop}: bulk operation {id} did not finish within {options.Value.MaxWait}");
            await Task.Delay(options.Value.PollInterval, clock, ct);
        }
    }

    private async Task<long> ShopIdAsync(string shop, CancellationToken ct)
    {
        await using var cmd = db.CreateCommand("SELECT id FROM shops WHERE domain = $1");
        cmd.Parameters.AddWithValue(shop);
        return await cmd.ExecuteScalarAsync(ct) is long id ? id : throw new InvalidOperationException($"{shop} is not installed");
    }

    private async Task<long> StartRunAsync(long shopId, CancellationToken ct)
    {
        await using var cmd = db.CreateCommand("INSERT INTO backfill_runs (shop_id, state, started_at, updated_at) VALUES ($1, 'queued', $2, $2) RETURNING id");
        cmd.Parameters.AddWithValue(shopId);
        cmd.Parameters.AddWithValue(clock.GetUtcNow());
        return (long)(await cmd.ExecuteScalarAsync(ct))!;
    }

    private async Task UpdateRunAsync(long runId, string state, string? phase, long rows, string? error, bool finished, CancellationToken ct)
    {
        await using var cmd = db.CreateCommand("""
            UPDATE backfill_runs SET state = $2, phase = COALESCE($3, phase), rows_done = $4, error = $5, updated_at = $6,
              finished_at = CASE WHEN $7 THEN $6 END
            WHERE id = $1
            """);
        cmd.Parameters.AddWithValue(runId);
        cmd.Parameters.AddWithValue(state);
        cmd.Parameters.Add(new NpgsqlParameter { Value = (object?)phase ?? DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Text });
        cmd.Parameters.AddWithValue(rows);
        cmd.Parameters.Add(new NpgsqlParameter { Value = (object?)error ?? DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Text });
        cmd.Parameters.AddWithValue(clock.GetUtcNow());
        cmd.Parameters.AddWithValue(finished);
        await cmd.ExecuteNonQueryAsync(ct);
    }
}
