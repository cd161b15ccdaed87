using Hangfire;
using System.Text.Json;
using Npgsql;
using PluginApp.Governance;
using PluginApp.Data;
using PluginApp.Outbox;
using PluginApp.StoreData;
using PluginApp.Admin.Switches;

namespace PluginApp.Risk;

/// <summary>The merchant's cut-offs from score to level.</summary>
public sealed record RiskThresholds(double MediumFrom, double HighFrom)
{
    /// <summary>
    /// A first order far above the store's usual with a second warning sign (≈ 0.14) is MEDIUM; fraud already seen from the
    /// same address, or three strong signs together, is HIGH.
    /// </summary>
    public static readonly RiskThresholds Default = new(0.10, 0.40);

    public string Level(double score) => score >= HighFrom ? "HIGH" : score >= MediumFrom ? "MEDIUM" : "LOW";
}

/// <summary>
/// Scores a shop's queued orders: claims up to a batch of <c>risk_pending</c> rows, builds their features
/// (<see cref="OrderFeatures"/>), scores them, and in the same transaction records each score with its reasons, removes
/// the queue rows and queues the calls to Shopify (an order risk assessment and a level tag) when the level is new or
/// changed. A process that dies mid-way rolls all of it back and the rows are scored again; the outbox's idempotency keys
/// and its check before any resend keep each assessment in Shopify once.
/// </summary>
public sealed class RiskScorer(NpgsqlDataSource db, RiskModels models, AiFeatureSwitches switches, ModelBreakers breakers, OutboxScheduler outbox,
    RiskHoldScheduler holdJobs, TableStatistics statistics, Microsoft.Extensions.Options.IOptions<GovernanceOptions> governance, TimeProvider clock, ILogger<RiskScorer> logger)
{
    public const string Name = "order-risk";

    /// <summary>The off choice under which orders are not scored at all (nor queued: <see cref="RiskQueue"/>).</summary>
    public const string ScoreNothing = "nothing";

    /// <summary>Order risk as a feature the merchant can switch off: orders are then scored by the documented rules only, or not at all.</summary>
    public static readonly AiFeature Switch = new(Name, "Order risk",
        "Scores every order for fraud with reasons, writes the level and a tag to Shopify, and puts risky orders in the review queue.", ["rule_prior", ScoreNothing])
    {
        OffMeaning = new Dictionary<string, string>
        {
            ["rule_prior"] = "orders are scored by the documented rules only, never by a trained model",
            [ScoreNothing] = "orders are not scored and nothing is written to Shopify",
        },
        WhenSwitchedOn = (services, shopId) => TellLabelsLater(services, shopId),
        // Off, but to score by the rules after scoring nothing: the same (the job does nothing while it scores nothing).
        WhenSwitchedOff = (services, shopId, _) => { TellLabelsLater(services, shopId); return Task.CompletedTask; },
    };

    private static void TellLabelsLater(IServiceProvider services, long shopId) =>
        services.GetRequiredService<IBackgroundJobClient>().Enqueue<RiskScoringJob>(j => j.SwitchedOnAsync(shopId, CancellationToken.None));

    public const int BatchSize = 500;

    /// <summary>The batch's orders' earlier scores ($2: their ids), each with what a reviewer decided, locked for the batch.</summary>
    internal const string PreviousScoresSql =
        """
        SELECT s.order_id, s.level, CASE WHEN s.reviewed_at IS NOT NULL THEN coalesce(s.reviewed_level, 'HIGH') END, s.told_fraud,
               coalesce((SELECT l.fraud FROM risk_labels l WHERE l.shop_id = s.shop_id AND l.order_id = s.order_id AND l.source = 'review'), false)
        FROM risk_scores s WHERE s.shop_id = $1 AND s.order_id = ANY($2) ORDER BY s.order_id FOR NO KEY UPDATE OF s
        """;

    /// <summary>
    /// The shop's oldest queued orders ($2 of them), each with its version: the batch taken by the queue's own index, then each
    /// order looked up by its key. Until 5 Dec 2026 the queue was joined to the orders first, and PostgreSQL read every order
    /// the shop had queued, and the shop's orders, before the limit (migration 0075); a plain join of the batch still read
    /// the store's orders whole when that looked cheaper than a lookup each (the LIMIT keeps each a lookup).
    /// </summary>
    internal const string ClaimSql = """
        WITH p AS MATERIALIZED (
            SELECT shop_id, order_id, queued_at FROM risk_pending WHERE shop_id = $1 ORDER BY queued_at LIMIT $2 FOR UPDATE SKIP LOCKED)
        SELECT p.order_id, p.queued_at, o.updated_at, o.card_received_at FROM p
        LEFT JOIN LATERAL (SELECT updated_at, card_received_at FROM orders WHERE shop_id = p.shop_id AND id = p.order_id LIMIT 1) o ON true
        """;
    public const string TagPrefix = "pluginapp:risk-";

    /// <returns>How many orders were scored.</returns>
    public async Task<int> ScoreShopAsync(long shopId, CancellationToken ct)
    {
        // Why first: the features look each order's email, address and card up among the store's orders, which PostgreSQL
        // plans by the table's statistics (TableStatistics says what happens without them).
        await statistics.RefreshIfOutgrownAsync("orders", ct);
        // And the scores, whose lookup of the batch's earlier scores read every score of the store on statistics from when
        // the table was nearly empty (73 ms a batch against 1.1 ms in the ingest benchmark of 5 Dec 2026).
        await statistics.RefreshIfOutgrownAsync("risk_scores", ct);
        // Cards still waiting for orders held by now: an order and its transaction stored side by side, in two transactions
        // that could not see each other (StoreWriter.ApplyCardsSql). Taken before the features read them, in a statement of
        // their own (the batch below must not hold orders' rows: a review decision locks a score, then its order).
        await using (var cards = db.CreateCommand(StoreWriter.ApplyCardsSql("SELECT shop_id, order_id FROM order_cards WHERE shop_id = $1", skipLocked: true)))
        {
            cards.Parameters.Add(Sql.Param(shopId));
            await cards.ExecuteNonQueryAsync(ct);
        }
        var total = 0;
        while (true)
        {
            var scored = await ScoreBatchAsync(shopId, ct);
            total += scored;
            if (scored < BatchSize) return total;
        }
    }

    private async Task<int> ScoreBatchAsync(long shopId, CancellationToken ct)
    {
        await using var conn = await db.OpenConnectionAsync(ct);
        await using var tx = await conn.BeginTransactionAsync(ct);
        // Why the shop first: shop/redact deletes the shop and, by cascade, its queue; taking the shop before the queue rows
        // (the order the delete takes them in) makes one wait for the other instead of deadlocking.
        await using (var shop = new NpgsqlCommand("SELECT 1 FROM shops WHERE id = $1 FOR KEY SHARE", conn, tx))
        {
            shop.Parameters.Add(Sql.Param(shopId));
            if (await shop.ExecuteScalarAsync(ct) is null) return 0;
        }
        var pending = new Dictionary<long, DateTimeOffset>();
        // Each order's version as claimed (its updated_at, and when its card came), read before its features: an order that
        // moved on is queued again below.
        var versions = new Dictionary<long, (DateTimeOffset? Updated, DateTimeOffset? Card)>();
        await using (var claim = new NpgsqlCommand(ClaimSql, conn, tx))
        {
            claim.Parameters.Add(Sql.Param(shopId));
            claim.Parameters.Add(Sql.Param(BatchSize));
            await using var r = await claim.ExecuteReaderAsync(ct);
            while (await r.ReadAsync(ct))
            {
                pending[r.GetInt64(0)] = r.GetFieldValue<DateTimeOffset>(1);
                versions[r.GetInt64(0)] = (r.IsDBNull(2) ? null : r.GetFieldValue<DateTimeOffset>(2), r.IsDBNull(3) ? null : r.GetFieldValue<DateTimeOffset>(3));
            }
        }
        if (pending.Count == 0) return 0;

        var state = await switches.StateAsync(shopId, Name, ct);
        if (!state.Enabled && state.WhenOff == ScoreNothing)
        {
            await using (var drop = new NpgsqlCommand("DELETE FROM risk_pending WHERE shop_id = $1 AND order_id = ANY($2)", conn, tx))
            {
                drop.Parameters.Add(Sql.Param(shopId));
                drop.Parameters.Add(Sql.Param(pending.Keys.ToArray()));
                await drop.ExecuteNonQueryAsync(ct);
            }
            await tx.CommitAsync(ct);
            logger.LogInformation("Shop {Shop}: order risk is switched off; {Count} orders left unscored", shopId, pending.Count);
            return pending.Count;
        }
        var features = await OrderFeatures.BuildAsync(conn, shopId, pending.Keys, ct, tx);
        var (thresholds, holding, currency, previous, fraudLabels, toShip) = await ContextAsync(conn, tx, shopId, pending.Keys, ct);
        // Switched to the rules, or the model cut off after errors: the rule prior scores, and each decision says so.
        ActiveRiskModel? active = null;
        if (state.Enabled && breakers.Allows(shopId, RiskTrainer.Kind))
        {
            // A model file that cannot be read (damaged, or written by another ML.NET) counts against the model, and the prior
            // scores meanwhile; until 5 Dec 2026 the error rolled the batch back, and the shop's orders went unscored.
            try { active = await models.ActiveAsync(conn, tx, shopId, ct); }
            catch (Exception e) when (e is not OperationCanceledException and not NpgsqlException)
            {
                logger.LogError(e, "Shop {Shop}: the active risk model's file could not be read; scoring with the rule prior", shopId);
                breakers.Failure(shopId, RiskTrainer.Kind, $"its file could not be read ({e.GetType().Name}: {e.Message})");
            }
        }
        var scored = features.Keys.ToArray();
        IReadOnlyList<RiskAssessment> assessed;
        try
        {
            assessed = RiskModels.Assess(scored.Select(id => features[id]).ToList(), currency, active);
            if (active is not null) breakers.Success(shopId, RiskTrainer.Kind);
        }
        catch (Exception e) when (active is not null && e is not OperationCanceledException)
        {
            logger.LogError(e, "Shop {Shop}: the risk model failed; scoring with the rule prior", shopId);
            breakers.Failure(shopId, RiskTrainer.Kind, $"{e.GetType().Name}: {e.Message}");
            active = null;
            assessed = RiskModels.Assess(scored.Select(id => features[id]).ToList(), currency, null);
        }
        var assessments = scored.Zip(assessed).ToDictionary(p => p.First, p => p.Second);
        // A version in release: in shadow it scores the same orders beside the served score (logged only); in canary it scores its share of orders.
        var release = state.Enabled ? await models.ReleaseAsync(conn, tx, shopId, governance.Value, ct) : null;
        var (released, releaseFailure) = Release(release, scored, features, currency);
        var now = clock.GetUtcNow();
        await using var batch = new NpgsqlBatch(conn, tx);
        var store = new StoreWriter(batch, shopId);
        // Why set-based: a batch is hundreds of orders, and a statement per order and table (six each) cost PostgreSQL more
        // than the scoring did, competing with the webhooks that queued them.
        store.Add("DELETE FROM risk_pending WHERE shop_id = $1 AND order_id = ANY($2)", shopId, pending.Keys.ToArray());
        var rows = new ScoreRows(pending.Count);
        var decisions = new List<Decision>(pending.Count);
        var calls = new List<OutboxCall>();
        var holds = 0;
        var reopen = new List<long>();
        foreach (var (orderId, queuedAt) in pending)
        {
            if (!features.TryGetValue(orderId, out var f)) continue; // the order is gone (shop/redact) or has no time: nothing to score
            var assessment = assessments[orderId];
            var (version, modelWeight) = (active?.Version, active?.ModelWeight ?? 0);
            var output = new Dictionary<string, object?>();
            string? shadow = null;
            if (release is not null && release.Answers(shopId, orderId))
            {
                output["release"] = "canary";
                output["candidate"] = release.Version;
                if (released is null) output["failed"] = releaseFailure; // the served score stays the active version's (or the prior's)
                else (assessment, version, modelWeight) = (released[orderId], release.Version, release.Model!.ModelWeight);
            }
            else if (release is { Stage: "shadow" })
                shadow = JsonSerializer.Serialize(released is null
                    ? new { version = release.Version, failed = releaseFailure }
                    : (object)new { version = release.Version, subject = thresholds.Level(released[orderId].Score), score = Math.Round(released[orderId].Score, 4) });
            var level = thresholds.Level(assessment.Score);
            var reasons = assessment.Reasons.Select(x => new { code = x.Code, text = x.Text, weight = RiskReason.Stored(x.Weight) });
            var named = JsonSerializer.Serialize(OrderFeatures.Named(f));
            rows.Add(orderId, assessment.Score, level, version, 1 - modelWeight, JsonSerializer.Serialize(reasons), named, queuedAt,
                versions[orderId].Card, versions[orderId].Updated, fraudLabels.ContainsKey(orderId));
            output["score"] = Math.Round(assessment.Score, 4);
            output["level"] = level;
            output["prior_weight"] = Math.Round(1 - modelWeight, 3);
            decisions.Add(new Decision(DecisionKinds.Risk, $"risk:{orderId}:{now.UtcTicks}", shopId, now, version is null ? "rule_prior" : "model")
            {
                Subject = level, Fallback = version is null, ModelKind = RiskTrainer.Kind, ModelVersion = version, OrderId = orderId,
                Inputs = named, Output = JsonSerializer.Serialize(output), Shadow = shadow,
                Reasons = assessment.Reasons.Where(x => x.Weight > 0).Select(x => x.Text).ToArray(),
                LatencyMs = (float)(now - queuedAt).TotalMilliseconds,
            });
            var before = previous.GetValueOrDefault(orderId);
            var fraud = fraudLabels.TryGetValue(orderId, out var known);
            // A fraud label Shopify was not told of yet comes from outside the queue (a reviewer's verdict tells Shopify itself):
            // a chargeback, a Stripe early fraud warning. On an order whose goods may still be stopped it is held (when the
            // merchant holds HIGH orders: Shopify is told HIGH), valued customer or not, and is back in the queue if a reviewer
            // had decided it, with its decision's tag gone: the reviewer decided without it. Until 6 Dec 2026 it only told
            // Shopify, and an approved or LOW order charged back as fraud before it shipped went out with nobody shown it.
            var fraudNews = fraud && !before.ToldFraud && toShip.Contains(orderId);
            if (fraudNews && before.DecidedAt is not null) reopen.Add(orderId);
            if (fraudNews && HoldKnownFraud(store, holding, orderId, now)) holds++;
            if (before.Level == level)
            {
                // Shopify already shows this level. A fraud label come or gone since Shopify was last told (a chargeback, a
                // Stripe warning, a cancellation for fraud, queued by RiskQueue.LabelChangedSql) is told now: HIGH with the
                // label, or the score's level again. Until 6 Dec 2026 it waited for a change of level, so a LOW order charged
                // back stayed LOW in Shopify, where a merchant's Flow may fulfil LOW orders.
                if (fraud != before.ToldFraud)
                {
                    var at = now.UtcTicks.ToString(System.Globalization.CultureInfo.InvariantCulture);
                    calls.Add(AssessmentCall(orderId, level, assessment, known is null ? null : (KnownFraudFact(known), true), now, $"risk:{orderId}:{level}:{at}"));
                    if (reopen.Contains(orderId))
                    {
                        var gid = Gid.Of("Order", orderId);
                        calls.Add(new OutboxCall(OutboxOperation.TagsRemove, gid, new { id = gid, tags = Review.ReviewStore.DecisionTags },
                            $"risk-untag-decided:{orderId}:{at}"));
                    }
                    // The label gone (a dispute won) from a LOW order, which then leaves the queue: the hold it brought goes
                    // with it, as with a score down to LOW.
                    if (!fraud && level == "LOW")
                    {
                        store.Add(RiskHolds.ReleaseUnlessFraudSql, shopId, orderId, now);
                        holds++;
                    }
                }
                continue;
            }
            var reopened = before.DecidedAt is { } decided && Rank(level) > Rank(decided) || reopen.Contains(orderId);
            // Undecided (or back in the queue), an order raised to HIGH again after a score at LOW released its hold is held again.
            // A decided order that is not back in the queue is not held at all: nobody would be shown it to let it go (until
            // 6 Dec 2026 one approved at HIGH while holding was off, edited to MEDIUM and back once it was on, was held for good),
            // unless a reviewer marked it as fraud, whose goods must not ship: held, valued customer or not. Not one approved with
            // its fraud label shown (a label that came after the decision reopened it): until 7 Dec 2026 any fraud label held it,
            // approved, out of the queue and tagged approved, when an edit took it down and back to HIGH.
            if (!fraudNews && level == "HIGH" && (before.DecidedAt is null || reopened || before.MarkedFraud) && Hold(store, holding, orderId, now, again: true, fraud)) holds++;
            // Down to LOW it leaves the queue, so nobody would approve it: our hold goes with it (until 4 Dec 2026 it stayed for
            // good), unless a reviewer marked the order as fraud, whose goods must not ship.
            if (level == "LOW" && before.Level is not null)
            {
                store.Add(RiskHolds.ReleaseUnlessFraudSql, shopId, orderId, now);
                holds++;
            }
            calls.AddRange(ShopifyCalls(orderId, level, before.Level, assessment, now, reopened, fraudLabels.GetValueOrDefault(orderId)));
        }
        rows.AddTo(store, now);
        if (reopen.Count > 0)
            store.Add("UPDATE risk_scores SET reviewed_at = NULL, reviewed_level = NULL WHERE shop_id = $1 AND order_id = ANY($2)", shopId, reopen.ToArray());
        // Why: an edit that commits while this batch scores meets its order's queue row still there (locked, not yet deleted)
        // and queues nothing, and the delete above then drops it; until 4 Dec the order kept the score of what it no longer
        // was. An order whose version moved since it was claimed, and whose new score (written above) used other values than it
        // now holds, is queued again, and the scorer woken for it. Left: an edit whose transaction commits after this
        // statement, having queued nothing, is still missed (the window of one webhook batch's commit, where it was the whole
        // scoring). Why not have the webhook's queueing wait for the scorer (ON CONFLICT DO UPDATE): an ordinary
        // orders/updated then held an ingest writer for a whole scoring batch, and the wait could close a deadlock with a
        // review decision (it locks the score row, and its label's trigger the order). A card that came since the claim
        // queues the order whatever the times say: the features may have been read before it.
        store.Add($"""
            WITH requeued AS (
                INSERT INTO risk_pending (shop_id, order_id, reason, queued_at)
                SELECT $1, o.id, 'orders/updated', $4
                FROM unnest($2::bigint[], $3::timestamptz[], $5::timestamptz[]) AS v(order_id, updated_at, card_received_at)
                JOIN orders o ON o.shop_id = $1 AND o.id = v.order_id
                WHERE ((o.updated_at IS DISTINCT FROM v.updated_at AND NOT {RiskQueue.ScoreStillFits("$1", "o.id", "o")})
                       OR o.card_received_at IS DISTINCT FROM v.card_received_at)
                  AND o.{RiskQueue.Online}
                ON CONFLICT (shop_id, order_id) DO NOTHING
                RETURNING shop_id)
            SELECT pg_notify('{RiskQueue.Channel}', $1::text) FROM (SELECT 1 FROM requeued LIMIT 1) r
            """, shopId, versions.Keys.ToArray(),
            versions.Values.Select(v => v.Updated?.UtcDateTime).ToArray(), clock.GetUtcNow(),
            Sql.Array(versions.Values.Select(v => v.Card?.UtcDateTime).ToArray(), NpgsqlTypes.NpgsqlDbType.TimestampTz));
        OutboxWriter.EnqueueMany(store, calls, now);
        await DecisionLog.WriteInTransactionAsync(conn, decisions, ct);
        await batch.ExecuteNonQueryAsync(ct);
        await tx.CommitAsync(ct);
        if (calls.Count > 0) outbox.Kick(shopId);
        if (holds > 0) holdJobs.Kick(shopId);
        logger.LogDebug("Shop {Shop}: scored {Count} orders", shopId, pending.Count);
        return pending.Count;
    }

    /// <summary>
    /// A batch's scores, written with one upsert (a later score of an order replaces the earlier). A score above the level a
    /// reviewer decided the order at (MEDIUM approved, then HIGH after an edit) puts it back in the review queue: the reviewer
    /// decided on less than it now is, and a HIGH order that had no hold decision is held now (<see cref="Hold"/>), a hold
    /// nobody would be shown. At or below that level (approved at HIGH, then MEDIUM, then HIGH again) it stays decided.
    /// </summary>
    private sealed class ScoreRows(int capacity)
    {
        private readonly List<long> _orders = new(capacity);
        private readonly List<double> _scores = new(capacity);
        private readonly List<string> _levels = new(capacity);
        private readonly List<int?> _versions = new(capacity);
        private readonly List<double> _priorWeights = new(capacity);
        private readonly List<string> _reasons = new(capacity);
        private readonly List<string> _features = new(capacity);
        private readonly List<DateTimeOffset> _queued = new(capacity);
        private readonly List<DateTime?> _cards = new(capacity);
        private readonly List<DateTime?> _orderVersions = new(capacity);
        private readonly List<bool> _toldFraud = new(capacity);

        /// <param name="card">The version of the order's card as claimed (<c>orders.card_received_at</c>), read before its
        /// features: a card that came after has a later one, and the order is scored again (RiskQueue.ScoreStillFits).</param>
        /// <param name="orderVersion">The order's own version as claimed (<c>orders.updated_at</c>), for the sweep's look at
        /// edits this batch could not see (RiskQueue.ScoredWithout).</param>
        public void Add(long order, double score, string level, int? version, double priorWeight, string reasons, string features, DateTimeOffset queued,
            DateTimeOffset? card, DateTimeOffset? orderVersion, bool toldFraud)
        {
            _toldFraud.Add(toldFraud);
            _orders.Add(order); _scores.Add(score); _levels.Add(level); _versions.Add(version); _priorWeights.Add(priorWeight);
            _reasons.Add(reasons); _features.Add(features); _queued.Add(queued.ToUniversalTime()); _cards.Add(card?.UtcDateTime);
            _orderVersions.Add(orderVersion?.UtcDateTime);
        }

        public void AddTo(StoreWriter store, DateTimeOffset now)
        {
            if (_orders.Count == 0) return;
            store.Add("""
                INSERT INTO risk_scores (shop_id, order_id, score, level, model_version, prior_weight, reasons, features, queued_at, scored_at, card_version,
                                         order_version, told_fraud, unlabelled_score, unlabelled_model_version, unlabelled_scored_at)
                SELECT $1, s.order_id, s.score, s.level, s.model_version, s.prior_weight, s.reasons::jsonb, s.features::jsonb, s.queued_at, $10, s.card_version,
                       s.order_version, s.told_fraud, s.score, s.model_version, $10
                FROM unnest($2::bigint[], $3::float8[], $4::text[], $5::int[], $6::float8[], $7::text[], $8::text[], $9::timestamptz[], $11::timestamptz[],
                            $12::timestamptz[], $13::bool[])
                     AS s(order_id, score, level, model_version, prior_weight, reasons, features, queued_at, card_version, order_version, told_fraud)
                ON CONFLICT (shop_id, order_id) DO UPDATE SET score = excluded.score, level = excluded.level, model_version = excluded.model_version,
                    prior_weight = excluded.prior_weight, reasons = excluded.reasons, features = excluded.features,
                    queued_at = excluded.queued_at, scored_at = excluded.scored_at, card_version = excluded.card_version,
                    order_version = excluded.order_version, told_fraud = excluded.told_fraud,
                    -- The score before any fraud label (migration 0098): moved by a new version of the order (an edit, its
                    -- card) that changed what the score read, scored with no label known now or at the scoring before, never
                    -- by a label's own scoring again. Why not any new version (until 8 Dec 2026): the order's updated_at
                    -- moves with every tag (ours among them), so a dispute won after one took the win's own scoring, by
                    -- a version that may have trained on the chargeback, for the score before the label.
                    -- A row from before the migration has none: its own are they.
                    (unlabelled_score, unlabelled_model_version, unlabelled_scored_at) = (
                      SELECT CASE WHEN m.moved THEN excluded.score ELSE coalesce(risk_scores.unlabelled_score, risk_scores.score) END,
                             CASE WHEN m.moved THEN excluded.model_version WHEN risk_scores.unlabelled_scored_at IS NULL THEN risk_scores.model_version
                                  ELSE risk_scores.unlabelled_model_version END,
                             CASE WHEN m.moved THEN excluded.scored_at ELSE coalesce(risk_scores.unlabelled_scored_at, risk_scores.scored_at) END
                      FROM (SELECT NOT excluded.told_fraud AND NOT risk_scores.told_fraud
                                   AND (excluded.features IS DISTINCT FROM risk_scores.features OR excluded.card_version IS DISTINCT FROM risk_scores.card_version)
                                   AS moved) m),
                    reviewed_at = CASE WHEN array_position(ARRAY['LOW', 'MEDIUM', 'HIGH'], excluded.level)
                                            > array_position(ARRAY['LOW', 'MEDIUM', 'HIGH'], coalesce(risk_scores.reviewed_level, 'HIGH'))
                                       THEN NULL ELSE risk_scores.reviewed_at END
                """, store.ShopId, _orders.ToArray(), _scores.ToArray(), _levels.ToArray(), _versions.ToArray(), _priorWeights.ToArray(),
                _reasons.ToArray(), _features.ToArray(), _queued.ToArray(), now, Sql.Array(_cards.ToArray(), NpgsqlTypes.NpgsqlDbType.TimestampTz),
                Sql.Array(_orderVersions.ToArray(), NpgsqlTypes.NpgsqlDbType.TimestampTz), _toldFraud.ToArray());
        }
    }

    /// <summary>
    /// The release version's assessments of the batch, or why it failed: its failures count against its release (the
    /// canary's decisions say so and keep the served score), never against the active version's breaker.
    /// </summary>
    private (Dictionary<long, RiskAssessment>? Assessments, string? Failure) Release(RiskRelease? release, long[] scored,
        Dictionary<long, float[]> features, string currency)
    {
        if (release is null) return (null, null);
        if (release.Model is null) return (null, release.LoadError ?? "no model file");
        try
        {
            var assessed = RiskModels.Assess(scored.Select(id => features[id]).ToList(), currency, release.Model);
            return (scored.Zip(assessed).ToDictionary(p => p.First, p => p.Second), null);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            logger.LogWarning("Risk version {Version} in {Stage} failed: {Message}", release.Version, release.Stage, e.Message);
            return (null, $"{e.GetType().Name}: {e.Message}");
        }
    }

    /// <summary>
    /// An order that has just become HIGH (new, or raised from a lower level), when the merchant holds HIGH orders: records
    /// that its fulfillment is to be held (the hold job reads its fulfillment orders after this commits), or, for a valued
    /// customer the merchant does not hold, that it was not held and why. An order gets one hold decision, whatever later
    /// scores say. A customer is valued by her earlier orders that stood: until 5 Dec 2026 her cancelled and test orders, and
    /// those labelled fraud, counted too, so a buyer whose earlier orders were all confirmed fraud read as valued and was not
    /// held. (The model's features count the same earlier orders since 5 Dec 2026, as of the order's time.) An earlier order
    /// stands only once it is <see cref="ValuedAfterDays"/> days older than this one and is not flagged and still undecided:
    /// until 6 Dec 2026 a stolen card's 1,200 order ten minutes before made its next HIGH order a valued customer's, left unheld,
    /// and so did a spree of five orders in an afternoon. Older by when it was placed (<see cref="StoreData.OrderTime"/>): a
    /// migrated store's loyal customer, whose years of orders were imported yesterday, is valued (until 7 Dec 2026 the import's
    /// day made them all too recent, and her next HIGH order was held). The customer's orders are found by her index
    /// (orders_customer_time_idx) or her email; the creation bound only keeps out orders created after this one.
    /// </summary>
    /// <param name="again">Whether a hold released by an earlier score at LOW (nobody approved the order) is decided anew. A
    /// release still waiting for the hold job (<c>to_release</c>: no release call queued yet) is called off instead, and the
    /// hold stays as it was: until 5 Dec 2026 an order that went HIGH, LOW and HIGH again before the job ran was released and
    /// left at HIGH with no hold.</param>
    /// <param name="fraud">The order is labelled fraud (a reviewer's verdict, a chargeback, a cancellation for fraud): held even for a valued customer.</param>
    private static bool Hold(StoreWriter store, RiskHoldSettings holding, long orderId, DateTimeOffset now, bool again, bool fraud = false)
    {
        if (!holding.HoldHigh) return false;
        store.Add($$"""
            INSERT INTO risk_holds (shop_id, order_id, state, earlier_orders, earlier_spend, decided_at, updated_at)
            SELECT $1, $2, CASE WHEN NOT $7 AND (e.n >= $5 OR e.spend >= $6) THEN 'not_held_valued' ELSE 'to_hold' END, e.n, e.spend, $3, $3
            FROM orders t CROSS JOIN LATERAL (
                SELECT count(*)::int AS n, round(coalesce(sum(p.total_price), 0), 2) AS spend
                FROM orders p
                WHERE p.shop_id = t.shop_id
                  AND ((t.customer_id IS NOT NULL AND p.customer_id = t.customer_id)
                    OR (t.customer_id IS NULL AND t.email IS NOT NULL AND lower(p.email) = lower(t.email)))
                  AND NOT p.test AND p.cancelled_at IS NULL
                  AND p.id <> t.id AND p.created_at <= t.created_at AND {{StoreData.OrderTime.Placed("p")}} <= t.created_at - make_interval(days => $8)
                  AND NOT EXISTS (SELECT 1 FROM risk_labels l WHERE l.shop_id = p.shop_id AND l.order_id = p.id AND l.fraud)
                  AND NOT EXISTS (SELECT 1 FROM risk_scores s WHERE s.shop_id = p.shop_id AND s.order_id = p.id
                                  AND s.level IN ('MEDIUM', 'HIGH') AND s.reviewed_at IS NULL)) e
            WHERE t.shop_id = $1 AND t.id = $2
            ON CONFLICT (shop_id, order_id) DO UPDATE SET
              state = CASE risk_holds.state WHEN 'to_release' THEN 'held' ELSE excluded.state END,
              earlier_orders = CASE risk_holds.state WHEN 'to_release' THEN risk_holds.earlier_orders ELSE excluded.earlier_orders END,
              earlier_spend = CASE risk_holds.state WHEN 'to_release' THEN risk_holds.earlier_spend ELSE excluded.earlier_spend END,
              decided_at = CASE risk_holds.state WHEN 'to_release' THEN risk_holds.decided_at ELSE excluded.decided_at END,
              release_reason = NULL, updated_at = excluded.updated_at
            WHERE $4 AND (risk_holds.state = 'released' OR risk_holds.state = 'to_release' AND excluded.state = 'to_hold')
            """, store.ShopId, orderId, now, again, holding.ValuedMinOrders, holding.ValuedMinSpend, holding.HoldValued || fraud, ValuedAfterDays);
        return true;
    }

    /// <summary>A reviewer's fraud verdict on an order with no hold decision yet, when the merchant holds HIGH orders: held, valued customer or not.</summary>
    internal static bool HoldFraudNeverHeld(StoreWriter store, RiskHoldSettings holding, long orderId, DateTimeOffset now) =>
        Hold(store, holding, orderId, now, again: false, fraud: true);

    /// <summary>
    /// An order with a fraud label new to it (<c>fraudNews</c> in the scoring), when the merchant holds HIGH orders (Shopify
    /// is told HIGH): held as a reviewer's fraud verdict holds it, whatever its level, valued customer or not. A hold released
    /// or spared is placed again (<see cref="RiskHolds.HoldOnFraudSql"/>); an order never held is held.
    /// </summary>
    private static bool HoldKnownFraud(StoreWriter store, RiskHoldSettings holding, long orderId, DateTimeOffset now)
    {
        if (!holding.HoldHigh) return false;
        store.Add(RiskHolds.HoldOnFraudSql, store.ShopId, orderId, now);
        // An order with no hold decision yet: HoldOnFraudSql moved every other to be held.
        Hold(store, holding, orderId, now, again: false, fraud: true);
        return true;
    }

    /// <summary>
    /// How much older than the order an earlier one must be to count towards a valued customer: the 30 days the rule prior
    /// asks of a returning customer, by which a stolen card's first chargebacks and its owner's complaints have begun to arrive.
    /// </summary>
    public const int ValuedAfterDays = 30;

    /// <summary>
    /// The assessment Shopify shows on the order (level and up to 20 facts) and our tag, swapped when the level changed. Each
    /// call's key names the scoring (<paramref name="scoredAt"/>), not the change of level: keyed by the change, an order
    /// that went back to an earlier level (MEDIUM, HIGH, MEDIUM) had the later swap taken for the earlier one and written
    /// nothing, and was left with no tag of ours, or the wrong one.
    /// </summary>
    /// <param name="reopened">The score is above the level a reviewer decided the order at: it is back in the queue (see
    /// <see cref="ScoreRows"/>), so the tag saying the decision goes with the old level's.</param>
    /// <param name="knownFraud">Why the order is labelled fraud (a reviewer's verdict, a chargeback, its cancellation), or
    /// null: see <see cref="AssessmentCall"/>. The level tag still says what the model scored.</param>
    public static IEnumerable<OutboxCall> ShopifyCalls(long orderId, string level, string? previousLevel, RiskAssessment assessment, DateTimeOffset scoredAt,
        bool reopened = false, string? knownFraud = null)
    {
        var at = scoredAt.UtcTicks.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var gid = Gid.Of("Order", orderId);
        yield return AssessmentCall(orderId, level, assessment, knownFraud is null ? null : (KnownFraudFact(knownFraud), true), scoredAt, $"risk:{orderId}:{level}:{at}");
        if (previousLevel is not null)
            yield return new OutboxCall(OutboxOperation.TagsRemove, gid,
                new { id = gid, tags = reopened ? [TagPrefix + previousLevel.ToLowerInvariant(), .. Review.ReviewStore.DecisionTags] : new[] { TagPrefix + previousLevel.ToLowerInvariant() } },
                $"risk-untag:{orderId}:{previousLevel}:{level}:{at}");
        yield return new OutboxCall(OutboxOperation.TagsAdd, gid, new { id = gid, tags = new[] { TagPrefix + level.ToLowerInvariant() } },
            $"risk-tag:{orderId}:{level}:{at}");
    }

    /// <summary>
    /// orderRiskAssessmentCreate: the level and the reasons as facts, and the score. With a <paramref name="verdict"/> its fact
    /// comes first, and a fraud one sends HIGH whatever the score. Why: Shopify shows the latest assessment, and a merchant's
    /// Flow may capture or fulfil LOW orders; until 5 Dec 2026 an order a reviewer marked as fraud kept the level it was
    /// scored at (MEDIUM), and an edit scored LOW afterwards told Shopify it was low risk.
    /// </summary>
    /// <param name="at">When it was scored or decided, said in the score's fact. Why: it makes each assessment its own, so the
    /// check before a resend (<see cref="OutboxOperation.OrderRiskAssessmentCreate"/>) finds this one and no earlier one;
    /// until 5 Dec 2026 an order back at an earlier level with the same reasons (HIGH, MEDIUM, HIGH) whose call was lost on
    /// the way was taken as applied for the first HIGH, and Shopify kept MEDIUM.</param>
    public static OutboxCall AssessmentCall(long orderId, string level, RiskAssessment assessment, (string Text, bool Fraud)? verdict, DateTimeOffset at, string key)
    {
        var gid = Gid.Of("Order", orderId);
        var facts = assessment.Reasons.Take(verdict is null ? 19 : 18).Select(r => new { description = Fact(r.Text), sentiment = r.Sentiment }).ToList();
        if (verdict is { } v) facts.Insert(0, new { description = Fact(v.Text), sentiment = v.Fraud ? "NEGATIVE" : "POSITIVE" });
        if (facts.Count == 0) facts.Add(new { description = "Nothing unusual about this order", sentiment = "POSITIVE" });
        facts.Add(new { description = string.Create(System.Globalization.CultureInfo.InvariantCulture,
            $"PluginApp risk score {assessment.Score * 100:0}% ({level}), {at.UtcDateTime:yyyy-MM-dd HH:mm:ss} UTC"), sentiment = "NEUTRAL" });
        return new OutboxCall(OutboxOperation.OrderRiskAssessmentCreate, gid,
            new { input = new { orderId = gid, riskLevel = verdict is { Fraud: true } ? "HIGH" : level, facts } }, key);
    }

    /// <summary>Shopify keeps a fact's first 256 characters.</summary>
    public const int FactLength = 256;

    /// <summary>
    /// A fact's words as Shopify will keep them: longer than <see cref="FactLength"/> characters (Unicode code points), cut
    /// and ended with "…". Why: Shopify cuts them itself, and the check before a resend compares the facts it reads back
    /// with the ones sent; a cut fact never matched, and a call lost on the way would have added a second assessment.
    /// </summary>
    public static string Fact(string text)
    {
        var runes = text.EnumerateRunes().Take(FactLength + 1).ToList();
        return runes.Count <= FactLength ? text : string.Concat(runes.Take(FactLength - 1).Select(r => r.ToString())) + "…";
    }

    /// <summary>The fact a fraud label gives, from its detail ("marked as fraud by Ada", "cancelled for fraud", a chargeback).</summary>
    public static string KnownFraudFact(string detail) => "Known fraud: " + detail;

    /// <summary>LOW, MEDIUM, HIGH in order, as the upsert of <see cref="ScoreRows"/> ranks them.</summary>
    private static int Rank(string level) => Array.IndexOf(Levels, level);
    private static readonly string[] Levels = ["LOW", "MEDIUM", "HIGH"];

    /// <returns>The shop's thresholds, hold settings and currency; each already scored order's level and, when a reviewer
    /// decided it, the level it was decided at; each order labelled fraud, with its latest fraud label's detail, and the orders whose goods may still be stopped
    /// (RiskQueue.StillToShip). Why the scores are locked until the batch commits: a reviewer's decision
    /// (ReviewStore.DecideAsync locks the same row) landing between this read and the new score would leave the decision's
    /// tag on an order the new score puts back in the queue, or have this batch's calls undo a decision made after it.</returns>
    private static async Task<(RiskThresholds, RiskHoldSettings, string, Dictionary<long, (string? Level, string? DecidedAt, bool ToldFraud, bool MarkedFraud)>, Dictionary<long, string>, HashSet<long>)> ContextAsync(NpgsqlConnection conn, NpgsqlTransaction tx, long shopId,
        IEnumerable<long> orderIds, CancellationToken ct)
    {
        await using var batch = new NpgsqlBatch(conn, tx)
        {
            BatchCommands =
            {
                new NpgsqlBatchCommand($"SELECT coalesce({ShopCurrency.Of("$1")}, '')")
                    { Parameters = { Sql.Param(shopId) } },
                new NpgsqlBatchCommand("SELECT medium_from, high_from, hold_high, valued_min_orders, valued_min_spend, hold_valued FROM risk_settings WHERE shop_id = $1") { Parameters = { Sql.Param(shopId) } },
                new NpgsqlBatchCommand(PreviousScoresSql)
                    { Parameters = { Sql.Param(shopId), Sql.Param(orderIds.ToArray()) } },
                new NpgsqlBatchCommand("SELECT DISTINCT ON (order_id) order_id, coalesce(detail, source) FROM risk_labels WHERE shop_id = $1 AND order_id = ANY($2) AND fraud ORDER BY order_id, labelled_at DESC")
                    { Parameters = { Sql.Param(shopId), Sql.Param(orderIds.ToArray()) } },
                new NpgsqlBatchCommand($"""
                    SELECT o.id FROM orders o WHERE o.shop_id = $1 AND o.id = ANY($2) AND {RiskQueue.StillToShip("o")}
                    """) { Parameters = { Sql.Param(shopId), Sql.Param(orderIds.ToArray()) } },
            },
        };
        await using var r = await batch.ExecuteReaderAsync(ct);
        var currency = await r.ReadAsync(ct) ? r.GetString(0) : "";
        await r.NextResultAsync(ct);
        var (thresholds, holding) = await r.ReadAsync(ct)
            ? (new RiskThresholds(r.GetDouble(0), r.GetDouble(1)), RiskHoldSettings.Read(r, 2, currency))
            : (RiskThresholds.Default, RiskHoldSettings.Default(currency));
        await r.NextResultAsync(ct);
        var previous = new Dictionary<long, (string? Level, string? DecidedAt, bool ToldFraud, bool MarkedFraud)>();
        while (await r.ReadAsync(ct)) previous[r.GetInt64(0)] = (r.GetString(1), r.IsDBNull(2) ? null : r.GetString(2), r.GetBoolean(3), r.GetBoolean(4));
        await r.NextResultAsync(ct);
        var fraudLabels = new Dictionary<long, string>();
        while (await r.ReadAsync(ct)) fraudLabels[r.GetInt64(0)] = r.GetString(1);
        await r.NextResultAsync(ct);
        var toShip = new HashSet<long>();
        while (await r.ReadAsync(ct)) toShip.Add(r.GetInt64(0));
        return (thresholds, holding, currency, previous, fraudLabels, toShip);
    }
}
