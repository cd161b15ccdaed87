using System.Text.Json;
using Npgsql;
using PluginApp.Data;
using PluginApp.Outbox;
using PluginApp.StoreData;

namespace PluginApp.Risk.Review;

/// <summary>A reason behind a score, as the scorer wrote it: words for the merchant and its signed share of the log-odds.</summary>
public sealed record ReviewReason(string Text, double Weight);

/// <summary>Who has an order open, and until when.</summary>
public sealed record ReviewLock(string Holder, DateTimeOffset ExpiresAt);

/// <summary>What became of holding a HIGH order's fulfillment (see RiskHolds for the states).</summary>
/// <param name="EarlierOrders">The customer's orders before this one when it was scored HIGH.</param>
/// <param name="EarlierSpend">Their total, in the order's currency.</param>
/// <param name="ReleaseReason">Why a hold is going or gone (<see cref="RiskHolds.Approved"/>, <see cref="RiskHolds.LowScore"/>).</param>
/// <param name="Calls">How the latest hold's or release's calls to Shopify stand: "failed" (with Shopify's or the outbox's
/// error) when one failed for good, "waiting" while one is not through yet, null when all went through (or none was made).</param>
public sealed record HoldView(string State, int EarlierOrders, decimal EarlierSpend, string? ReleaseReason, CallStatus? Calls = null);

/// <summary>One order waiting for a decision, as the queue lists it.</summary>
/// <param name="KnownFraud">Its latest fraud label from outside the queue (a chargeback, a Stripe warning), in words, or null.</param>
public sealed record QueueRow(long OrderId, string Name, DateTimeOffset? PlacedAt, decimal Total, string Currency, string Level, double Score,
    IReadOnlyList<ReviewReason> Reasons, ReviewLock? Lock, HoldView? Hold, string? KnownFraud = null)
{
    /// <summary>
    /// A fraud label from outside the queue first (it is why a LOW order is listed), then the reasons that raised the
    /// score, largest first (the scorer stores them in that order).
    /// </summary>
    public IEnumerable<string> TopReasons => (KnownFraud is { } known ? [RiskScorer.KnownFraudFact(known)] : Array.Empty<string>())
        .Concat(Reasons.Where(r => r.Weight > 0).Select(r => r.Text)).Take(3);
}

/// <summary>The queue's first rows and how many orders wait in all.</summary>
public sealed record ReviewQueue(IReadOnlyList<QueueRow> Rows, int Total);

/// <param name="Priority">Score × total: the queue's sort key.</param>
/// <param name="Awaiting">Flagged (MEDIUM or HIGH), or labelled fraud from outside the queue before it shipped, and neither
/// approved nor marked as fraud yet: in the queue.</param>
/// <param name="KnownFraud">Its latest fraud label from outside the queue (a chargeback, a Stripe warning), in words, or null.</param>
/// <param name="InStore">Rung up at the counter (Shopify POS): never in the queue, though scored before 5 Dec 2026.</param>
public sealed record ReviewOrder(long Id, string Name, DateTimeOffset? PlacedAt, decimal Total, string Currency, string? Email, string? BrowserIp,
    string? BillingCountry, string? ShippingCountry, long? CustomerId, string Level, double Score, DateTimeOffset ScoredAt,
    IReadOnlyList<ReviewReason> Reasons, double Priority, bool Awaiting, bool Cancelled = false, bool InStore = false, int? ModelVersion = null,
    double PriorWeight = 1, string? KnownFraud = null, bool ToldFraud = false);

/// <summary>
/// The customer's orders before this one: by customer id, or for a guest by email, those that stood by this order's time
/// (as the risk features count them), and <paramref name="NotCounted"/> others (tests, or cancelled or known as fraud by then).
/// </summary>
public sealed record CustomerHistory(int EarlierOrders, decimal EarlierSpend, DateTimeOffset? FirstOrderAt, int NotCounted = 0);

/// <param name="Fraud">The order's fraud label from any source (true if any says fraud), or null when it has none.</param>
public sealed record RelatedOrder(long Id, string Name, DateTimeOffset? PlacedAt, decimal Total, string Currency, string? Level,
    bool SameEmail, bool SameAddress, bool? Fraud, bool SameCard = false);

/// <summary>A reviewer's choice to cancel an order marked as fraud in Shopify.</summary>
/// <param name="Refund">Refund to the original payment method (otherwise no refund).</param>
/// <param name="Restock">Put the items back in stock.</param>
/// <param name="NotifyCustomer">Email the customer about the cancellation (off unless chosen).</param>
public sealed record CancelChoice(bool Refund, bool Restock, bool NotifyCustomer);

/// <summary>Where a call to Shopify stands: waiting (with the last error, if an attempt failed), sent, or failed for good with Shopify's message.</summary>
/// <param name="At">When it went through (sent), if known.</param>
public sealed record CallStatus(string State, string? Error, DateTimeOffset? At = null);

/// <param name="Cancel">What the reviewer chose when the decision also cancelled the order in Shopify.</param>
/// <param name="Shopify">The cancellation call's status (null without one, or once the outbox has forgotten it).</param>
public sealed record ReviewDecision(string Decision, string? Note, string? By, DateTimeOffset At, CancelChoice? Cancel = null, CallStatus? Shopify = null);

/// <param name="Previous">The order before this one in the queue's order (whether or not this one is still in it).</param>
public sealed record ReviewDetail(ReviewOrder Order, ReviewLock? Lock, CustomerHistory Customer, IReadOnlyList<RelatedOrder> Related,
    IReadOnlyList<ReviewDecision> History, long? Previous, long? Next, HoldView? Hold);

/// <summary>What became of an attempt to take an order's lock.</summary>
/// <param name="Mine">Whether the caller holds <see cref="Lock"/> now; if not, someone else does (or see <paramref name="DecidedSince"/>).</param>
/// <param name="DecidedSince">A decision was refused because another approve or fraud decision was recorded since the
/// reviewer's page showed the order: the latest one.</param>
/// <param name="CancelAsked">A cancellation already asked of Shopify (waiting or sent) with other options than this decision's:
/// nothing was recorded, as an order is cancelled once.</param>
/// <param name="ScoredAs">The order's level now, when the reviewer's page showed another: it was scored again since.</param>
/// <param name="LabelsChanged">The order's fraud label from outside the queue is not the one the reviewer's page showed
/// (<paramref name="KnownNow"/> is the one now, or null when it is gone): nothing was recorded.</param>
public sealed record LockOutcome(bool Mine, ReviewLock Lock, ReviewDecision? DecidedSince = null, AskedCancel? CancelAsked = null,
    string? ScoredAs = null, bool LabelsChanged = false, string? KnownNow = null);

