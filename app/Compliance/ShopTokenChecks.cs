using Hangfire;
using Npgsql;
using PluginApp.Data;
using PluginApp.Install;
using PluginApp.Jobs;
using PluginApp.Shopify;
using PluginApp.StoreData;

namespace PluginApp.Compliance;

/// <summary>
/// Every minute: each request that would disconnect or erase a shop whose token Shopify had not refused, waiting for
/// Shopify's word (<c>shop_token_checks</c>): shop/redact (queued by <see cref="ComplianceService.AddShopRedaction"/>, a
/// minute after it came) and app/uninstalled (queued by the webhook ingestor, also a minute after it came). The shop is asked for with the
/// token the app holds. Refused (Shopify revokes the token at an uninstall; the client marks the shop), or no token left to
/// ask with: the request acts (the shop is erased, or uninstalled). Answered: the app is installed, so the request is dropped
/// and logged as a security event (a signed body replayed with a fresh time, or one Shopify sent before the merchant came
/// back). No answer (Shopify unreachable, throttled, the shop frozen): asked again <see cref="Retry"/> later.
/// </summary>
public sealed class ShopTokenChecks(NpgsqlDataSource db, AdminGraphQLClient shopify, TimeProvider clock, ILogger<ShopTokenChecks> logger)
{
    /// <summary>The id it was first registered under (6 Dec 2026), when it asked for shop/redact alone; a deployment's Hangfire keeps it.</summary>
    public const string JobId = "shop-redaction-checks";

    /// <summary>
    /// How long after a request Shopify is first asked. Why not at once: for shop/redact, an app/uninstalled Shopify retried
    /// late may still be on its way, and with it the shop reads as uninstalled and is erased without a call; for
    /// app/uninstalled, Shopify may revoke the token a moment after it sends the webhook, and one answer on the old token
    /// would drop a real uninstall.
    /// </summary>
    public static readonly TimeSpan FirstAsk = TimeSpan.FromMinutes(1);

    /// <summary>How long a request waits to be asked again after Shopify gave no answer, or while another run asks.</summary>
    public static readonly TimeSpan Retry = TimeSpan.FromMinutes(5);

    /// <summary>
    /// How long after the request the app stops waiting for an answer and acts as the request asked. Why: a shop Shopify
    /// answers for with neither yes nor no (frozen or closed, deleted, an error every time) would otherwise stay installed,
    /// and unerased, for ever; a day of no answer is no sign of an installed app.
    /// </summary>
    public static readonly TimeSpan GiveUpAfter = TimeSpan.FromDays(1);

    /// <summary>The requests due, each claimed until <see cref="Retry"/> from now, so two runs never ask for the same.</summary>
    private const string ClaimSql = """
        UPDATE shop_token_checks c SET next_at = $2, tries = tries + 1 FROM shops s
        WHERE s.id = c.shop_id AND (c.shop_id, c.topic) IN (
          SELECT shop_id, topic FROM shop_token_checks WHERE next_at <= $1 ORDER BY next_at LIMIT 100 FOR UPDATE SKIP LOCKED)
        RETURNING c.shop_id, s.domain, c.topic, c.delivery_id, c.triggered_at, c.requested_at
        """;

    [Queue(JobQueues.Default)]
    public async Task<int> RunAsync(CancellationToken ct)
    {
        var now = clock.GetUtcNow();
        var due = new List<Request>();
        await using (var cmd = db.CreateCommand(ClaimSql))
        {
            cmd.Parameters.Add(Sql.Param(now));
            cmd.Parameters.Add(Sql.Param(now + Retry));
            await using var r = await cmd.ExecuteReaderAsync(ct);
            while (await r.ReadAsync(ct))
                due.Add(new Request(r.GetInt64(0), r.GetString(1), r.GetString(2), r.GetString(3), r.GetFieldValue<DateTimeOffset>(4), r.GetFieldValue<DateTimeOffset>(5)));
        }
        var acted = 0;
        foreach (var request in due)
        {
            // Why each apart: one that fails (an unreadable token, the database) is asked again at its time and holds no other back.
            try { if (await CheckAsync(request, now, ct)) acted++; }
            catch (Exception e) when (!ct.IsCancellationRequested)
            {
                logger.LogError(e, "{Topic} {DeliveryId} of {Shop}: its check failed; asked again in {Minutes} minutes", request.Topic, request.Delivery, request.Domain, Retry.TotalMinutes);
                await NoteAsync(request, e.Message, ct);
            }
        }
        return acted;
    }

    private sealed record Request(long ShopId, string Domain, string Topic, string Delivery, DateTimeOffset TriggeredAt, DateTimeOffset RequestedAt);

    /// <summary>Whether the shop is marked as holding a token Shopify refused (the client marks it when the refused token is the stored one).</summary>
    private async Task<bool> MarkedRevokedAsync(long shopId, CancellationToken ct)
    {
        await using var cmd = db.CreateCommand("SELECT token_revoked_at IS NOT NULL FROM shops WHERE id = $1");
        cmd.Parameters.Add(Sql.Param(shopId));
        return await cmd.ExecuteScalarAsync(ct) is true;
    }

