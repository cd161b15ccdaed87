using PluginApp.StoreData;
using PluginApp.Webhooks;

namespace PluginApp.Risk;

/// <summary>
/// The order risk's part of storing an order delivery (an ingestion step, in the delivery's transaction): queue a new order
/// for scoring, and an updated one again only when a field its score used changed; and take a cancellation for fraud
/// as a fraud label. The commit's NOTIFY (sent only when an order was queued) wakes the scorer within a second; a sweep
/// each minute finds anything it missed.
/// The store's history brought in by the backfill gives its fraud cancellations the same labels (<see cref="BackfillLabels"/>),
/// but queues nothing: history is learnt from, not scored.
/// </summary>
internal static class RiskQueue
{
    public const string Channel = "risk_pending";

    /// <summary>
    /// The backfill's merge step for orders: each order of the chunk cancelled for fraud, as stored, becomes the same label
    /// its <c>orders/cancelled</c> delivery would give (dated when it was cancelled, so training and the label windows see it
    /// only from then on); a label the webhook already gave is not written twice.
    /// </summary>
    public static readonly string BackfillLabels = $"""
        INSERT INTO risk_labels (shop_id, order_id, source, fraud, labelled_at, detail)
        SELECT $2, o.id, 'cancelled', true, o.cancelled_at, 'cancelled for fraud'
        FROM orders o WHERE o.shop_id = $2 AND o.id IN ({StoreMerge.ChunkIds(StoreMerge.Orders)})
          AND o.cancelled_at IS NOT NULL AND o.cancel_reason = 'fraud'
        ON CONFLICT (shop_id, order_id, source) DO NOTHING
        """;

    /// <summary>
    /// Before <see cref="BackfillStoreDays"/>, a step of its own so the drop's snapshot comes after it: no day is computed
    /// from then to the chunk's commit (the feature builder waits, see OrderFeatures.StoreDays); chunks share it. Until 5 Dec
    /// 2026 a live order scored in that window computed its day without the chunk's orders, and the day stayed so.
    /// </summary>
    public static readonly string BackfillStoreDaysLock = $"SELECT pg_advisory_xact_lock_shared({OrderFeatures.StoreDaysLockKey("$2")})";

    /// <summary>
    /// The backfill's merge step for orders: the store's usual order of each day whose 90 days before take in an order of
    /// the chunk was computed without it (a live order scored while the history was still coming in), and is computed again
    /// when next needed. Why: days are kept as first computed, and the install day's, computed from no history, read every
    /// order of that day as usual (no amount above the usual, no first order over the 90th percentile) in scoring and in
    /// every training after (until 5 Dec 2026). The orders scored with such a day keep their scores; training rebuilds their
    /// features with the day recomputed.
    /// </summary>
    public static readonly string BackfillStoreDays = $"""
        DELETE FROM risk_store_days d
        USING (SELECT min(o.created_at) AS first, max(o.created_at) AS last FROM orders o
               WHERE o.shop_id = $2 AND o.id IN ({StoreMerge.ChunkIds(StoreMerge.Orders)})) c
        WHERE d.shop_id = $2 AND d.day > c.first AND d.day <= c.last + interval '90 days'
        """;

    /// <summary>
    /// Whether the order's score used what the order <paramref name="o"/> now holds (its total, discount and countries, and
    /// the card its transaction brought): an update that changed none of them needs no new score. One definition for the
    /// webhook's queueing and the scorer's re-queueing of an order edited while it was scored. Why the card by its version
    /// (when it came, as the scorer claimed the order, kept with the score): the transaction's webhook often comes after the
    /// order's, and until 5 Dec 2026 no live order had a card to be scored with; a version, unlike the scoring's clock,
    /// says what the score was computed with.
    /// </summary>
    /// <remarks>Its own scores are <c>s</c>: a caller's alias for its scores must be another, or it is hidden here. Why the
    /// amount within a tolerance: the score's amount is a single-precision feature, a cent or two off a total above
    /// 131,072 (its step there is 1/64), and until 6 Dec 2026 each update of such an order scored it again.</remarks>
    internal static string ScoreStillFits(string shopId, string orderId, string o) => $"""
        EXISTS (
                SELECT 1 FROM risk_scores s WHERE s.shop_id = {shopId} AND s.order_id = {orderId}
                  AND abs((s.features->>'amount')::numeric - coalesce({o}.total_price, 0)) <= 0.005 + abs(coalesce({o}.total_price, 0)) * 0.00000025
                  AND (s.features->>'has_discount')::numeric = CASE WHEN {o}.discount_codes <> '' THEN 1 ELSE 0 END
                  AND (s.features->>'country_mismatch')::numeric = CASE WHEN {o}.billing_country <> {o}.shipping_country THEN 1 ELSE 0 END
                  AND s.card_version IS NOT DISTINCT FROM {o}.card_received_at)
        """;