/// <summary>The cancellation already asked of Shopify for an order: by whom, when, with which options, and whether it was sent.</summary>
public sealed record AskedCancel(string Key, CancelChoice Choice, string? By, DateTimeOffset At, bool Sent);

/// <summary>
/// The review queue's data: flagged orders in score × value order, one reviewer per order at a time (a lock that expires),
/// decisions with who and when, and the context a reviewer needs (the customer's history, orders sharing an email or a
/// browser address). Every statement names its shop; an order of another shop is simply not found.
/// </summary>
public sealed class ReviewStore(NpgsqlDataSource db, TimeProvider clock, OutboxScheduler outbox, RiskHoldScheduler holdJobs)
{
    public static readonly TimeSpan LockFor = TimeSpan.FromMinutes(10);
    public const int NoteMaxLength = 2000;
    public static readonly string[] Decisions = ["approve", "fraud", "note"];

    /// <summary>
    /// Whether the score <c>s</c> of the order <c>o</c> awaits a reviewer: flagged, neither approved nor marked as fraud, not
    /// cancelled, and placed online (RiskQueue.Online): what the queue lists, an order's page says, and a decision locks.
    /// Or labelled fraud from outside the queue (a chargeback, a Stripe early fraud warning: <c>told_fraud</c> with no
    /// verdict) while its goods may still be stopped, at whatever level it was scored (RiskScorer, <c>fraudNews</c>).
    /// </summary>
    /// <remarks>Why the first condition on the score alone: it is the index's (migration 0082).</remarks>
    private static readonly string AwaitingSql = $"""
        (s.level IN ('MEDIUM', 'HIGH') OR s.told_fraud) AND s.reviewed_at IS NULL AND o.cancelled_at IS NULL AND o.{RiskQueue.Online}
          AND (s.level IN ('MEDIUM', 'HIGH') OR {RiskQueue.StillToShip("o")})
        """;

    /// <summary>
    /// The queue's order, of the score <c>s</c> and its order <c>o</c>: score × total, and an order known as fraud from
    /// outside the queue (told_fraud with no verdict) whose goods may still be stopped before every other, whatever it
    /// scored: its goods are held, and a LOW
    /// one's score × total put it last, past the list's first page behind a hundred flagged orders.
    /// </summary>
    private static readonly string PrioritySql = $"(CASE WHEN s.told_fraud AND {RiskQueue.StillToShip("o")} THEN 1e15 ELSE 0 END + s.score * coalesce(o.total_price, 0)::float8)";

    /// <summary>
    /// The latest fraud label of the score <c>s</c>'s order from outside the queue (a chargeback, a Stripe early fraud
    /// warning, a cancellation for fraud), in words, or null: the queue and the order's page say it first, since it is
    /// why a LOW order is there.
    /// </summary>
    private const string KnownFraudSql = """
        (SELECT coalesce(l.detail, l.source) FROM risk_labels l WHERE l.shop_id = s.shop_id AND l.order_id = s.order_id AND l.fraud AND l.source <> 'review'
         ORDER BY l.labelled_at DESC LIMIT 1)
        """;

    // Why one definition: the list, its count and next / previous must agree on what is in the queue and in which order.
    // Why reviewed_at and not the decisions: asking each flagged order for a decision read every order ever flagged
    // (migration 0048); DecideAsync writes both, and an order's page says whether it is in the queue by the same column.
    // Why each order looked up by its key, with what the list shows of it (OFFSET 0 keeps the lookup a lookup): joined, the
    // queue of a store with few orders was planned as a scan of all of them. Why not a cancelled order: there is nothing left
    // to decide on it (until 4 Dec 2026 one cancelled in Shopify, even for fraud, stayed in the queue as awaiting review). Nor
    // one rung up at the counter, scored before such orders no longer were (RiskQueue.Online).
    private static readonly string Queue = $"""
        queue AS (
            SELECT s.order_id, {PrioritySql} AS priority, s.level, s.score, s.reasons,
                   o.name, o.created_at, o.total_price, o.currency, {KnownFraudSql} AS known_fraud
            FROM risk_scores s
            CROSS JOIN LATERAL (SELECT o.name, o.created_at, o.total_price, o.currency, o.cancelled_at, o.fulfillment_status, o.financial_status, o.source_name FROM orders o
                                WHERE o.shop_id = s.shop_id AND o.id = s.order_id OFFSET 0) o
            WHERE s.shop_id = $1 AND {AwaitingSql})
        """;

    /// <summary>$1 shop, $2 now, $3 the page's size: the queue's first orders with their scores, locks and holds, and its length.</summary>
    internal static readonly string QueueSql = $"""
        WITH {Queue}
        SELECT q.order_id, coalesce(q.name, '#' || q.order_id), q.created_at, coalesce(q.total_price, 0), coalesce(q.currency, ''), q.level, q.score,
               q.reasons::text, l.holder, l.expires_at, count(*) OVER (), h.state, h.earlier_orders, h.earlier_spend, h.release_reason,
               {HoldCallColumns}, q.known_fraud
        FROM queue q
        LEFT JOIN review_locks l ON l.shop_id = $1 AND l.order_id = q.order_id AND l.expires_at > $2
        LEFT JOIN risk_holds h ON h.shop_id = $1 AND h.order_id = q.order_id
        ORDER BY q.priority DESC, q.order_id
        LIMIT $3
        """;

