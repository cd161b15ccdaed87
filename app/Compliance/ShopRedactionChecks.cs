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
        RETURNING c.shop_id, s.domain, c.delivery_id, c.triggered_at, c.requested_at
        """;

    [Queue(JobQueues.Default)]
    public async Task<int> RunAsync(CancellationToken ct)
    {
        var now = clock.GetUtcNow();
        var due = new List<(long Shop, string Domain, string Delivery, DateTimeOffset TriggeredAt, DateTimeOffset RequestedAt)>();
        await using (var cmd = db.CreateCommand(ClaimSql))
        {
            cmd.Parameters.Add(Sql.Param(now));
            cmd.Parameters.Add(Sql.Param(now + Retry));
            await using var r = await cmd.ExecuteReaderAsync(ct);
            while (await r.ReadAsync(ct))
                due.Add((r.GetInt64(0), r.GetString(1), r.GetString(2), r.GetFieldValue<DateTimeOffset>(3), r.GetFieldValue<DateTimeOffset>(4)));
        }
        var erased = 0;
        foreach (var (shopId, domain, delivery, triggeredAt, requestedAt) in due)
        {
            // Why each apart: one that fails (an unreadable token, the database) is asked again at its time and holds no other back.
            try { if (await CheckAsync(shopId, domain, delivery, triggeredAt, requestedAt, ct)) erased++; }
            catch (Exception e) when (!ct.IsCancellationRequested)
            {
                logger.LogError(e, "shop/redact {DeliveryId} of {Shop}: its check failed; asked again in {Minutes} minutes", delivery, domain, Retry.TotalMinutes);
                await NoteAsync(shopId, e.Message, ct);
            }
        }
        return erased;
    }

    /// <returns>Whether the shop was erased.</returns>
    private async Task<bool> CheckAsync(long shopId, string domain, string delivery, DateTimeOffset triggeredAt, DateTimeOffset requestedAt, CancellationToken ct)
    {
        bool tokenWorks;
        var noToken = false;
        try
        {
            await shopify.ExecuteAsync(domain, GraphQLDocuments.Load("Install/Queries/shop-settings.graphql"), null, ct, expectedCost: 1);
            tokenWorks = true;
        }
        catch (ShopTokenRevokedException)
        {
            tokenWorks = false; // the client marked the shop, unless a new token came meanwhile (then the erasure's rule keeps it)
        }
        catch (ShopNotConnectedException e)
        {
            // No token Shopify would take (expired with no refresh left, refused at refresh, none stored): nothing can say the
            // app is installed, and the request erases the shop. Marked as the client marks a refused token, so the rule sees it.
            logger.LogInformation("shop/redact {DeliveryId} of {Shop}: no token to ask Shopify with ({Reason})", delivery, domain, e.Message);
            (tokenWorks, noToken) = (false, true);
        }
        catch (Exception e) when (e is ShopifyGraphQLException or HttpRequestException or TokenEndpointException or TaskCanceledException && !ct.IsCancellationRequested)
        {
            logger.LogWarning("shop/redact of {Shop}: Shopify did not say whether the app is still installed ({Message}); asked again in {Minutes} minutes",
                domain, e.Message, Retry.TotalMinutes);
            await NoteAsync(shopId, e.Message, ct);
            return false;
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
            return false;
        }

        // The token is refused now, so the request's own rule erases the shop; a shop granted again meanwhile is kept, and the
        // request is done either way.
        await using var conn = await db.OpenConnectionAsync(ct);
        await using var tx = await conn.BeginTransactionAsync(ct);
        await using var batch = new NpgsqlBatch(conn, tx);
        if (noToken)
            batch.BatchCommands.Add(new NpgsqlBatchCommand("UPDATE shops SET token_revoked_at = coalesce(token_revoked_at, $2) WHERE id = $1")
                { Parameters = { Sql.Param(shopId), Sql.Param(clock.GetUtcNow()) } });
        ComplianceService.AddShopRedaction(new StoreWriter(batch, shopId), domain, delivery, triggeredAt, requestedAt);
        batch.BatchCommands.Add(new NpgsqlBatchCommand("DELETE FROM shop_redaction_checks WHERE shop_id = $1 AND delivery_id = $2")
            { Parameters = { Sql.Param(shopId), Sql.Param(delivery) } });
        await batch.ExecuteNonQueryAsync(ct);
        await tx.CommitAsync(ct);
        await using var left = db.CreateCommand("SELECT EXISTS (SELECT 1 FROM shops WHERE id = $1)");
        left.Parameters.Add(Sql.Param(shopId));
        if (await left.ExecuteScalarAsync(ct) is true)
        {
            logger.LogInformation("shop/redact {DeliveryId} of {Shop}: Shopify refused a token, but the shop was granted again since; nothing was erased", delivery, domain);
            return false;
        }
        logger.LogInformation("shop/redact {DeliveryId}: Shopify refuses the app's token for {Shop}, so the shop was erased", delivery, domain);
        return true;
    }

    private async Task NoteAsync(long shopId, string error, CancellationToken ct)
    {
        await using var failed = db.CreateCommand("UPDATE shop_redaction_checks SET last_error = $2 WHERE shop_id = $1");
        failed.Parameters.Add(Sql.Param(shopId));
        failed.Parameters.Add(Sql.Param(error));
        await failed.ExecuteNonQueryAsync(ct);
    }
}