    /// <summary>
    /// An order placed online, not at the counter (Shopify POS, source_name 'pos'): only those are scored, and only those
    /// teach the model. Why: at the counter the card was present and the goods left with the buyer, so there is nothing to
    /// hold and a stolen card's chargeback is not the risk this guards against (Shopify's own fraud analysis is for online
    /// orders too); until 5 Dec 2026 an in-store order without an email or address read as a first order from nowhere, and a
    /// large one went to the review queue.
    /// </summary>
    internal const string Online = "source_name IS DISTINCT FROM 'pos'";

    /// <summary>
    /// Whether the goods of the order <paramref name="o"/> may still be stopped: not cancelled, not fulfilled (nor returned)
    /// in full, and not refunded or voided in full (nothing left to lose). Why: a fraud label from outside the queue (a
    /// chargeback, a Stripe early fraud warning) on such an order holds it and brings it back to the reviewer (RiskScorer),
    /// while one on an order long shipped, or paid back, only tells Shopify.
    /// </summary>
    internal static string StillToShip(string o) => $"""
        {o}.cancelled_at IS NULL AND ({o}.fulfillment_status IS NULL OR {o}.fulfillment_status = 'partial')
          AND {o}.financial_status IS DISTINCT FROM 'refunded' AND {o}.financial_status IS DISTINCT FROM 'voided'
        """;

    // The segment's orders as stored, unless the order's score already used what it now holds, or the shop switched order
    // risk off to score nothing (then nothing is queued, and no scoring job starts only to drop it). An update queues an
    // unscored order only when it was placed since the install and not while order risk scored nothing: never one of the
    // store's history or one left unscored by the switch (until 4 Dec 2026 an orders/updated, say its fulfilment, scored
    // such an order, and at HIGH held it and put it in the queue), but still one whose orders/create never landed (Shopify
    // gave up retrying it, or it was kept aside as failed). Only a statement that
    // queued an order wakes the scorer: an update that changed nothing its score used, or orders/paid and the like, do not.
    private static readonly RowsStatement Queue = new("q", ["shop_id int8", "order_id int8", "reason text", "queued_at timestamptz"], $"""
        WITH queued AS (
            INSERT INTO risk_pending (shop_id, order_id, reason, queued_at)
            SELECT q.shop_id, q.order_id, q.reason, q.queued_at
            FROM {"{rows}"} JOIN orders o ON o.shop_id = q.shop_id AND o.id = q.order_id
            WHERE NOT {ScoreStillFits("q.shop_id", "q.order_id", "o")} AND o.{Online}
              AND (q.reason = 'orders/create' OR EXISTS (SELECT 1 FROM risk_scores s WHERE s.shop_id = q.shop_id AND s.order_id = q.order_id)
                   OR (o.created_at >= (SELECT h.installed_at FROM shops h WHERE h.id = q.shop_id)
                       AND NOT coalesce((SELECT NOT w.enabled AND w.when_off = '{RiskScorer.ScoreNothing}' FROM ai_feature_switch_history w
                                         WHERE w.shop_id = q.shop_id AND w.feature = '{RiskScorer.Name}' AND w.changed_at <= o.created_at
                                         ORDER BY w.changed_at DESC, w.id DESC LIMIT 1), false)))
              AND NOT {ScoresNothing("q.shop_id")}
            ON CONFLICT (shop_id, order_id) DO NOTHING
            RETURNING shop_id)
        SELECT pg_notify('{Channel}', shop_id::text) FROM (SELECT DISTINCT shop_id FROM queued) s
        """);