    public async Task<ReviewQueue> QueueAsync(long shopId, int limit, CancellationToken ct)
    {
        await using var cmd = db.CreateCommand(QueueSql);
        cmd.Parameters.Add(Sql.Param(shopId));
        cmd.Parameters.Add(Sql.Param(clock.GetUtcNow()));
        cmd.Parameters.Add(Sql.Param(limit));
        var rows = new List<QueueRow>();
        var total = 0;
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
        {
            rows.Add(new QueueRow(r.GetInt64(0), r.GetString(1), Time(r, 2), r.GetDecimal(3), r.GetString(4), r.GetString(5), r.GetDouble(6),
                Reasons(r.GetString(7)), r.IsDBNull(8) ? null : new ReviewLock(r.GetString(8), r.GetFieldValue<DateTimeOffset>(9)), Hold(r, 11),
                r.IsDBNull(17) ? null : r.GetString(17)));
            total = (int)r.GetInt64(10);
        }
        return new ReviewQueue(rows, total);
    }

    /// <summary>A scored order of the shop with everything the review page shows, or null (not scored, or not this shop's).</summary>
    public async Task<ReviewDetail?> DetailAsync(long shopId, long orderId, CancellationToken ct)
    {
        await using var conn = await db.OpenConnectionAsync(ct);
        var order = await OrderAsync(conn, shopId, orderId, ct);
        if (order is null) return null;
        await using var batch = new NpgsqlBatch(conn)
        {
            BatchCommands =
            {
                // Counted as the risk features count them (OrderFeatures' "who"): the earlier orders that stood by this order's
                // time, not tests, nor cancelled or known as fraud by then; the others apart. Until 6 Dec 2026 the page counted
                // every earlier order, so "Earlier orders: 2" stood beside a reason saying no earlier order was found.
                Command($$"""
                    SELECT count(*) FILTER (WHERE p.stood)::int, coalesce(sum(p.total_price) FILTER (WHERE p.stood), 0),
                           min(p.placed) FILTER (WHERE p.stood), count(*) FILTER (WHERE NOT p.stood)::int
                    FROM (SELECT p.total_price, {{StoreData.OrderTime.Placed("p")}} AS placed,
                                 NOT p.test AND (p.cancelled_at IS NULL OR p.cancelled_at > $3) AND (p.fraud_known_at IS NULL OR p.fraud_known_at > $3) AS stood
                          FROM orders p
                          WHERE p.shop_id = $1 AND p.id <> $2 AND p.created_at < $3
                            AND (($4::bigint IS NOT NULL AND p.customer_id = $4::bigint)
                              OR ($4::bigint IS NULL AND $5::text IS NOT NULL AND lower(p.email) = lower($5::text)))) p
                    """, shopId, orderId, TypedNull.Time(order.PlacedAt), Nullable(order.CustomerId), Sql.Text(order.Email)),
                // A card is its issuer number and last four digits, as the risk features count it. Listed by when each was placed,
                // as the features count them (an imported order, created on the import's day, is as old as it was placed).
                Command($$"""
                    WITH card AS (SELECT card_bin, card_last4 FROM orders WHERE shop_id = $1 AND id = $2)
                    SELECT p.id, coalesce(p.name, '#' || p.id), {{StoreData.OrderTime.Placed("p")}}, coalesce(p.total_price, 0), coalesce(p.currency, ''), s.level,
                           coalesce($3::text IS NOT NULL AND lower(p.email) = lower($3::text), false),
                           coalesce($4::text IS NOT NULL AND p.browser_ip = $4::text, false),
                           (SELECT bool_or(l.fraud) FROM risk_labels l WHERE l.shop_id = p.shop_id AND l.order_id = p.id),
                           coalesce(p.card_bin = c.card_bin AND p.card_last4 = c.card_last4, false)
                    FROM orders p CROSS JOIN card c LEFT JOIN risk_scores s ON s.shop_id = p.shop_id AND s.order_id = p.id
                    WHERE p.shop_id = $1 AND p.id <> $2
                      AND (lower(p.email) = lower($3::text) OR p.browser_ip = $4::text OR (p.card_bin = c.card_bin AND p.card_last4 = c.card_last4))
                    ORDER BY {{StoreData.OrderTime.Placed("p")}} DESC NULLS LAST, p.id DESC
                    LIMIT 20
                    """, shopId, orderId, Sql.Text(order.Email), Sql.Text(order.BrowserIp)),
                Command("""
                    SELECT d.decision, d.note, d.decided_by, d.decided_at, d.cancel_refund, d.cancel_restock, d.cancel_notify,
                           m.completed_at IS NOT NULL, m.failed_at IS NOT NULL, m.last_error, m.id IS NOT NULL, m.completed_at
                    FROM review_decisions d
                    LEFT JOIN outbox_messages m ON m.shop_id = d.shop_id AND m.idempotency_key = d.cancel_key
                    WHERE d.shop_id = $1 AND d.order_id = $2 ORDER BY d.decided_at DESC, d.id DESC
                    """, shopId, orderId),
                Command($"SELECT h.state, h.earlier_orders, h.earlier_spend, h.release_reason, {HoldCallColumns} FROM risk_holds h WHERE h.shop_id = $1 AND h.order_id = $2", shopId, orderId),
                Command("SELECT holder, expires_at FROM review_locks WHERE shop_id = $1 AND order_id = $2 AND expires_at > $3", shopId, orderId, clock.GetUtcNow()),
                // Queue order is priority descending, then id: (priority, -id) descending. Next is the largest pair below this
                // order's, previous the smallest above it, so both work for an order that has just left the queue.
                Command($"""
                    WITH {Queue}
                    SELECT (SELECT order_id FROM queue WHERE (priority, -order_id) > ($2, -$3::bigint) ORDER BY priority, order_id DESC LIMIT 1),
                           (SELECT order_id FROM queue WHERE (priority, -order_id) < ($2, -$3::bigint) ORDER BY priority DESC, order_id LIMIT 1)
                    """, shopId, order.Priority, orderId),
            },
        };
        await using var r = await batch.ExecuteReaderAsync(ct);
        await r.ReadAsync(ct);
        var customer = new CustomerHistory(r.GetInt32(0), r.GetDecimal(1), Time(r, 2), r.GetInt32(3));
        await r.NextResultAsync(ct);
        var related = new List<RelatedOrder>();
        while (await r.ReadAsync(ct))
            related.Add(new RelatedOrder(r.GetInt64(0), r.GetString(1), Time(r, 2), r.GetDecimal(3), r.GetString(4), r.IsDBNull(5) ? null : r.GetString(5),
                r.GetBoolean(6), r.GetBoolean(7), r.IsDBNull(8) ? null : r.GetBoolean(8), r.GetBoolean(9)));
        await r.NextResultAsync(ct);
        var history = new List<ReviewDecision>();
        while (await r.ReadAsync(ct))
            history.Add(new ReviewDecision(r.GetString(0), r.IsDBNull(1) ? null : r.GetString(1), r.IsDBNull(2) ? null : r.GetString(2),
                r.GetFieldValue<DateTimeOffset>(3),
                r.IsDBNull(4) ? null : new CancelChoice(r.GetString(4) == "original", r.GetBoolean(5), r.GetBoolean(6)),
                r.IsDBNull(4) || !r.GetBoolean(10) ? null
                    : r.GetBoolean(7) ? new CallStatus("sent", null, r.GetFieldValue<DateTimeOffset>(11))
                    : r.GetBoolean(8) ? new CallStatus("failed", r.IsDBNull(9) ? null : r.GetString(9))
                    : new CallStatus("waiting", r.IsDBNull(9) ? null : r.GetString(9))));
        await r.NextResultAsync(ct);
        var hold = await r.ReadAsync(ct) ? Hold(r, 0) : null;
        await r.NextResultAsync(ct);
        var held = await r.ReadAsync(ct) ? new ReviewLock(r.GetString(0), r.GetFieldValue<DateTimeOffset>(1)) : null;
        await r.NextResultAsync(ct);
        await r.ReadAsync(ct);
        long? previous = r.IsDBNull(0) ? null : r.GetInt64(0), next = r.IsDBNull(1) ? null : r.GetInt64(1);
        return new ReviewDetail(order, held, customer, related, history, previous, next, hold);
    }

