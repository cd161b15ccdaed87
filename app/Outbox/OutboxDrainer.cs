using System.Text.Json;
using Microsoft.Extensions.Options;
using Npgsql;
using PluginApp.Install;
using PluginApp.Shopify;
using PluginApp.StoreData;
using PluginApp.Data;

namespace PluginApp.Outbox;

/// <summary>
/// Sends one shop's queued calls, each exactly once in effect. A call is claimed for a lease (and its attempt counted) in
/// one short transaction, sent with no transaction open, and its outcome recorded in another. If the process dies, or the
/// connection drops after Shopify applied the call, the lease lapses and the next attempt first checks whether the effect
/// is already there (idempotent kinds need no check). Only the oldest open call of a resource is sent, so calls on one
/// order keep their order; userErrors or MaxAttempts end a call as failed, listed in the admin.
/// </summary>
public sealed class OutboxDrainer(NpgsqlDataSource db, ShopLookup shops, AdminGraphQLClient shopify, IEnumerable<OutboxOperation> operations,
    TableStatistics statistics, IOptions<OutboxOptions> options, TimeProvider clock, ILogger<OutboxDrainer> logger)
{
    private readonly Dictionary<string, OutboxOperation> _operations = operations.ToDictionary(o => o.Name, StringComparer.Ordinal);

    private sealed record Claim(long Id, string Operation, string Variables, int Attempts, DateTimeOffset Until, long[] GoneCustomers);

    /// <summary>
    /// An open call m that is the oldest open call of its resource: only such a call can go out, so only its due time
    /// counts. Why it matters: calls waiting behind one that backs off look due, and counting them would bring the drain
    /// (and the sweep) straight back, over and over, while Shopify is down. Why a correlated "first id" and not NOT EXISTS
    /// (e.id &lt; m.id): before autovacuum has analyzed a table that filled fast, the planner took the anti-join as a nested
    /// loop over every open call of the shop (4 s per claim at 4,000 open calls). The lookup can use only
    /// outbox_resource_idx, as it does not state <see cref="InLine"/> (migration 0036): with the queue's indexes open to
    /// it, it walked the shop's open calls for every call looked at when the statistics said few were open. Statistics from a
    /// nearly empty table still made it walk the primary key or the shop's idempotency keys for each call, so a drain and the
    /// sweep first refresh them when the table has outgrown them (<see cref="TableStatistics"/>).
    /// </summary>
    private const string FirstOfItsResource = """
        m.completed_at IS NULL AND m.failed_at IS NULL
        AND m.id = (SELECT e.id FROM outbox_messages e WHERE e.shop_id = m.shop_id AND e.resource_key = m.resource_key
                    AND e.completed_at IS NULL AND e.failed_at IS NULL ORDER BY e.id LIMIT 1)
        """;

    /// <summary>
    /// The condition of the indexes that walk the queue (outbox_pending_idx, outbox_open_in_order_idx): open, with a due time
    /// (always set). A statement that walks the queue states it, or bounds next_attempt_at, to use them; the lookup of a
    /// resource's first call does not, so it cannot (migration 0036).
    /// </summary>
    internal const string InLine = "completed_at IS NULL AND failed_at IS NULL AND next_attempt_at IS NOT NULL";

    internal static readonly string ClaimSql = $"""
        WITH next AS (
          SELECT m.id FROM outbox_messages m
          WHERE m.shop_id = $1 AND m.next_attempt_at <= $2 AND (m.claimed_until IS NULL OR m.claimed_until < $2)
            AND {FirstOfItsResource}
          ORDER BY m.id LIMIT 1
          FOR UPDATE OF m SKIP LOCKED)
        UPDATE outbox_messages m SET claimed_until = $3, attempts = m.attempts + 1
        FROM next WHERE m.id = next.id
        RETURNING m.id, m.operation, m.variables::text, m.attempts,
          -- The customers it names (its resource, the owners of a batch's metafields) who are erased or deleted in Shopify now.
          ARRAY(SELECT c.id FROM customers c
                WHERE c.shop_id = m.shop_id AND {StoreWriter.CustomerGone("c")}
                  AND c.id IN (SELECT substring(k FROM '^gid://shopify/Customer/([0-9]+)$')::bigint
                               FROM (SELECT m.resource_key UNION ALL
                                     SELECT e ->> 'ownerId' FROM jsonb_array_elements(CASE WHEN jsonb_typeof(m.variables -> 'metafields') = 'array'
                                                                                           THEN m.variables -> 'metafields' ELSE '[]' END) e) x(k)))
        """;

    /// <summary>
    /// Sends up to BatchSize due calls of the shop. Returns when its next call falls due (zero: more are due now), or null when
    /// nothing is left.
    /// </summary>
    public async Task<TimeSpan?> DrainShopAsync(long shopId, CancellationToken ct)
    {
        var shop = await shops.ReachableDomainAsync(shopId, ct);
        if (shop is null) return null; // uninstalled or revoked: its calls wait (and go with shop/redact)
        await statistics.RefreshIfOutgrownAsync("outbox_messages", ct);
        for (var i = 0; i < options.Value.BatchSize && !ct.IsCancellationRequested; i++)
        {
            // Why wait outside: a throttled shop gives its worker back instead of sleeping in it.
            var wait = shopify.TimeUntilAffordable(shop, AdminGraphQLClient.MutationCost);
            if (wait > TimeSpan.FromSeconds(1)) return wait;
            var claim = await ClaimAsync(shopId, ct);
            if (claim is null) return await NextDueAsync(shopId, ct);
            if (claim.GoneCustomers.Length > 0)
            {
                await DropGoneCustomersAsync(shopId, claim, ct);
                continue;
            }
            // Not connected (no usable token until the merchant opens the app again): nothing went out, so the call keeps its
            // attempts and waits; the sweep looks again each minute instead of spending every call's retries meanwhile.
            if (!await SendAsync(shop, claim, ct)) return null;
        }
        return TimeSpan.Zero;
    }

    internal const string NextDueSql = $"""
        SELECT min(greatest(m.next_attempt_at, coalesce(m.claimed_until, m.next_attempt_at))) FROM outbox_messages m
        WHERE m.shop_id = $1 AND {FirstOfItsResource}
        """;

    // Why each reachable shop's first due call, looked for in id order: read from the calls, every sweep read every due call
    // of every shop to find which shops had one, a minute's work growing with the backlog it is there to clear (Shopify down,
    // a churn run tagging thousands of customers; 567 ms a minute in the ingest benchmark, whose shops have no token, so
    // their calls wait), and the calls of shops we cannot reach too. Why a lateral LIMIT 1 and not EXISTS: PostgreSQL drops
    // the order and the limit from an EXISTS and may then read all of a shop's open calls at once.
    internal static readonly string DueShopsSql = $"""
        SELECT s.id FROM shops s
        CROSS JOIN LATERAL (SELECT m.id FROM outbox_messages m
                            WHERE m.shop_id = s.id AND m.next_attempt_at <= $1 AND (m.claimed_until IS NULL OR m.claimed_until < $1)
                              AND {FirstOfItsResource}
                            ORDER BY m.id LIMIT 1) due
        WHERE {ShopStatus.Reachable("s")}
        """;

    /// <summary>Shops with a call due now (for the sweep).</summary>
    public async Task<List<long>> ShopsWithDueCallsAsync(CancellationToken ct)
    {
        await statistics.RefreshIfOutgrownAsync("outbox_messages", ct);
        await using var cmd = db.CreateCommand(DueShopsSql);
        cmd.Parameters.AddWithValue(clock.GetUtcNow());
        var shops = new List<long>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct)) shops.Add(r.GetInt64(0));
        return shops;
    }

    /// <summary>Sends the call and records its outcome; false when the shop has no usable token (the call is released untried).</summary>
    private async Task<bool> SendAsync(string shop, Claim claim, CancellationToken ct)
    {
        string? error = null;
        var permanent = false;
        var outcome = "sent";
        try
        {
            if (!_operations.TryGetValue(claim.Operation, out var op))
                throw new OutboxOperationUnknownException(claim.Operation);
            using var vars = JsonDocument.Parse(claim.Variables);
            if (claim.Attempts > 1 && op.Check is { } check)
            {
                // An earlier attempt may have reached Shopify (a crash, a dropped answer): look before sending again.
                var data = await shopify.ExecuteAsync(shop, check.Document, check.Variables(vars.RootElement), ct, expectedCost: 5);
                if (check.AlreadyApplied(data, vars.RootElement)) outcome = "found applied";
            }
            if (outcome == "sent") await shopify.MutateAsync(shop, op.Document, vars.RootElement, op.Name, ct);
        }
        catch (Exception e) when (e is ShopifyUserErrorsException or OutboxOperationUnknownException)
        {
            (error, permanent, outcome) = (e.Message, true, "refused");
        }
        // Why the token endpoint's failures and a refused token too: the call never reached Shopify, or Shopify refused it
        // unread, so nothing was applied; until 6 Dec 2026 each drain spent an attempt on them, and 45 minutes of a failing
        // token endpoint failed every queued hold, assessment, code and tag for good.
        catch (Exception e) when (e is ShopNotConnectedException or ShopFrozenException or TokenEndpointException or ShopTokenRevokedException
                                      or ShopifyThrottledException)
        {
            if (ct.IsCancellationRequested) throw;
            await ReleaseUntriedAsync(claim, e.Message);
            return false;
        }
        catch (Exception e) when (e is ShopifyGraphQLException or HttpRequestException or TaskCanceledException or JsonException)
        {
            if (ct.IsCancellationRequested) throw; // shutting down: the lease lapses and the next attempt checks first
            (error, outcome) = (e.Message, "unknown");
        }
        // Anything else (an answer of a shape the check cannot read, a failure of the app's own): whether the call went out is
        // not known, so it is recorded as such, with what went wrong, and its attempts count. Until 6 Dec 2026 it escaped the
        // drain: the call stayed claimed with no error shown, was claimed again by the sweep, and never failed for good, while
        // every later call on its resource waited behind it.
        catch (Exception e) when (!ct.IsCancellationRequested)
        {
            logger.LogError(e, "Outbox call {Id} ({Operation}) for {Shop} failed unexpectedly", claim.Id, claim.Operation, shop);
            (error, outcome) = ($"{e.GetType().Name}: {e.Message}", "unknown");
        }
        await RecordAsync(claim, error, permanent, outcome, shop);
        return true;
    }

    /// <summary>
    /// A call that names a customer erased or deleted in Shopify since it was queued: her calls are dropped as her erasure
    /// drops them (a batch of metafields keeps the others', and goes back to the queue untried without hers). Why here too:
    /// a job that wrote her calls in a transaction her erasure did not see (a churn run committing while her erasure ran)
    /// left them queued, and they went out on her (until 7 Dec 2026). The erasure's second pass came minutes later.
    /// </summary>
    private async Task DropGoneCustomersAsync(long shopId, Claim claim, CancellationToken ct)
    {
        await db.WriteBatchAsync(batch =>
        {
            foreach (var customer in claim.GoneCustomers)
                batch.BatchCommands.Add(new NpgsqlBatchCommand(OutboxExtensions.DropCustomerCalls) { Parameters = { Sql.Param(shopId), Sql.Param(customer) } });
            batch.BatchCommands.Add(new NpgsqlBatchCommand(
                "UPDATE outbox_messages SET claimed_until = NULL, attempts = attempts - 1 WHERE id = $1 AND claimed_until = $2")
            { Parameters = { Sql.Param(claim.Id), Sql.Param(claim.Until) } });
        }, ct);
        logger.LogInformation("Outbox call {Id} ({Operation}): customers {Customers} were erased or deleted in Shopify since it was queued; nothing of theirs is sent",
            claim.Id, claim.Operation, string.Join(", ", claim.GoneCustomers));
    }

    /// <summary>Gives a claimed call back as if it had not been claimed (its attempt not counted), with the reason it waits.</summary>
    private async Task ReleaseUntriedAsync(Claim claim, string reason)
    {
        await using var cmd = db.CreateCommand(
            "UPDATE outbox_messages SET claimed_until = NULL, attempts = attempts - 1, last_error = $3 WHERE id = $1 AND claimed_until = $2");
        cmd.Parameters.Add(Sql.Param(claim.Id));
        cmd.Parameters.Add(Sql.Param(claim.Until));
        cmd.Parameters.Add(Sql.Param(reason));
        await cmd.ExecuteNonQueryAsync(CancellationToken.None);
    }

    private async Task RecordAsync(Claim claim, string? error, bool permanent, string outcome, string shop)
    {
        var now = clock.GetUtcNow();
        var giveUp = error is not null && (permanent || claim.Attempts >= options.Value.MaxAttempts);
        await using var cmd = db.CreateCommand("""
            UPDATE outbox_messages SET claimed_until = NULL, last_error = $3, outcome = $4,
              completed_at = CASE WHEN $3 IS NULL THEN $5 END,
              failed_at = CASE WHEN $6 THEN $5 END,
              next_attempt_at = $7
            WHERE id = $1 AND claimed_until = $2
            """);
        cmd.Parameters.Add(Sql.Param(claim.Id));
        cmd.Parameters.Add(Sql.Param(claim.Until));
        cmd.Parameters.Add(new NpgsqlParameter { Value = (object?)error ?? DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Text });
        cmd.Parameters.Add(Sql.Param(outcome));
        cmd.Parameters.Add(Sql.Param(now));
        cmd.Parameters.Add(Sql.Param(giveUp));
        cmd.Parameters.Add(Sql.Param(now + Backoff(claim.Attempts)));
        // Why no token: the call went out; its outcome must be written even while the app shuts down.
        var updated = await cmd.ExecuteNonQueryAsync(CancellationToken.None);
        if (updated == 0) logger.LogWarning("Outbox call {Id} for {Shop}: its lease lapsed before the outcome ({Outcome}) was recorded; the next attempt checks first", claim.Id, shop, outcome);
        else if (giveUp) logger.LogWarning("Outbox call {Id} ({Operation}) for {Shop} failed for good after {Attempts} attempts: {Error}", claim.Id, claim.Operation, shop, claim.Attempts, error);
        else if (error is not null) logger.LogInformation("Outbox call {Id} for {Shop} will be retried: {Error}", claim.Id, shop, error);
    }

    private async Task<Claim?> ClaimAsync(long shopId, CancellationToken ct)
    {
        var now = clock.GetUtcNow();
        var until = now + options.Value.Lease;
        await using var cmd = db.CreateCommand(ClaimSql);
        cmd.Parameters.AddWithValue(shopId);
        cmd.Parameters.AddWithValue(now);
        cmd.Parameters.AddWithValue(until);
        await using var r = await cmd.ExecuteReaderAsync(ct);
        return await r.ReadAsync(ct) ? new Claim(r.GetInt64(0), r.GetString(1), r.GetString(2), r.GetInt32(3), until, r.GetFieldValue<long[]>(4)) : null;
    }

    private async Task<TimeSpan?> NextDueAsync(long shopId, CancellationToken ct)
    {
        await using var cmd = db.CreateCommand(NextDueSql);
        cmd.Parameters.AddWithValue(shopId);
        return await cmd.ExecuteScalarAsync(ct) is DateTime at
            ? TimeSpan.FromTicks(Math.Max(0, (new DateTimeOffset(at, TimeSpan.Zero) - clock.GetUtcNow()).Ticks))
            : null;
    }

    private TimeSpan Backoff(int attempts)
    {
        var o = options.Value;
        var delay = o.BaseDelay.TotalSeconds * Math.Pow(2, Math.Min(attempts - 1, 20));
        return TimeSpan.FromSeconds(Math.Min(delay, o.MaxDelay.TotalSeconds));
    }
}

/// <summary>A stored call whose kind no feature registers (e.g. code removed since it was queued).</summary>
public sealed class OutboxOperationUnknownException(string name) : Exception($"no outbox operation named '{name}' is registered");
