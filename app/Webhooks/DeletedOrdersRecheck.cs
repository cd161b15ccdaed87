using Hangfire;
using Npgsql;
using PluginApp.Data;
using PluginApp.StoreData;

namespace PluginApp.Webhooks;

/// <summary>
/// Every five minutes: an order Shopify deleted in the last day (<c>deleted_orders</c>) that is in the store again is deleted
/// again, as its orders/delete did, with what the features keep of it. Why: a delivery of it (an orders/updated, its refund
/// or its transaction) or an import's chunk whose statement began before the deletion committed did not see it, and wrote
/// the order back (until 7 Dec 2026 it stayed, a test order counted in the store's figures and models). Why the last day
/// only: such a writer ends within seconds, and a later delivery or import of the order writes nothing.
/// </summary>
internal sealed class DeletedOrdersRecheck(NpgsqlDataSource db, WebhookIngestor ingestor, TimeProvider clock, ILogger<DeletedOrdersRecheck> logger,
    IEnumerable<DeletedOrderRows> featureRows)
{
    public const string JobId = "deleted-orders-recheck";

    /// <summary>
    /// $1: the earliest deletion looked at. An order is back when its row, a refund of it, a refund line (the import writes
    /// them after asking Shopify, with no order row: until 7 Dec 2026 one written then stayed) or its card is held, or a row a
    /// feature keeps of it that a writer of its own can write with no order row (a dispute's fraud label).
    /// </summary>
    private readonly string writtenBackSql = WrittenBackSql(["refunds", "refund_lines", "order_cards", .. featureRows.Select(f => f.Table)]);

    private static string WrittenBackSql(IEnumerable<string> orderTables) => $"""
        SELECT z.shop_id, s.domain, z.order_id FROM deleted_orders z JOIN shops s ON s.id = z.shop_id
        WHERE z.deleted_at >= $1 AND (EXISTS (SELECT 1 FROM orders o WHERE o.shop_id = z.shop_id AND o.id = z.order_id)
          {string.Join("\n  ", orderTables.Distinct().Select(table =>
              $"OR EXISTS (SELECT 1 FROM {table} t WHERE t.shop_id = z.shop_id AND t.order_id = z.order_id)"))})
        """;

    [AutomaticRetry(Attempts = 0)] // it runs again in five minutes
    public async Task<int> RunAsync(CancellationToken ct)
    {
        var back = new List<(long Shop, string Domain, long Order)>();
        await using (var cmd = db.CreateCommand(writtenBackSql))
        {
            cmd.Parameters.Add(Sql.Param(clock.GetUtcNow() - TimeSpan.FromDays(1)));
            await using var r = await cmd.ExecuteReaderAsync(ct);
            while (await r.ReadAsync(ct)) back.Add((r.GetInt64(0), r.GetString(1), r.GetInt64(2)));
        }
        var done = 0;
        foreach (var (shop, domain, order) in back)
        {
            // Why each apart: one that fails (a deadlock with a writer, a timeout) is tried again at the next run and holds no
            // other back.
            try
            {
                await db.WriteBatchAsync(batch =>
                    ingestor.AddAsDelivered(batch, shop, domain, "orders/delete", new OrderDeletion(order), $"{JobId}:{order}", clock.GetUtcNow()), ct);
                done++;
                logger.LogWarning("Shop {Shop}: order {Order}, deleted in Shopify, had been written back by a writer in flight; deleted again", domain, order);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                logger.LogError(e, "Shop {Shop}: order {Order}, deleted in Shopify and written back, could not be deleted again; tried again at the next run", domain, order);
            }
        }
        return done;
    }
}

/// <summary>
/// A feature's table of rows keyed by (shop_id, order_id) that a writer can write for an order without writing the order
/// itself (a dispute's delivery, a Stripe match), so that a deletion it raced leaves the row behind. The feature's own
/// <see cref="IngestionStep"/> on <see cref="OrderDeletion"/> deletes it; <see cref="DeletedOrdersRecheck"/> looks for it.
/// </summary>
internal sealed record DeletedOrderRows(string Feature, string Table);

internal static class DeletedOrderRowsExtensions
{
    public static IServiceCollection AddDeletedOrderRows(this IServiceCollection services, string feature, string table) =>
        services.AddSingleton(new DeletedOrderRows(feature, table));
}