    /// <summary>
    /// Takes the order's lock for <paramref name="holder"/> for <see cref="LockFor"/> (again, if they hold it already), unless
    /// someone else holds a live one. A reviewer holds one order at a time: taking one hands back any other they held.
    /// </summary>
    /// <returns>Null when the shop has no such scored order.</returns>
    public async Task<LockOutcome?> TakeLockAsync(long shopId, long orderId, string holder, CancellationToken ct)
    {
        await using var conn = await db.OpenConnectionAsync(ct);
        await using var tx = await conn.BeginTransactionAsync(ct);
        if (await ScoredAsync(conn, tx, shopId, orderId, ct) is null) return null;
        var outcome = await TakeLockAsync(conn, tx, shopId, orderId, holder, clock.GetUtcNow(), ct);
        await tx.CommitAsync(ct);
        return outcome;
    }

    /// <summary>Hands back what <paramref name="holder"/> holds: one order, or with <paramref name="orderId"/> null all of theirs.</summary>
    public async Task ReleaseAsync(long shopId, string holder, long? orderId, CancellationToken ct)
    {
        await using var cmd = db.CreateCommand("DELETE FROM review_locks WHERE shop_id = $1 AND holder = $2 AND ($3::bigint IS NULL OR order_id = $3::bigint)");
        cmd.Parameters.Add(Sql.Param(shopId));
        cmd.Parameters.Add(Sql.Param(holder));
        cmd.Parameters.Add(Nullable(orderId));
        await cmd.ExecuteNonQueryAsync(ct);
    }

    /// <summary>The outbox idempotency key of an order's cancellation: one per order, however many decisions ask for it.</summary>
    public const string CancelKeyPrefix = "order-cancel:";

