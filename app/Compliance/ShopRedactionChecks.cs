using Hangfire;
using Npgsql;
using PluginApp.Data;
using PluginApp.Install;
using PluginApp.Jobs;
using PluginApp.Shopify;
using PluginApp.StoreData;

namespace PluginApp.Compliance;

/// <summary>
/// Every minute: each shop/redact waiting for Shopify's word (<c>shop_redaction_checks</c>, queued by
/// <see cref="ComplianceService.AddShopRedaction"/> for a shop whose token Shopify had not refused). The shop is asked for
/// with the token the app holds. Refused (Shopify revokes the token at an uninstall; the client marks the shop), or no token
/// left to ask with: the shop is erased as the request asked. Answered: the app is installed, so the request is dropped and
/// logged as a security event (a signed body replayed with a fresh time, or one Shopify sent before the merchant came back).
/// No answer (Shopify unreachable, throttled, the shop frozen): asked again <see cref="Retry"/> later.
/// </summary>
public sealed class ShopRedactionChecks(NpgsqlDataSource db, AdminGraphQLClient shopify, TimeProvider clock, ILogger<ShopRedactionChecks> logger)
{
    public const string JobId = "shop-redaction-checks";

    /// <summary>
    /// How long after the request Shopify is first asked. Why not at once: an app/uninstalled Shopify retried late may still
    /// be on its way, and with it the shop reads as uninstalled and is erased without a call.
    /// </summary>
    public static readonly TimeSpan FirstAsk = TimeSpan.FromMinutes(1);

    /// <summary>How long a request waits to be asked again after Shopify gave no answer, or while another run asks.</summary>
    public static readonly TimeSpan Retry = TimeSpan.FromMinutes(5);

    /// <summary>The requests due, each claimed until <see cref="Retry"/> from now, so two runs never ask for the same.</summary>
    private const string ClaimSql = """
        UPDATE shop_redaction_checks c SET next_at = $2, tries = tries + 1 FROM shops s
        WHERE s.id = c.shop_id AND c.shop_id IN (
          SELECT shop_id FROM shop_redaction_checks WHERE next_at <= $1 ORDER BY next_at LIMIT 100 FOR UPDATE SKIP LOCKED)
        RETURNING c.shop_id, s.domain, c.delivery_id, c.uninstalled_by, c.requested_at
        """;

    [Queue(JobQueues.Default)]
    public async Task<int> RunAsync(CancellationToken ct)
    {
        var now = clock.GetUtcNow();
        var due = new List<(long Shop, string Domain, string Delivery, DateTimeOffset UninstalledBy, DateTimeOffset RequestedAt)>();
        await using (var cmd = db.CreateCommand(ClaimSql))
        {
            cmd.Parameters.Add(Sql.Param(now));
            cmd.Parameters.Add(Sql.Param(now + Retry));
            await using var r = await cmd.ExecuteReaderAsync(ct);
            while (await r.ReadAsync(ct))
                due.Add((r.GetInt64(0), r.GetString(1), r.GetString(2), r.GetFieldValue<DateTimeOffset>(3), r.GetFieldValue<DateTimeOffset>(4)));
        }
        var erased = 0;
        foreach (var (shopId, domain, delivery, uninstalledBy, requestedAt) in due)
        {
            bool tokenWorks;
            try
            {
                await shopify.ExecuteAsync(domain, GraphQLDocuments.Load("Install/Queries/shop-settings.graphql"), null, ct, expectedCost: 1);
                tokenWorks = true;
            }
            catch (Exception e) when (e is ShopTokenRevokedException or ShopNotConnectedException)
            {
                tokenWorks = false;
            }
            catch (Exception e) when (e is ShopifyGraphQLException or HttpRequestException or TaskCanceledException && !ct.IsCancellationRequested)
            {
                logger.LogWarning("shop/redact of {Shop}: Shopify did not say whether the app is still installed ({Message}); asked again in {Minutes} minutes",
                    domain, e.Message, Retry.TotalMinutes);
                await using var failed = db.CreateCommand("UPDATE shop_redaction_checks SET last_error = $2 WHERE shop_id = $1");
                failed.Parameters.Add(Sql.Param(shopId));
                failed.Parameters.Add(Sql.Param(e.Message));
                await failed.ExecuteNonQueryAsync(ct);
                continue;
            }

            if (tokenWorks)
            {
                await using var drop = db.CreateCommand("DELETE FROM shop_redaction_checks WHERE shop_id = $1 AND delivery_id = $2");
                drop.Parameters.Add(Sql.Param(shopId));
                drop.Parameters.Add(Sql.Param(delivery));
                await drop.ExecuteNonQueryAsync(ct);
                logger.LogWarning(Webhooks.WebhookIngestor.SecurityEvent,
                    "shop/redact {DeliveryId} for {Shop} not acted on: Shopify still accepts the app's token, so the app is installed " +
                    "(a replayed request, or one sent before the merchant installed again). Nothing was erased.", delivery, domain);
                continue;
            }

            // The token is refused now (marked by the client), so the request's own rule erases the shop; a shop granted again
            // meanwhile is kept, and the request is done either way.
            await using var conn = await db.OpenConnectionAsync(ct);
            await using var tx = await conn.BeginTransactionAsync(ct);
            await using var batch = new NpgsqlBatch(conn, tx);
            ComplianceService.AddShopRedaction(new StoreWriter(batch, shopId), domain, delivery, uninstalledBy + ComplianceService.ShopRedactionDelay, requestedAt);
            batch.BatchCommands.Add(new NpgsqlBatchCommand("DELETE FROM shop_redaction_checks WHERE shop_id = $1 AND delivery_id = $2")
                { Parameters = { Sql.Param(shopId), Sql.Param(delivery) } });
            await batch.ExecuteNonQueryAsync(ct);
            await tx.CommitAsync(ct);
            erased++;
            logger.LogInformation("shop/redact {DeliveryId}: Shopify refuses the app's token for {Shop}, so the shop was erased", delivery, domain);
        }
        return erased;
    }
}