    /// <returns>Whether the request acted: the shop erased, or uninstalled.</returns>
    private async Task<bool> CheckAsync(Request request, DateTimeOffset now, CancellationToken ct)
    {
        var (shopId, domain, topic, delivery, triggeredAt, requestedAt) = request;
        bool tokenWorks;
        var noToken = false;
        var refusedUnmarked = false;
        try
        {
            await shopify.ExecuteAsync(domain, GraphQLDocuments.Load("Install/Queries/shop-settings.graphql"), null, ct, expectedCost: 1);
            tokenWorks = true;
        }
        catch (ShopTokenRevokedException)
        {
            tokenWorks = false; // the client marked the shop, unless the refused token was no longer the stored one (below)
            refusedUnmarked = !await MarkedRevokedAsync(shopId, ct);
        }
        catch (ShopNotConnectedException e)
        {
            // No token Shopify would take (expired with no refresh left, refused at refresh, none stored): nothing can say the
            // app is installed, and the request erases the shop. Marked as the client marks a refused token, so the rule sees it.
            logger.LogInformation("{Topic} {DeliveryId} of {Shop}: no token to ask Shopify with ({Reason})", topic, delivery, domain, e.Message);
            (tokenWorks, noToken) = (false, true);
        }
        // Why these alone: they are Shopify's side giving no answer (an error, a frozen store, no reply in time). The app's own
        // failures (a token it cannot decrypt, the database) go to RunAsync's handler, are asked again and never act: a day
        // of them must not erase or disconnect a shop.
        catch (Exception e) when (e is ShopifyGraphQLException or HttpRequestException or TokenEndpointException or TaskCanceledException && !ct.IsCancellationRequested)
        {
            if (now - requestedAt < GiveUpAfter)
            {
                logger.LogWarning("{Topic} of {Shop}: Shopify did not say whether the app is still installed ({Message}); asked again in {Minutes} minutes",
                    topic, domain, e.Message, Retry.TotalMinutes);
                await NoteAsync(request, e.Message, ct);
                return false;
            }
            // A day without an answer (frozen, closed or deleted, an error every time): acted on as if refused, and said.
            logger.LogWarning("{Topic} {DeliveryId} of {Shop}: no answer from Shopify for {Hours} hours ({Message}); acted on as the request asks",
                topic, delivery, domain, GiveUpAfter.TotalHours, e.Message);
            (tokenWorks, noToken) = (false, true);
        }

        if (refusedUnmarked)
        {
            // Refused, but the shop holds another token since the call went (another instance refreshed it, or a new grant
            // came), so the client did not mark it: the refusal was of a token no longer ours, and says nothing of the one
            // the shop has now. Asked again with it. Why: an uninstall then disconnected an installed shop (until 7 Dec 2026).
            logger.LogInformation("{Topic} {DeliveryId} of {Shop}: Shopify refused a token the shop no longer holds; asked again with its new one in {Minutes} minutes",
                topic, delivery, domain, Retry.TotalMinutes);
            await NoteAsync(request, "Shopify refused a token the shop has since replaced", ct);
            return false;
        }
        if (tokenWorks)
        {
            await using var drop = db.CreateCommand("DELETE FROM shop_token_checks WHERE shop_id = $1 AND topic = $2 AND delivery_id = $3");
            drop.Parameters.Add(Sql.Param(shopId));
            drop.Parameters.Add(Sql.Param(topic));
            drop.Parameters.Add(Sql.Param(delivery));
            await drop.ExecuteNonQueryAsync(ct);
            logger.LogWarning(Webhooks.WebhookIngestor.SecurityEvent,
                "{Topic} {DeliveryId} for {Shop} not acted on: Shopify still accepts the app's token, so the app is installed " +
                "(a replayed request, or one sent before the merchant installed again). Nothing was changed.", topic, delivery, domain);
            return false;
        }

        // The token is refused now, so the request's own rule acts: the shop erased or uninstalled, unless it was granted again
        // meanwhile; the request is done either way.
        await db.WriteBatchAsync(batch =>
        {
            if (noToken)
                batch.BatchCommands.Add(new NpgsqlBatchCommand("UPDATE shops SET token_revoked_at = coalesce(token_revoked_at, $2) WHERE id = $1")
                    { Parameters = { Sql.Param(shopId), Sql.Param(clock.GetUtcNow()) } });
            if (topic == Webhooks.WebhookTopics.AppUninstalled)
                Webhooks.WebhookIngestor.Uninstall(new StoreWriter(batch, shopId), shopId, domain, triggeredAt, clock.GetUtcNow());
            else ComplianceService.AddShopRedaction(new StoreWriter(batch, shopId), domain, delivery, triggeredAt, requestedAt);
            batch.BatchCommands.Add(new NpgsqlBatchCommand("DELETE FROM shop_token_checks WHERE shop_id = $1 AND topic = $2 AND delivery_id = $3")
                { Parameters = { Sql.Param(shopId), Sql.Param(topic), Sql.Param(delivery) } });
        }, ct);
        if (topic == Webhooks.WebhookTopics.AppUninstalled)
        {
            await using var still = db.CreateCommand("SELECT uninstalled_at IS NULL FROM shops WHERE id = $1");
            still.Parameters.Add(Sql.Param(shopId));
            var kept = await still.ExecuteScalarAsync(ct) is true;
            logger.LogInformation(kept
                ? "app/uninstalled {DeliveryId} of {Shop}: Shopify refused a token, but the shop was granted again, or its admin opened, since; it stays installed"
                : "app/uninstalled {DeliveryId}: Shopify refuses the app's token for {Shop}, so the shop is uninstalled", delivery, domain);
            return !kept;
        }
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

    private async Task NoteAsync(Request request, string error, CancellationToken ct)
    {
        await using var failed = db.CreateCommand("UPDATE shop_token_checks SET last_error = $3 WHERE shop_id = $1 AND topic = $2");
        failed.Parameters.Add(Sql.Param(request.ShopId));
        failed.Parameters.Add(Sql.Param(request.Topic));
        failed.Parameters.Add(Sql.Param(error));
        await failed.ExecuteNonQueryAsync(ct);
    }
}