    /// <summary>
    /// Records a decision by <paramref name="by"/>, who must hold the order's lock or be able to take it: approve and fraud
    /// write the order's review label (fraud or not, known from now) and hand the lock back; a note is only recorded. In the
    /// same transaction, a fraud decision with <paramref name="cancel"/> queues the order's cancellation in Shopify (reason
    /// FRAUD, a staff note naming the reviewer), an approval releases a fulfillment hold we placed (a fraud verdict keeps or
    /// places it again, <see cref="RiskHolds.HoldOnFraudSql"/>), and the order's tag says
    /// the decision (<see cref="DecisionTagCalls"/>), and its risk assessment in Shopify says a fraud verdict (or an approval
    /// that undoes one, <see cref="VerdictAssessmentAsync"/>). Nothing else is sent to Shopify, and nothing is cancelled unless
    /// the reviewer chose it.
    /// </summary>
    /// <param name="verdictsSeen">How many approve and fraud decisions the reviewer's page showed. Why: the lock is handed
    /// back with each decision, so a page left open (its own lock long expired) could take it again and overwrite a colleague's
    /// decision it never showed; with a count that no longer matches, nothing is recorded. Null: no check (an API caller).</param>
    /// <param name="levelSeen">The order's level the reviewer's page showed. Why: an approval stands up to the level it is
    /// recorded at and releases our hold; an order scored HIGH (and held) after the page opened at MEDIUM was approved at HIGH,
    /// released, and never came back to the queue, by a reviewer who had not seen why (until 5 Dec 2026). When the level
    /// differs, no approval or fraud verdict is recorded. Null: no check (an API caller).</param>
    /// <returns>Null when the shop has no such scored order; otherwise the lock outcome (not <c>Mine</c>: nothing was recorded).</returns>
    /// <param name="knownSeen">The fraud label from outside the queue the reviewer's page showed ("" for none). Why: an approval
    /// tells Shopify the labels it finds, as the reviewer's informed decision, and releases the hold; a Stripe warning come in
    /// after the page opened would be settled unseen. When it differs, no approval or fraud verdict is recorded. Null: no
    /// check (an API caller).</param>
    public async Task<LockOutcome?> DecideAsync(long shopId, long orderId, string decision, string? note, string by, CancellationToken ct,
        CancelChoice? cancel = null, int? verdictsSeen = null, string? levelSeen = null, string? knownSeen = null)
    {
        if (!Decisions.Contains(decision)) throw new ArgumentException($"decision must be one of {string.Join(", ", Decisions)}", nameof(decision));
        if (cancel is not null && decision != "fraud") throw new ArgumentException("only a fraud decision cancels the order", nameof(cancel));
        var now = clock.GetUtcNow();
        await using var conn = await db.OpenConnectionAsync(ct);
        await using var tx = await conn.BeginTransactionAsync(ct);
        // The score row locked until the decision commits: a scoring batch of the order waits, and reads the decision (RiskScorer).
        if (await ScoredAsync(conn, tx, shopId, orderId, ct, lockScore: true) is not { } scored) return null;
        var level = scored.Level;
        // Why no lock on an order out of the queue (decided, cancelled, LOW, rung up in the store): its page takes none, and
        // taking one hands back the reviewer's other lock. Until 6 Dec 2026 a note on a related order, or its label, handed
        // back the order the reviewer held, which another could then take, and a note left the related order "taken" for 10
        // minutes. Another reviewer's live lock on it is still respected.
        var outcome = scored.Awaiting ? await TakeLockAsync(conn, tx, shopId, orderId, by, now, ct) : await OthersLockAsync(conn, tx, shopId, orderId, by, now, ct);
        if (!outcome.Mine) return outcome;
        if (levelSeen is not null && decision != "note" && !string.Equals(levelSeen, level, StringComparison.OrdinalIgnoreCase))
            return outcome with { Mine = false, ScoredAs = level };
        if (knownSeen is not null && decision != "note" && !string.Equals((scored.KnownFraud ?? "").Trim(), knownSeen.Trim(), StringComparison.Ordinal))
            return outcome with { Mine = false, LabelsChanged = true, KnownNow = scored.KnownFraud };
        // A note overwrites nothing, so a stale page may add one.
        if (verdictsSeen is { } seen && decision != "note" && await VerdictsAsync(conn, tx, shopId, orderId, ct) is var (count, latest) && count != seen)
            return outcome with { Mine = false, DecidedSince = latest };
        string? cancelKey = null;
        var cancelNew = false;
        if (cancel is not null)
        {
            if (await AskedCancelAsync(conn, tx, shopId, orderId, ct) is { } asked)
            {
                // The same options ride on the call already asked; other ones cannot be carried out, so nothing is recorded.
                if (asked.Choice != cancel) return outcome with { Mine = false, CancelAsked = asked };
                cancelKey = asked.Key;
            }
            else (cancelKey, cancelNew) = (CancelKeyPrefix + orderId.ToString(System.Globalization.CultureInfo.InvariantCulture) + ":"
                                             + now.UtcTicks.ToString(System.Globalization.CultureInfo.InvariantCulture), true);
        }
        await using var batch = new NpgsqlBatch(conn, tx);
        batch.BatchCommands.Add(Command("""
            INSERT INTO review_decisions (shop_id, order_id, decision, note, decided_by, decided_at, cancel_refund, cancel_restock, cancel_notify, cancel_key)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
            """, shopId, orderId, decision, Sql.Text(note), by, now, Sql.Text(cancel is null ? null : cancel.Refund ? "original" : "none"),
            cancel is null ? new TypedNull(NpgsqlTypes.NpgsqlDbType.Boolean) : cancel.Restock,
            cancel is null ? new TypedNull(NpgsqlTypes.NpgsqlDbType.Boolean) : cancel.NotifyCustomer, Sql.Text(cancelKey)));
        if (cancel is not null && cancelNew) OutboxWriter.Enqueue(new StoreWriter(batch, shopId), CancelCall(orderId, cancel, by, cancelKey!), now);
        if (decision != "note") OutboxWriter.EnqueueMany(new StoreWriter(batch, shopId), DecisionTagCalls(orderId, decision, now).ToList(), now);
        var assessment = decision == "note" ? null : await VerdictAssessmentAsync(conn, tx, shopId, orderId, decision, by, scored, now, ct);
        if (assessment is not null) OutboxWriter.Enqueue(new StoreWriter(batch, shopId), assessment, now);
        var told = assessment is not null;
        if (decision == "approve") batch.BatchCommands.Add(Command(RiskHolds.ReleaseApprovedSql, shopId, orderId, now));
        if (decision == "fraud")
        {
            batch.BatchCommands.Add(Command(RiskHolds.HoldOnFraudSql, shopId, orderId, now));
            // An order never held (MEDIUM, or HIGH before the merchant held HIGH orders) is held now, as a chargeback's is:
            // Shopify is told HIGH, and its goods must not ship. Until 7 Dec 2026 only a hold decided before was placed again.
            if (await StillToShipAsync(conn, tx, shopId, orderId, ct))
                RiskScorer.HoldFraudNeverHeld(new StoreWriter(batch, shopId),
                    await RiskHoldSettings.ReadAsync(db, shopId, await ShopCurrency.ReadAsync(db, shopId, ct), ct), orderId, now);
        }
        if (decision != "note")
        {
            var fraud = decision == "fraud";
            // Why an upsert: a later review replaces the earlier one's label (the history keeps both decisions). Its time stays
            // while the verdict does: an order marked fraud again was known as fraud from the first time, and the features of
            // orders scored in between counted it (until 5 Dec 2026 training rebuilt them from the second time).
            batch.BatchCommands.Add(Command("""
                INSERT INTO risk_labels (shop_id, order_id, source, fraud, labelled_at, detail) VALUES ($1, $2, 'review', $3, $4, $5)
                ON CONFLICT (shop_id, order_id, source) DO UPDATE SET fraud = excluded.fraud, detail = excluded.detail,
                  labelled_at = CASE WHEN excluded.fraud <> risk_labels.fraud THEN excluded.labelled_at ELSE risk_labels.labelled_at END
                """, shopId, orderId, fraud, now, (fraud ? "marked as fraud by " : "approved by ") + by));
            batch.BatchCommands.Add(Command("DELETE FROM review_locks WHERE shop_id = $1 AND order_id = $2", shopId, orderId));
            // Why HIGH for fraud: a higher score only bears the verdict out, so no later score brings the order back to the queue
            // (an approval stands only up to the level it was given at; until 4 Dec 2026 fraud did too, and a fraud order edited
            // from MEDIUM to HIGH came back and lost its fraud tag). The latest verdict sets it: approved at MEDIUM, then marked
            // as fraud, the order stays decided at HIGH; marked as fraud, then approved, the approval's level stands.
            batch.BatchCommands.Add(Command("""
                UPDATE risk_scores SET reviewed_at = coalesce(reviewed_at, $3), reviewed_level = CASE WHEN $4 THEN 'HIGH' ELSE level END,
                  -- What the verdict's assessment told Shopify (RiskQueue.LabelChangedSql compares the labels with it).
                  told_fraud = CASE WHEN $5 THEN EXISTS (SELECT 1 FROM risk_labels l WHERE l.shop_id = $1 AND l.order_id = $2 AND l.fraud) ELSE told_fraud END
                WHERE shop_id = $1 AND order_id = $2
                """, shopId, orderId, now, fraud, told));
        }
        await batch.ExecuteNonQueryAsync(ct);
        await tx.CommitAsync(ct);
        if (decision != "note") outbox.Kick(shopId);
        if (decision is "approve" or "fraud") holdJobs.Kick(shopId);
        return outcome;
    }

