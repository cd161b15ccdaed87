using System.Text.Json;
using Microsoft.Extensions.Options;
using Npgsql;
using PluginApp.Install;
using PluginApp.Shopify;

namespace PluginApp.Outbox;

/// <summary>
/// Sends queued calls through the Admin GraphQL client. Each call is claimed with a row lock
/// (SKIP LOCKED, so instances never send one twice at once), only when it is the oldest open call for its
/// resource, and marked done in the same transaction; failures back off and end as failed-for-good.
/// </summary>
public sealed class OutboxDrainer(NpgsqlDataSource db, AdminGraphQLClient shopify, IOptions<OutboxOptions> options,
    TimeProvider clock, ILogger<OutboxDrainer> logger)
{
    private const string ClaimSql = """
        SELECT m.id, s.domain, m.operation, m.document, m.variables::text, m.attempts
        FROM outbox_messages m JOIN shops s ON s.id = m.shop_id
        WHERE m.completed_at IS NULL AND m.failed_at IS NULL AND m.next_attempt_at <= $1
          AND s.uninstalled_at IS NULL AND s.token_revoked_at IS NULL
          AND NOT EXISTS (SELECT 1 FROM outbox_messages e WHERE e.shop_id = m.shop_id AND e.resource_key = m.resource_key
                          AND e.id < m.id AND e.completed_at IS NULL AND e.failed_at IS NULL)
        ORDER BY m.id
        LIMIT 1
        FOR UPDATE OF m SKIP LOCKED
        """;

    /// <summary>Sends up to BatchSize due calls. Returns how many were sent successfully.</summary>
    public async Task<int> DrainOnceAsync(CancellationToken ct)
    {
        var sent = 0;
        for (var i = 0; i < options.Value.BatchSize && !ct.IsCancellationRequested; i++)
        {
            var result = await SendNextAsync(ct);
            if (result is null) break;
            if (result.Value) sent++;
        }
        return sent;
    }

    /// <returns>null when nothing is due; otherwise whether the call succeeded.</returns>
    private async Task<bool?> SendNextAsync(CancellationToken ct)
    {
        await using var conn = await db.OpenConnectionAsync(ct);
        await using var tx = await conn.BeginTransactionAsync(ct);
        long id; string shop, operation, document, variables; int attempts;
        await using (var claim = new NpgsqlCommand(ClaimSql, conn, tx))
        {
            claim.Parameters.AddWithValue(clock.GetUtcNow());
            await using var r = await claim.ExecuteReaderAsync(ct);
            if (!await r.ReadAsync(ct)) return null;
            (id, shop, operation, document, variables, attempts) = (r.GetInt64(0), r.GetString(1), r.GetString(2), r.GetString(3), r.GetString(4), r.GetInt32(5));
        }

        string? error = null;
        var permanent = false;
        try
        {
            using var vars = JsonDocument.Parse(variables);
            await shopify.MutateAsync(shop, document, vars.RootElement, operation, ct);
        }
        catch (ShopifyUserErrorsException e) { error = e.Message; permanent = true; }
        catch (Exception e) when (e is ShopifyGraphQLException or HttpRequestException or TaskCanceledException
                                    or TokenEndpointException or ShopTokenRevokedException or ShopNotConnectedException)
        {
            if (ct.IsCancellationRequested) throw;
            error = e.Message;
        }

        var now = clock.GetUtcNow();
        attempts++;
        var giveUp = error is not null && (permanent || attempts >= options.Value.MaxAttempts);
        await using (var update = new NpgsqlCommand("""
            UPDATE outbox_messages SET attempts = $2, last_error = $3,
              completed_at = CASE WHEN $3 IS NULL THEN $4 END,
              failed_at = CASE WHEN $5 THEN $4 END,
              next_attempt_at = $6
            WHERE id = $1
            """, conn, tx))
        {
            update.Parameters.AddWithValue(id);
            update.Parameters.AddWithValue(attempts);
            update.Parameters.Add(new NpgsqlParameter { Value = (object?)error ?? DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Text });
            update.Parameters.AddWithValue(now);
            update.Parameters.AddWithValue(giveUp);
            update.Parameters.AddWithValue(now + Backoff(attempts));
            await update.ExecuteNonQueryAsync(ct);
        }
        await tx.CommitAsync(ct);
        if (giveUp) logger.LogWarning("Outbox call {Id} ({Operation}) for {Shop} failed for good after {Attempts} attempts: {Error}", id, operation, shop, attempts, error);
        else if (error is not null) logger.LogInformation("Outbox call {Id} for {Shop} will be retried: {Error}", id, shop, error);
        return error is null;
    }

    private TimeSpan Backoff(int attempts)
    {
        var o = options.Value;
        var delay = o.BaseDelay.TotalSeconds * Math.Pow(2, Math.Min(attempts - 1, 20));
        return TimeSpan.FromSeconds(Math.Min(delay, o.MaxDelay.TotalSeconds));
    }
}
