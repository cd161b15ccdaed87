using System.Globalization;
using System.Net;
using System.Text.Json;
using Hangfire;
using Microsoft.Extensions.Options;
using Npgsql;
using PluginApp.Data;
using Stripe;

namespace PluginApp.Stripe;

/// <summary>
/// Turns a stored Stripe dispute or early fraud warning into an order-risk label (source 'stripe'): reads the charge with
/// the store's own key, names the store's order from it, and writes the label known from the moment Stripe created the event.
/// The order of evidence, strongest first, and no guessing past it:
/// 1. the charge's metadata names the Shopify order: shopify_order_id or order_id (an id or an Order GID), else
///    shopify_order_name or order_name ("#1001"); when it names an order the store does not hold, the event is unmatched;
/// 2. else exactly one order of the store with the charge's email (billing or receipt), its currency and amount, placed
///    within a day of the charge; none or several: unmatched.
/// An early fraud warning is always fraud. A dispute is fraud when its reason is fraudulent or unrecognized; for any other
/// reason it is matched but writes no label (the same rule as Shopify Payments disputes). When such a dispute closes
/// (charge.dispute.closed), won by the merchant makes the order not fraud from then on, lost keeps it fraud. One label
/// per order and source: a later event changes it only when it says the opposite (a fraud label keeps the moment it was
/// first known).
/// An event unmatched because no order fits yet (the metadata names an order the store does not hold, or no order has the
/// charge's email and amount) is looked at again <see cref="Rematch"/> after it was last read, since the order's webhook
/// or the history backfill may bring it later; "several orders fit" and errors are final.
/// </summary>
public sealed class StripeChargeJob(NpgsqlDataSource db, StripeConnections connections, IOptions<StripeOptions> options, TimeProvider clock,
    ILogger<StripeChargeJob> logger)
{
    private static readonly HashSet<string> FraudReasons = new(["fraudulent", "unrecognized"], StringComparer.OrdinalIgnoreCase);
    private static readonly HashSet<string> ZeroDecimal = new(
        ["bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf"], StringComparer.OrdinalIgnoreCase);
    private static readonly HashSet<string> ThreeDecimal = new(["bhd", "jod", "kwd", "omr", "tnd"], StringComparer.OrdinalIgnoreCase);

    private sealed record StoredEvent(long ShopId, string Type, DateTimeOffset CreatedAt, string? ChargeId, string? Reason, string? FraudType, string? Status,
        int Attempts);

    /// <summary>
    /// When an event whose order is not held yet is read again, after each attempt: Stripe disputes come weeks after the
    /// order, but an early fraud warning can come within minutes, before a delayed orders/create or a first backfill.
    /// Five reads of the charge at most per event.
    /// </summary>
    public static readonly TimeSpan[] Rematch = [TimeSpan.FromMinutes(10), TimeSpan.FromHours(1), TimeSpan.FromHours(6), TimeSpan.FromDays(1), TimeSpan.FromDays(3)];

    /// <summary>How old a charge must be before one order with its email and amount is taken for its order.</summary>
    public static readonly TimeSpan YoungCharge = TimeSpan.FromMinutes(30);

    /// <summary>A match, or why there is none; <paramref name="OrderMayArrive"/> when the order it needs may simply not be here yet.</summary>
    public sealed record Match(long? OrderId, string How, bool OrderMayArrive = false);


    [AutomaticRetry(Attempts = 5)] // Stripe unreachable or 5xx: retried; a 4xx answer marks the event unmatched instead
    public async Task MatchAsync(long connectionId, string eventId, CancellationToken ct)
    {
        var e = await ReadPendingAsync(connectionId, eventId, ct);
        if (e is null) return;
        if (e.ChargeId is null) { await FinishAsync(connectionId, eventId, e, null, new Match(null, "the event names no charge"), ct); return; }
        var key = await connections.KeyAsync(connectionId, ct);
        if (key is null) return; // disconnected meanwhile: its events went with it

        Charge charge;
        try
        {
            var client = new StripeClient(new StripeClientOptions { ApiKey = key, ApiBase = options.Value.ApiBase.TrimEnd('/') });
            charge = await new ChargeService(client).GetAsync(e.ChargeId, cancellationToken: ct);
        }
        catch (StripeException x) when ((int)x.HttpStatusCode is >= 400 and < 500 and not 429)
        {
            // Why not retried: a revoked key, a key without read access to charges, or a charge of another account answer the same tomorrow.
            logger.LogWarning("Stripe answered {Status} for charge {Charge} of event {Event}", (int)x.HttpStatusCode, e.ChargeId, eventId);
            var why = x.HttpStatusCode is HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden
                ? "the connected key may not read charges" : $"Stripe answered {(int)x.HttpStatusCode} for the charge";
            await FinishAsync(connectionId, eventId, e, null, new Match(null, why), ct);
            return;
        }
        var match = await MatchOrderAsync(e.ShopId, charge, ct);
        await FinishAsync(connectionId, eventId, e, charge, match, ct);
    }

    /// <summary>
    /// Runs every event still pending a few minutes after it arrived (its job was lost with a process), and every unmatched
    /// one whose time to look again has come (set back to pending first, so a process dying here leaves it to the next sweep).
    /// </summary>
    [AutomaticRetry(Attempts = 0)]
    public async Task SweepAsync(CancellationToken ct)
    {
        await using (var again = db.CreateCommand("""
            UPDATE stripe_events SET state = 'pending', retry_at = NULL, received_at = LEAST(received_at, $1)
            WHERE (connection_id, id) IN (SELECT connection_id, id FROM stripe_events WHERE state = 'unmatched' AND retry_at <= $2 LIMIT 500)
            """))
        {
            // Why received_at moves back: the pending sweep below takes events that arrived over five minutes ago.
            again.Parameters.Add(Sql.Param(clock.GetUtcNow().AddMinutes(-6)));
            again.Parameters.Add(Sql.Param(clock.GetUtcNow()));
            await again.ExecuteNonQueryAsync(ct);
        }
        var pending = new List<(long, string)>();
        await using (var cmd = db.CreateCommand("SELECT connection_id, id FROM stripe_events WHERE state = 'pending' AND received_at < $1 ORDER BY received_at LIMIT 500"))
        {
            cmd.Parameters.Add(Sql.Param(clock.GetUtcNow().AddMinutes(-5)));
            await using var r = await cmd.ExecuteReaderAsync(ct);
            while (await r.ReadAsync(ct)) pending.Add((r.GetInt64(0), r.GetString(1)));
        }
        foreach (var (connection, id) in pending)
        {
            // Why each apart: one event Stripe cannot answer for (a 5xx, a timeout, a key that cannot be read) stays pending for
            // the next sweep and holds back no other, of its shop or another (until 6 Dec 2026 it ended the sweep).
            try { await MatchAsync(connection, id, ct); }
            catch (Exception e) when (!ct.IsCancellationRequested)
            {
                logger.LogWarning(e, "Stripe event {Event}: could not be matched now ({Message}); looked at again at the next sweep", id, e.Message);
                try { await NoteFailureAsync(connection, id, e.Message, ct); }
                catch (Exception f) when (!ct.IsCancellationRequested) { logger.LogWarning(f, "Stripe event {Event}: its failure could not be noted", id); }
            }
        }
    }

    /// <summary>Failed looks at an event (Stripe's errors, timeouts) before it is set aside as unmatched, saying why, and
    /// looked at again daily: six hours of sweeps.</summary>
    public const int MaxFailures = 36;

    /// <summary>
    /// Counts a failed look at a pending event; at <see cref="MaxFailures"/> it is set aside as unmatched with the last
    /// error, where the Data and privacy page lists it, and looked at again a day later. Until 6 Dec 2026 an event Stripe
    /// could never answer for stayed pending, tried at every sweep for good, and nothing showed it.
    /// </summary>
    private async Task NoteFailureAsync(long connectionId, string eventId, string error, CancellationToken ct)
    {
        await using var cmd = db.CreateCommand("""
            UPDATE stripe_events SET attempts = attempts + 1,
              state = CASE WHEN attempts + 1 >= $3 THEN 'unmatched' ELSE state END,
              retry_at = CASE WHEN attempts + 1 >= $3 THEN $4 ELSE retry_at END,
              outcome = CASE WHEN attempts + 1 >= $3 THEN 'Stripe could not be asked for the charge at ' || (attempts + 1) || ' looks (the last: ' || $5 || '); looked at again daily' ELSE outcome END
            WHERE connection_id = $1 AND id = $2 AND state = 'pending'
            """);
        cmd.Parameters.Add(Sql.Param(connectionId));
        cmd.Parameters.Add(Sql.Param(eventId));
        cmd.Parameters.Add(Sql.Param(MaxFailures));
        cmd.Parameters.Add(Sql.Param(clock.GetUtcNow().AddDays(1)));
        cmd.Parameters.Add(Sql.Param(error.Length > 300 ? error[..300] : error));
        await cmd.ExecuteNonQueryAsync(ct);
    }

    /// <summary>The store's order the charge is about, by the documented order of evidence, or why none can be named.</summary>
    public async Task<Match> MatchOrderAsync(long shopId, Charge charge, CancellationToken ct)
    {
        var metadata = new Dictionary<string, string>(charge.Metadata ?? new Dictionary<string, string>(), StringComparer.OrdinalIgnoreCase);
        foreach (var name in new[] { "shopify_order_id", "order_id" })
        {
            if (!metadata.TryGetValue(name, out var value) || string.IsNullOrWhiteSpace(value)) continue;
            var raw = value.Trim();
            var id = raw.StartsWith("gid://shopify/Order/", StringComparison.Ordinal) ? raw["gid://shopify/Order/".Length..] : raw;
            if (!long.TryParse(id, NumberStyles.None, CultureInfo.InvariantCulture, out var orderId))
                return new Match(null, $"the charge's metadata {name} is not an order id");
            var found = await OrdersAsync(shopId, "id = $2", ct, orderId);
            return found.Count == 1 ? new Match(orderId, $"charge metadata {name}")
                : new Match(null, $"the charge's metadata {name} names order {orderId}, which this store does not hold", OrderMayArrive: true);
        }
        foreach (var name in new[] { "shopify_order_name", "order_name" })
        {
            if (!metadata.TryGetValue(name, out var value) || string.IsNullOrWhiteSpace(value)) continue;
            var orderName = value.Trim().StartsWith('#') ? value.Trim() : "#" + value.Trim();
            var found = await OrdersAsync(shopId, "name = $2", ct, orderName);
            return found.Count == 1 ? new Match(found[0], $"charge metadata {name}")
                : found.Count == 0 ? new Match(null, $"the charge's metadata {name} names {orderName}, which this store does not hold", OrderMayArrive: true)
                : new Match(null, $"the charge's metadata {name} names {orderName}, which is more than one order");
        }

        var email = charge.BillingDetails?.Email is { Length: > 0 } billing ? billing : charge.ReceiptEmail;
        if (string.IsNullOrWhiteSpace(email) || string.IsNullOrEmpty(charge.Currency))
            return new Match(null, "the charge names no order in its metadata and carries no email");
        var at = new DateTimeOffset(DateTime.SpecifyKind(charge.Created, DateTimeKind.Utc));
        var candidates = await OrdersAsync(shopId, """
            lower(email) = lower($2) AND upper(currency) = upper($3) AND total_price = $4 AND NOT test
            AND created_at BETWEEN $5 - interval '1 day' AND $5 + interval '1 day'
            """, ct, email.Trim(), charge.Currency, Amount(charge.Amount, charge.Currency), at);
        return candidates.Count switch
        {
            // Why not at once for a young charge: the order it paid for may not be stored yet (its webhook on its way), and the
            // one held may be the shopper's identical earlier order; until 6 Dec 2026 that one was labelled fraud for good.
            1 when clock.GetUtcNow() - at < YoungCharge => new Match(null,
                $"one order has the charge's email and amount, but the charge is under {YoungCharge.TotalMinutes:0} minutes old: its own order may still arrive", OrderMayArrive: true),
            1 => new Match(candidates[0], "email and amount within a day of the charge"),
            0 => new Match(null, "no order has the charge's email and amount within a day of it", OrderMayArrive: true),
            _ => new Match(null, "several orders have the charge's email and amount within a day of it"),
        };
    }

    /// <summary>Up to two ids of the shop's orders meeting <paramref name="where"/> ($1 is the shop; the arguments are $2 on).</summary>
    private async Task<List<long>> OrdersAsync(long shopId, string where, CancellationToken ct, params object[] args)
    {
        await using var cmd = db.CreateCommand($"SELECT id FROM orders WHERE shop_id = $1 AND {where} ORDER BY id LIMIT 2");
        cmd.Parameters.Add(Sql.Param(shopId));
        foreach (var a in args) cmd.Parameters.Add(Sql.Param(a));
        var ids = new List<long>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct)) ids.Add(r.GetInt64(0));
        return ids;
    }

    /// <summary>Stripe's integer amount in the currency's unit (cents for most, whole yen, thousandths of a dinar).</summary>
    public static decimal Amount(long minor, string currency) =>
        ZeroDecimal.Contains(currency) ? minor : ThreeDecimal.Contains(currency) ? minor / 1000m : minor / 100m;

    private async Task<StoredEvent?> ReadPendingAsync(long connectionId, string eventId, CancellationToken ct)
    {
        await using var cmd = db.CreateCommand("""
            SELECT shop_id, type, created_at, charge_id, payload->>'reason', payload->>'fraud_type', payload->>'status', attempts
            FROM stripe_events WHERE connection_id = $1 AND id = $2 AND state = 'pending'
            """);
        cmd.Parameters.Add(Sql.Param(connectionId));
        cmd.Parameters.Add(Sql.Param(eventId));
        await using var r = await cmd.ExecuteReaderAsync(ct);
        if (!await r.ReadAsync(ct)) return null;
        return new StoredEvent(r.GetInt64(0), r.GetString(1), r.GetFieldValue<DateTimeOffset>(2), r.IsDBNull(3) ? null : r.GetString(3),
            r.IsDBNull(4) ? null : r.GetString(4), r.IsDBNull(5) ? null : r.GetString(5), r.IsDBNull(6) ? null : r.GetString(6), r.GetInt32(7));
    }

    /// <summary>Records the outcome and writes the label in one transaction, only while the event is still pending (a second run writes nothing).</summary>
    private async Task FinishAsync(long connectionId, string eventId, StoredEvent e, Charge? charge, Match match, CancellationToken ct)
    {
        var isWarning = e.Type == StripeWebhooks.EarlyFraudWarning;
        var closed = e.Type == StripeWebhooks.DisputeClosed;
        // An inquiry (Stripe's warning_* statuses) is the bank asking before any chargeback: fraud while open, like a dispute,
        // and not fraud once closed without becoming one (warning_closed). Until 5 Dec 2026 a closed inquiry wrote nothing, so
        // its order stayed fraud for good, and its label read "Stripe dispute", counted as a chargeback by the monitor.
        var inquiry = e.Status?.StartsWith("warning_", StringComparison.Ordinal) == true;
        // null: the event says nothing about who paid (another reason, or a dispute closed neither won nor lost).
        bool? fraud = isWarning ? true
            : !FraudReasons.Contains(e.Reason ?? "") ? null
            : !closed ? true
            : e.Status switch { "won" => false, "lost" => true, "warning_closed" => false, _ => null };
        var state = match.OrderId is null ? "unmatched" : fraud is not null ? "labelled" : "no_label";
        var what = isWarning ? $"Stripe early fraud warning ({e.FraudType ?? "no fraud type"})"
            : inquiry && closed ? $"Stripe inquiry closed without a chargeback, {e.Status} (reason {e.Reason ?? "not given"})"
            : inquiry ? $"Stripe inquiry (reason {e.Reason ?? "not given"})"
            : closed ? $"Stripe dispute closed, {e.Status ?? "status not given"} (reason {e.Reason ?? "not given"})"
            : $"Stripe dispute (reason {e.Reason ?? "not given"})";
        await using var conn = await db.OpenConnectionAsync(ct);
        await using var tx = await conn.BeginTransactionAsync(ct);
        // An event about an order whose customer was erased keeps neither the charge nor its own body (either may hold her
        // email, as the erasure of stripe_events says): a dispute can close months after her erasure, which ran once. Until
        // 5 Dec 2026 such a late event was stored whole; its label is kept, as the order's other labels are.
        await using (var update = new NpgsqlCommand("""
            UPDATE stripe_events s SET state = $3, order_id = $4, matched_by = $5, outcome = $6,
              charge = CASE WHEN x.erased THEN NULL ELSE $7::jsonb END,
              payload = CASE WHEN x.erased THEN jsonb_build_object('redacted_at', $9::timestamptz) ELSE s.payload END,
              attempts = s.attempts + 1, retry_at = $8
            FROM (SELECT EXISTS (SELECT 1 FROM stripe_events e JOIN orders o ON o.shop_id = e.shop_id AND o.id = $4
                                 WHERE e.connection_id = $1 AND e.id = $2 AND o.redacted_at IS NOT NULL) AS erased) x
            WHERE s.connection_id = $1 AND s.id = $2 AND s.state = 'pending'
            """, conn, tx))
        {
            update.Parameters.Add(Sql.Param(connectionId));
            update.Parameters.Add(Sql.Param(eventId));
            update.Parameters.Add(Sql.Param(state));
            update.Parameters.Add(Sql.Param(match.OrderId ?? (object)new TypedNull(NpgsqlTypes.NpgsqlDbType.Bigint)));
            update.Parameters.Add(Sql.Text(match.OrderId is null ? null : match.How));
            update.Parameters.Add(Sql.Text(match.OrderId is null ? match.How
                : state != "no_label" ? null
                : FraudReasons.Contains(e.Reason ?? "") ? $"closed as {e.Status}: no label" : $"reason {e.Reason} is not fraud: no label"));
            update.Parameters.Add(Sql.Text(charge is null ? null : JsonSerializer.Serialize(new
            {
                id = charge.Id, payment_intent = charge.PaymentIntentId, metadata = charge.Metadata, amount = charge.Amount, currency = charge.Currency,
                created = charge.Created,
            })));
            update.Parameters.Add(Sql.Param(TypedNull.Time(state == "unmatched" && match.OrderMayArrive && e.Attempts < Rematch.Length
                ? clock.GetUtcNow() + Rematch[e.Attempts] : null)));
            update.Parameters.Add(Sql.Param(clock.GetUtcNow()));
            if (await update.ExecuteNonQueryAsync(ct) == 0) return; // another run finished it
        }
        if (state == "labelled")
        {
            await using var label = new NpgsqlCommand("""
                INSERT INTO risk_labels (shop_id, order_id, source, fraud, labelled_at, detail) VALUES ($1, $2, 'stripe', $5, $3, $4)
                ON CONFLICT (shop_id, order_id, source) DO UPDATE SET fraud = excluded.fraud,
                  labelled_at = CASE WHEN excluded.fraud <> risk_labels.fraud THEN excluded.labelled_at ELSE risk_labels.labelled_at END,
                  detail = excluded.detail
                WHERE excluded.labelled_at >= risk_labels.labelled_at
                  -- An inquiry closed without a chargeback undoes only what an inquiry said: an early fraud warning's label is
                  -- the card issuer's report of fraud, which no inquiry's closing (as after the merchant refunded) takes back
                  -- (until 7 Dec 2026 it wrote "not fraud" over it, and the order's hold was released).
                  AND NOT (excluded.detail LIKE 'Stripe inquiry closed%' AND risk_labels.detail NOT LIKE 'Stripe inquiry%')
                  AND (excluded.fraud <> risk_labels.fraud
                  -- The dispute that follows an early fraud warning says the same, but it is a chargeback now (ModelMonitor's
                  -- chargeback rate counts it by its detail; until 5 Dec 2026 the warning's stayed). The label keeps its time.
                  OR risk_labels.detail LIKE 'Stripe early fraud warning%' AND excluded.detail LIKE 'Stripe dispute%'
                  -- Likewise an inquiry the bank escalated to a chargeback on the same dispute (until 7 Dec 2026 its label kept
                  -- the inquiry's words, and the lost chargeback was never counted).
                  OR risk_labels.detail LIKE 'Stripe inquiry%' AND excluded.detail LIKE 'Stripe dispute%'
                  -- And an early fraud warning that comes after an inquiry: the inquiry's closing then leaves it fraud.
                  OR risk_labels.detail LIKE 'Stripe inquiry%' AND excluded.detail LIKE 'Stripe early fraud warning%')
                """, conn, tx);
            label.Parameters.Add(Sql.Param(e.ShopId));
            label.Parameters.Add(Sql.Param(match.OrderId!.Value));
            label.Parameters.Add(Sql.Param(e.CreatedAt));
            label.Parameters.Add(Sql.Param($"{what} on {e.ChargeId}, matched by {match.How}"));
            label.Parameters.Add(Sql.Param(fraud!.Value));
            await label.ExecuteNonQueryAsync(ct);
            await using var rescore = new NpgsqlCommand(Risk.RiskQueue.LabelChangedSql, conn, tx);
            rescore.Parameters.Add(Sql.Param(e.ShopId));
            rescore.Parameters.Add(Sql.Param(match.OrderId!.Value));
            rescore.Parameters.Add(Sql.Param(clock.GetUtcNow()));
            await rescore.ExecuteNonQueryAsync(ct);
        }
        await tx.CommitAsync(ct);
    }
}