    /// <summary>The order tags that say a reviewer's decision next to our level tag; an order tagged with neither awaits one.</summary>
    public static readonly string[] DecisionTags = [RiskScorer.TagPrefix + "approved", RiskScorer.TagPrefix + "fraud"];

    /// <summary>
    /// Why a tag for the decision: the level tag says what the model scored, and staff working from Shopify's order list
    /// (fulfilling, or filtering by tag) saw an approved order still tagged HIGH with nothing saying it was cleared. The
    /// other decision's tag goes, since a later decision replaces an earlier one; keyed by the decision's time.
    /// </summary>
    public static IEnumerable<OutboxCall> DecisionTagCalls(long orderId, string decision, DateTimeOffset at)
    {
        var gid = Gid.Of("Order", orderId);
        var ticks = at.UtcTicks.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var (tag, other) = decision == "fraud" ? (DecisionTags[1], DecisionTags[0]) : (DecisionTags[0], DecisionTags[1]);
        yield return new OutboxCall(OutboxOperation.TagsRemove, gid, new { id = gid, tags = new[] { other } }, $"risk-review-untag:{orderId}:{decision}:{ticks}");
        yield return new OutboxCall(OutboxOperation.TagsAdd, gid, new { id = gid, tags = new[] { tag } }, $"risk-review-tag:{orderId}:{decision}:{ticks}");
    }

    /// <summary>
    /// The order's cancellation already asked of Shopify and not refused (waiting, or sent), from the decisions that asked it;
    /// null when there is none, and a fraud-and-cancel decision then asks a call of its own, keyed by its time. Why: the
    /// order had one key, so until 5 Dec 2026 a reviewer who cancelled again after Shopify refused sent nothing, and the
    /// history showed the refused call beside the new decision. Why found through the decisions, not by the keys' prefix:
    /// a prefix search reads all of the shop's calls. A call the outbox dropped after its retention is not found, and a
    /// new decision asks again (Shopify refuses to cancel a cancelled order; the history shows it).
    /// </summary>
    private static async Task<AskedCancel?> AskedCancelAsync(NpgsqlConnection conn, NpgsqlTransaction tx, long shopId, long orderId, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand("""
            SELECT d.cancel_key, d.cancel_refund, d.cancel_restock, d.cancel_notify, d.decided_by, d.decided_at, m.completed_at IS NOT NULL
            FROM review_decisions d JOIN outbox_messages m ON m.shop_id = d.shop_id AND m.idempotency_key = d.cancel_key
            WHERE d.shop_id = $1 AND d.order_id = $2 AND d.cancel_key IS NOT NULL AND m.failed_at IS NULL
            ORDER BY d.decided_at, d.id
            LIMIT 1
            """, conn, tx);
        cmd.Parameters.Add(Sql.Param(shopId));
        cmd.Parameters.Add(Sql.Param(orderId));
        await using var r = await cmd.ExecuteReaderAsync(ct);
        return await r.ReadAsync(ct)
            ? new AskedCancel(r.GetString(0), new CancelChoice(r.GetString(1) == "original", r.GetBoolean(2), r.GetBoolean(3)),
                r.IsDBNull(4) ? null : r.GetString(4), r.GetFieldValue<DateTimeOffset>(5), r.GetBoolean(6))
            : null;
    }

    /// <summary>orderCancel for a fraud decision: never automatic, so the staff note says who decided it and where.</summary>
    public static OutboxCall CancelCall(long orderId, CancelChoice cancel, string by, string key)
    {
        var gid = Gid.Of("Order", orderId);
        return new OutboxCall(RiskActions.OrderCancel, gid, new
        {
            orderId = gid,
            reason = "FRAUD",
            restock = cancel.Restock,
            // Why an explicit false: without a refund method the choice would be left to Shopify's default.
            refundMethod = new { originalPaymentMethodsRefund = cancel.Refund },
            notifyCustomer = cancel.NotifyCustomer,
            staffNote = $"Cancelled as fraud by {by} in the PluginApp review queue.",
        }, key);
    }

    /// <summary>Not <c>Mine</c> when another reviewer holds a live lock on the order; nothing is taken or handed back.</summary>
    private static async Task<LockOutcome> OthersLockAsync(NpgsqlConnection conn, NpgsqlTransaction tx, long shopId, long orderId, string holder,
        DateTimeOffset now, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand("""
            SELECT holder, expires_at FROM review_locks WHERE shop_id = $1 AND order_id = $2 AND expires_at > $3 AND holder <> $4
            """, conn, tx);
        foreach (var p in new object[] { shopId, orderId, now, holder }) cmd.Parameters.Add(Sql.Param(p));
        await using var r = await cmd.ExecuteReaderAsync(ct);
        return await r.ReadAsync(ct)
            ? new LockOutcome(false, new ReviewLock(r.GetString(0), r.GetFieldValue<DateTimeOffset>(1)))
            : new LockOutcome(true, new ReviewLock(holder, now));
    }