    /// <summary>
    /// The sweep's backstop, each minute: an order queued again when its score of the last ten minutes no longer fits it and
    /// its version moved since (an edit), or when it was scored with another version of its card than it now holds, its card
    /// come in the last ten minutes. Why: an edit or a card whose delivery commits just after the scorer's own check (its
    /// requeue, RiskScorer) met the order's queue row still claimed and queued nothing. Why ten minutes: that is a matter of
    /// seconds, and the sweep reads every shop's scores and cards of that time (an index on each). Why the versions (the
    /// order's updated_at and the card's time, each as the score read them) and not a clock: they say what the score saw,
    /// and a score that read the order as it stands is never queued again, whatever its figures round to. A card the sweep
    /// gives an order late keeps the time it came, and may fall outside: the scorer gives waiting cards before it reads
    /// features, so such an order was not scored yet. And an order scored in those ten minutes whose fraud labels say otherwise
    /// than what its score told Shopify: a label (a chargeback, a Stripe warning) that committed while the order was first
    /// scored found no score to queue (<see cref="LabelChangedSql"/>) after the scorer had read the labels, and until 6 Dec
    /// 2026 Shopify was never told. $1 the time, $2 ten minutes before.
    /// </summary>
    internal static readonly string ScoredWithout = $"""
        INSERT INTO risk_pending (shop_id, order_id, reason, queued_at)
        SELECT x.shop_id, x.id, x.reason, $1
        FROM (SELECT o.shop_id, o.id, 'orders/updated' AS reason
              FROM risk_scores r JOIN orders o ON o.shop_id = r.shop_id AND o.id = r.order_id
              WHERE r.scored_at >= $2 AND r.order_version IS DISTINCT FROM o.updated_at AND NOT {ScoreStillFits("r.shop_id", "r.order_id", "o")}
                AND o.redacted_at IS NULL AND o.{Online}
              UNION ALL
              SELECT o.shop_id, o.id, 'order_transactions/create'
              FROM orders o JOIN risk_scores s ON s.shop_id = o.shop_id AND s.order_id = o.id
              WHERE o.card_received_at IS NOT NULL AND o.card_received_at >= $2 AND s.card_version IS DISTINCT FROM o.card_received_at
                AND o.{Online}
              UNION ALL
              SELECT s.shop_id, s.order_id, 'fraud label'
              FROM risk_scores s
              WHERE s.scored_at >= $2 AND {LabelsDiffer("s")} AND {NotInStore("s")}) x
        WHERE NOT {ScoresNothing("x.shop_id")}
        ON CONFLICT (shop_id, order_id) DO NOTHING
        """;

    /// <summary>Whether the shop <paramref name="shop"/> (an SQL expression) has order risk switched off to score nothing,
    /// as its switch's row says now (not an instance's cache): what the queue's writers leave unqueued.</summary>
    internal static string ScoresNothing(string shop) => $"""
        EXISTS (SELECT 1 FROM ai_feature_switches w WHERE w.shop_id = {shop} AND w.feature = '{RiskScorer.Name}'
                  AND NOT w.enabled AND w.when_off = '{RiskScorer.ScoreNothing}')
        """;

    /// <summary>
    /// The card of an order stored without one (order_transactions/create, see StoreWriter.AddOrderCard): the order is
    /// scored again when its score came before the card, under the rules of an update. An order not stored yet takes the
    /// card when it comes, and is scored with it.
    /// </summary>
    public static void AddCard(StoreWriter store, OrderTransactionRows rows, IngestionContext at)
    {
        if (rows.Card is not null) store.AddToSegment(Queue, [store.ShopId, rows.OrderId, at.Topic, at.Now]);
    }