    private static async Task<LockOutcome> TakeLockAsync(NpgsqlConnection conn, NpgsqlTransaction tx, long shopId, long orderId, string holder,
        DateTimeOffset now, CancellationToken ct)
    {
        await using var batch = new NpgsqlBatch(conn, tx)
        {
            BatchCommands =
            {
                // Why the WHERE on the update: another reviewer's live lock stays theirs; the conflicting row is locked either way,
                // so two reviewers opening the order at once take turns and the second sees the first's lock below. The
                // reviewer's other locks are handed back only when this one is taken: until 8 Dec 2026 looking at an order a
                // colleague held gave up the one she was reviewing, and a third reviewer could take it from under her.
                Command("""
                    WITH taken AS (
                      INSERT INTO review_locks (shop_id, order_id, holder, taken_at, expires_at) VALUES ($1, $2, $3, $4, $5)
                      ON CONFLICT (shop_id, order_id) DO UPDATE SET holder = excluded.holder, taken_at = excluded.taken_at, expires_at = excluded.expires_at
                      WHERE review_locks.holder = excluded.holder OR review_locks.expires_at <= excluded.taken_at
                      RETURNING holder, expires_at),
                    handed_back AS (DELETE FROM review_locks WHERE shop_id = $1 AND holder = $3 AND order_id <> $2 AND EXISTS (SELECT 1 FROM taken))
                    SELECT holder, expires_at FROM taken
                    """, shopId, orderId, holder, now, now + LockFor),
                Command("SELECT holder, expires_at FROM review_locks WHERE shop_id = $1 AND order_id = $2", shopId, orderId),
            },
        };
        await using var r = await batch.ExecuteReaderAsync(ct);
        if (await r.ReadAsync(ct)) return new LockOutcome(true, new ReviewLock(r.GetString(0), r.GetFieldValue<DateTimeOffset>(1)));
        await r.NextResultAsync(ct);
        await r.ReadAsync(ct);
        return new LockOutcome(false, new ReviewLock(r.GetString(0), r.GetFieldValue<DateTimeOffset>(1)));
    }

    /// <summary>Whether the order's goods may still be stopped (<see cref="RiskQueue.StillToShip"/>).</summary>
    private static async Task<bool> StillToShipAsync(NpgsqlConnection conn, NpgsqlTransaction tx, long shopId, long orderId, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand($"SELECT EXISTS (SELECT 1 FROM orders o WHERE o.shop_id = $1 AND o.id = $2 AND {RiskQueue.StillToShip("o")})", conn, tx);
        cmd.Parameters.Add(Sql.Param(shopId));
        cmd.Parameters.Add(Sql.Param(orderId));
        return (bool)(await cmd.ExecuteScalarAsync(ct))!;
    }

    /// <summary>The order's approve and fraud decisions: how many, and the latest.</summary>
    private static async Task<(int Count, ReviewDecision? Latest)> VerdictsAsync(NpgsqlConnection conn, NpgsqlTransaction tx, long shopId, long orderId,
        CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand("""
            SELECT count(*) OVER (), decision, decided_by, decided_at FROM review_decisions
            WHERE shop_id = $1 AND order_id = $2 AND decision <> 'note' ORDER BY decided_at DESC, id DESC LIMIT 1
            """, conn, tx);
        cmd.Parameters.Add(Sql.Param(shopId));
        cmd.Parameters.Add(Sql.Param(orderId));
        await using var r = await cmd.ExecuteReaderAsync(ct);
        if (!await r.ReadAsync(ct)) return (0, null);
        return ((int)r.GetInt64(0), new ReviewDecision(r.GetString(1), null, r.IsDBNull(2) ? null : r.GetString(2), r.GetFieldValue<DateTimeOffset>(3)));
    }

    /// <returns>The scored order's level, or null when the shop has no such scored order.</returns>
    /// <summary>
    /// The assessment a verdict sends Shopify (<see cref="RiskScorer.AssessmentCall"/>): marked as fraud, HIGH whatever the
    /// score, saying who decided; approved after a fraud verdict, the score's level again, saying who approved (unless another
    /// label, a chargeback, still says fraud). An approval of an order nobody had marked as fraud sends none: the tag says it.
    /// </summary>
    private static async Task<OutboxCall?> VerdictAssessmentAsync(NpgsqlConnection conn, NpgsqlTransaction tx, long shopId, long orderId, string decision,
        string by, Scored scored, DateTimeOffset now, CancellationToken ct)
    {
        var key = $"risk-review-assess:{orderId}:{decision}:{now.UtcTicks.ToString(System.Globalization.CultureInfo.InvariantCulture)}";
        var assessment = new RiskAssessment(scored.Score, [.. Reasons(scored.Reasons).Select(r => new RiskReason("", r.Text, r.Weight))]);
        if (decision == "fraud")
            return RiskScorer.AssessmentCall(orderId, scored.Level, assessment, (RiskScorer.KnownFraudFact("marked as fraud by " + by), true), now, key);
        await using var cmd = new NpgsqlCommand("""
            SELECT source, coalesce(detail, source) FROM risk_labels WHERE shop_id = $1 AND order_id = $2 AND fraud ORDER BY labelled_at DESC
            """, conn, tx);
        cmd.Parameters.Add(Sql.Param(shopId));
        cmd.Parameters.Add(Sql.Param(orderId));
        var labels = new List<(string Source, string Detail)>();
        await using (var r = await cmd.ExecuteReaderAsync(ct))
            while (await r.ReadAsync(ct)) labels.Add((r.GetString(0), r.GetString(1)));
        // An approval of an order a chargeback or a Stripe warning says is fraud tells Shopify what the label says, which the
        // approval does not undo, and so records it as told: until 6 Dec 2026 it sent nothing, and the scorer then took the
        // label the reviewer had seen on the page for news, put the order back in the queue and held it again.
        if (labels.Count == 0) return null;
        var other = labels.FirstOrDefault(l => l.Source != "review");
        return RiskScorer.AssessmentCall(orderId, scored.Level, assessment,
            other.Detail is { } fraud ? (RiskScorer.KnownFraudFact(fraud), true) : ($"Approved by {by} in the PluginApp review queue", false), now, key);
    }

    /// <param name="KnownFraud">Its latest fraud label from outside the queue, in words, or null (<see cref="KnownFraudSql"/>).</param>
    private sealed record Scored(string Level, double Score, string Reasons, bool Awaiting, string? KnownFraud);