    /// <summary>
    /// The score <paramref name="s"/>'s order is not one sold in a store (POS), which is not scored, tagged or held: one scored
    /// before 5 Dec 2026 keeps its score, and until 7 Dec 2026 a fraud label on it scored it again, told Shopify and could
    /// hold it where no reviewer would see it.
    /// </summary>
    internal static string NotInStore(string s) =>
        $"NOT EXISTS (SELECT 1 FROM orders o WHERE o.shop_id = {s}.shop_id AND o.id = {s}.order_id AND NOT o.{Online})";

    /// <summary>
    /// Whether the fraud labels of the score <paramref name="s"/>'s order say otherwise than what its latest assessment told
    /// Shopify (<c>told_fraud</c>): one definition for the label writers' queueing and the sweep's backstop.
    /// </summary>
    internal static string LabelsDiffer(string s) =>
        $"{s}.told_fraud <> EXISTS (SELECT 1 FROM risk_labels l WHERE l.shop_id = {s}.shop_id AND l.order_id = {s}.order_id AND l.fraud)";

    /// <summary>
    /// A scored order whose fraud labels now say otherwise than the latest assessment the app gave Shopify (a label written
    /// or flipped just before, in the same transaction) is scored again, and the scorer tells Shopify (RiskScorer). $1 the
    /// shop, $2 the order, $3 the time. Used by every writer of labels but the review queue, which tells Shopify itself.
    /// </summary>
    public static readonly string LabelChangedSql = $"""
        WITH queued AS (
            INSERT INTO risk_pending (shop_id, order_id, reason, queued_at)
            SELECT s.shop_id, s.order_id, 'fraud label', $3 FROM risk_scores s
            WHERE s.shop_id = $1 AND s.order_id = $2
              AND {LabelsDiffer("s")} AND {NotInStore("s")}
            -- Why the lock: a scoring run holds the score (and its claimed queue row, which the insert would meet and skip)
            -- from before it read the labels until it writes what it told; waiting for it, the comparison sees what it wrote.
            FOR NO KEY UPDATE OF s
            ON CONFLICT (shop_id, order_id) DO NOTHING
            RETURNING shop_id)
        SELECT pg_notify('{Channel}', shop_id::text) FROM queued
        """;

    /// <summary>
    /// Every scored order of the shop whose fraud labels say otherwise than Shopify was told, queued again: order risk was
    /// switched on after scoring nothing, or left off but to score by the rules, while which the scorer dropped what the
    /// label writers queued (a chargeback, a Stripe warning). Nothing while it still scores nothing (read from the switch's
    /// row, not an instance's cache). $1 the shop, $2 the time. Until 7 Dec 2026 such a label was never told, nor its order
    /// held.
    /// </summary>
    public static readonly string LabelsWhileOffSql = $"""
        WITH queued AS (
            INSERT INTO risk_pending (shop_id, order_id, reason, queued_at)
            SELECT s.shop_id, s.order_id, 'fraud label', $2 FROM risk_scores s
            WHERE s.shop_id = $1 AND {LabelsDiffer("s")} AND {NotInStore("s")}
              AND NOT {ScoresNothing("$1")}
            ON CONFLICT (shop_id, order_id) DO NOTHING
            RETURNING shop_id)
        SELECT pg_notify('{Channel}', $1::text) FROM (SELECT 1 FROM queued LIMIT 1) q
        """;

    public static void Add(StoreWriter store, OrderRows rows, IngestionContext at)
    {
        var order = rows.Order;
        // A new order, or an update (or a repeated create) that changed something its score used: a fulfilment or a note
        // changes nothing, so it queues nothing.
        if (at.Topic is "orders/create" or "orders/updated") store.AddToSegment(Queue, [store.ShopId, order.Id, at.Topic, at.Now]);
        if (order.CancelledAt is { } cancelled && string.Equals(order.CancelReason, "fraud", StringComparison.OrdinalIgnoreCase))
        {
            store.Add("""
                INSERT INTO risk_labels (shop_id, order_id, source, fraud, labelled_at, detail) VALUES ($1, $2, 'cancelled', true, $3, 'cancelled for fraud')
                ON CONFLICT (shop_id, order_id, source) DO NOTHING
                """, store.ShopId, order.Id, cancelled);
            store.Add(LabelChangedSql, store.ShopId, order.Id, at.Now);
        }
    }
}