    private static async Task<Scored?> ScoredAsync(NpgsqlConnection conn, NpgsqlTransaction tx, long shopId, long orderId, CancellationToken ct,
        bool lockScore = false)
    {
        await using var cmd = new NpgsqlCommand($"""
            SELECT s.level, s.score, s.reasons::text, {AwaitingSql}, {KnownFraudSql} FROM risk_scores s JOIN orders o ON o.shop_id = s.shop_id AND o.id = s.order_id WHERE s.shop_id = $1 AND s.order_id = $2
            {(lockScore ? "FOR NO KEY UPDATE OF s" : "")}
            """, conn, tx);
        cmd.Parameters.Add(Sql.Param(shopId));
        cmd.Parameters.Add(Sql.Param(orderId));
        await using var r = await cmd.ExecuteReaderAsync(ct);
        return await r.ReadAsync(ct) ? new Scored(r.GetString(0), r.GetDouble(1), r.GetString(2), r.GetBoolean(3), r.IsDBNull(4) ? null : r.GetString(4)) : null;
    }

    private static async Task<ReviewOrder?> OrderAsync(NpgsqlConnection conn, long shopId, long orderId, CancellationToken ct)
    {
        // Why in-store orders apart: the queue leaves them out (RiskQueue.Online), and until 6 Dec 2026 the page of one scored
        // before POS orders stopped being scored said it awaited review, and took the reviewer's lock, while the queue never listed it.
        await using var cmd = new NpgsqlCommand($"""
            SELECT o.id, coalesce(o.name, '#' || o.id), o.created_at, coalesce(o.total_price, 0), coalesce(o.currency, ''), o.email, o.browser_ip,
                   o.billing_country, o.shipping_country, o.customer_id, s.level, s.score, s.scored_at, s.reasons::text,
                   {PrioritySql},
                   {AwaitingSql}, o.cancelled_at IS NOT NULL,
                   NOT (o.{RiskQueue.Online}), s.model_version, s.prior_weight, {KnownFraudSql}, s.told_fraud
            FROM risk_scores s JOIN orders o ON o.shop_id = s.shop_id AND o.id = s.order_id
            WHERE s.shop_id = $1 AND s.order_id = $2
            """, conn);
        cmd.Parameters.Add(Sql.Param(shopId));
        cmd.Parameters.Add(Sql.Param(orderId));
        await using var r = await cmd.ExecuteReaderAsync(ct);
        if (!await r.ReadAsync(ct)) return null;
        string? Text(int i) => r.IsDBNull(i) ? null : r.GetString(i);
        return new ReviewOrder(r.GetInt64(0), r.GetString(1), Time(r, 2), r.GetDecimal(3), r.GetString(4), Text(5), Text(6), Text(7), Text(8),
            r.IsDBNull(9) ? null : r.GetInt64(9), r.GetString(10), r.GetDouble(11), r.GetFieldValue<DateTimeOffset>(12), Reasons(r.GetString(13)),
            r.GetDouble(14), r.GetBoolean(15), r.GetBoolean(16), r.GetBoolean(17), r.IsDBNull(18) ? null : r.GetInt32(18), r.GetDouble(19),
            Text(20), r.GetBoolean(21));
    }

    /// <summary>The scorer's reasons (<c>[{code, text, weight}]</c>) in its order.</summary>
    private static List<ReviewReason> Reasons(string json)
    {
        using var doc = JsonDocument.Parse(json);
        return doc.RootElement.EnumerateArray()
            .Select(e => new ReviewReason(e.GetProperty("text").GetString() ?? "", e.TryGetProperty("weight", out var w) && w.TryGetDouble(out var d) ? d : 0))
            .ToList();
    }

    private static HoldView? Hold(NpgsqlDataReader r, int i) =>
        r.IsDBNull(i) ? null : new HoldView(r.GetString(i), r.GetInt32(i + 1), r.GetDecimal(i + 2), r.IsDBNull(i + 3) ? null : r.GetString(i + 3),
            r.IsDBNull(i + 4) ? null : new CallStatus(r.GetString(i + 4), r.IsDBNull(i + 5) ? null : r.GetString(i + 5)));

    /// <summary>
    /// The latest hold's or release's calls (queued with the state, RiskHolds), of the risk_holds row <c>h</c>: failed for good
    /// (Shopify refused the hold, e.g. fulfilment had begun), waiting, or null when all went through. Why: the state says what
    /// the app asked for, and until 6 Dec 2026 the page said "Fulfillment held" while Shopify had refused the hold.
    /// </summary>
    private const string HoldCalls = """
        FROM outbox_messages m
        WHERE m.shop_id = h.shop_id AND h.state IN ('held', 'released')
          -- The calls' own keys (RiskHolds: kind, order, fulfillment order, the hold decision's time in .NET ticks), each found
          -- by the outbox's key index; a pattern would read every call the shop ever queued.
          AND m.idempotency_key = ANY (ARRAY(
            SELECT CASE h.state WHEN 'held' THEN 'risk-hold:' ELSE 'risk-release:' END || h.order_id || ':' || f || ':'
                   || ((extract(epoch FROM h.decided_at) * 1000000)::bigint * 10 + 621355968000000000)
            FROM unnest(h.fulfillment_orders) f))
        """;

    /// <summary>
    /// The two columns read by <see cref="Hold"/> after the hold's own. Why subqueries in the select list and not a lateral
    /// join: joined, it moved the queue's plan off the flagged orders' index onto a read of every score of the store.
    /// </summary>
    private const string HoldCallColumns = $"""
        (SELECT CASE WHEN bool_or(m.failed_at IS NOT NULL) THEN 'failed' WHEN bool_or(m.completed_at IS NULL) THEN 'waiting' END {HoldCalls}),
        (SELECT coalesce(max(m.last_error) FILTER (WHERE m.failed_at IS NOT NULL), max(m.last_error) FILTER (WHERE m.completed_at IS NULL)) {HoldCalls})
        """;

    private static DateTimeOffset? Time(NpgsqlDataReader r, int i) => r.IsDBNull(i) ? null : r.GetFieldValue<DateTimeOffset>(i);

    private static NpgsqlParameter Nullable(long? v) => v is { } x ? Sql.Param(x) : new NpgsqlParameter { Value = DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Bigint };

    private static NpgsqlBatchCommand Command(string sql, params object?[] args)
    {
        var c = new NpgsqlBatchCommand(sql);
        foreach (var a in args) c.Parameters.Add(a as NpgsqlParameter ?? Sql.Param(a));
        return c;
    }
}
