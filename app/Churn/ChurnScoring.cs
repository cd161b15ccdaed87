using System.Globalization;
using System.Text.Json;
using Hangfire;
using Microsoft.Extensions.Options;
using Npgsql;
using PluginApp.Governance;
using PluginApp.Data;
using PluginApp.Jobs;
using PluginApp.Ml.Churn;
using PluginApp.Outbox;
using PluginApp.StoreData;
using PluginApp.Training;
using PluginApp.Admin.Switches;

namespace PluginApp.Churn;

/// <summary>Queues a shop's churn scoring (after a churn model becomes active, and daily for every shop with one).</summary>
public sealed class ChurnScheduler(IBackgroundJobClient jobs)
{
    public void ScoreSoon(long shopId) => jobs.Enqueue<ChurnScoringJob>(j => j.ScoreShopAsync(shopId, CancellationToken.None));
}

/// <summary>
/// Scores every customer of a shop with its active churn model, puts each in a segment, and for each customer whose segment
/// changed queues, in the same transaction, the Shopify calls that say so: our other segment tags removed, the new one added
/// (only tags with <see cref="ChurnOptions.TagPrefix"/>; the merchant's are never named), and the metafields churn_probability,
/// predicted_value and churn_segment set, several customers per metafieldsSet call. A customer whose segment is unchanged
/// costs Shopify nothing. Customers erased by customers/redact are not scored and their rows go.
/// </summary>
public sealed class ChurnScoringJob(NpgsqlDataSource db, ModelRegistry registry, AiFeatureSwitches switches, IOptions<ChurnOptions> options,
    IOptions<GovernanceOptions> governance, TimeProvider clock, OutboxScheduler outbox, ILogger<ChurnScoringJob> logger)
{
    public const string Name = "churn-segments";

    /// <summary>Churn segments as a feature the merchant can switch off: no scoring, no new segments written (a departed customer's queued cleanup still goes).</summary>
    public static readonly AiFeature Switch = new(Name, "Churn segments",
        "Scores every customer's churn risk and value, and writes their segment to Shopify as a customer tag and metafields.", ["nothing"])
    {
        OffMeaning = new Dictionary<string, string> { ["nothing"] = "no new scores and no new segments written; the tags last written stay until you turn it on, except that ours already queued for removal from customers no longer scored are still removed" },
        // Why not the request's token: a merchant who closes the page at once must not leave the calls queued.
        WhenSwitchedOff = (services, shopId, _) => services.GetRequiredService<ChurnScoringJob>().CancelQueuedCallsAsync(shopId, CancellationToken.None),
        // Why at once: the customers whose calls were dropped when it was switched off get them again from the next run.
        WhenSwitchedOn = (services, shopId) => services.GetRequiredService<ChurnScheduler>().ScoreSoon(shopId),
    };

    /// <summary>
    /// Switched off, the tag and metafield calls queued and not yet sent are dropped: a large store's first run queues hours
    /// of them (two tag calls a customer, under Shopify's rate limit), and until 4 Dec they went on changing customers after
    /// the merchant had switched churn off. A call being sent at that moment goes. The customers named in a dropped call are
    /// marked as not written (synced_segment NULL), so a run after switching on queues their segment again.
    /// </summary>
    /// <returns>How many calls were dropped.</returns>
    public async Task<int> CancelQueuedCallsAsync(long shopId, CancellationToken ct)
    {
        await using var conn = await db.OpenConnectionAsync(ct);
        await using var tx = await conn.BeginTransactionAsync(ct);
        // The scoring run's lock: a run queueing its changes finishes first, and its calls are dropped with the others.
        await LockShopAsync(conn, tx, shopId, ct);
        await using var cmd = new NpgsqlCommand($"""
            WITH dropped AS (
                DELETE FROM outbox_messages m
                WHERE m.shop_id = $1 AND {Outbox.OutboxWriter.Queued("m", "$2")}
                  AND (m.idempotency_key LIKE 'churn:%' OR m.idempotency_key LIKE 'churn-mf:%')
                  -- A departed customer's cleanup stays, as does its second sending: their row is gone, so no later run would
                  -- queue it again (until 7 Dec 2026 the second sending was dropped).
                  AND m.idempotency_key NOT LIKE '%:gone:%' AND m.idempotency_key NOT LIKE '%:gone-again:%'
                RETURNING m.idempotency_key, m.variables),
            customers AS (
                SELECT split_part(d.idempotency_key, ':', 2)::bigint AS customer_id FROM dropped d WHERE d.idempotency_key LIKE 'churn:%'
                UNION
                SELECT substring(mf->>'ownerId' FROM '[0-9]+$')::bigint FROM dropped d, jsonb_array_elements(d.variables->'metafields') mf
                WHERE d.idempotency_key LIKE 'churn-mf:%'),
            unsynced AS (
                UPDATE churn_scores s SET synced_segment = NULL FROM customers c WHERE s.shop_id = $1 AND s.customer_id = c.customer_id)
            SELECT count(*) FROM dropped
            """, conn, tx);
        cmd.Parameters.Add(Sql.Param(shopId));
        cmd.Parameters.Add(Sql.Param(clock.GetUtcNow()));
        var dropped = Convert.ToInt32(await cmd.ExecuteScalarAsync(ct), CultureInfo.InvariantCulture);
        await tx.CommitAsync(ct);
        logger.LogInformation("Shop {Shop}: churn segments switched off; {Calls} queued Shopify calls dropped", shopId, dropped);
        return dropped;
    }

    private static async Task LockShopAsync(NpgsqlConnection conn, NpgsqlTransaction tx, long shopId, CancellationToken ct)
    {
        await using var lockCmd = new NpgsqlCommand("SELECT pg_advisory_xact_lock(hashtextextended('churn-score:' || $1::text, 0))", conn, tx);
        lockCmd.Parameters.Add(Sql.Param(shopId));
        await lockCmd.ExecuteNonQueryAsync(ct);
    }

    /// <summary>Every customer of the store, on the long jobs' workers: queued by each churn version activated or staged, a release's
    /// settings saved and churn switched on, in the nightly training's hour too (until 8 Dec 2026 on the default queue, where the
    /// risk scoring and the outbox's Shopify calls waited behind it).</summary>
    [AutomaticRetry(Attempts = 3)]
    [Queue(JobQueues.Long)]
    public Task ScoreShopAsync(long shopId, CancellationToken ct) => ScoreShopAsync(shopId, null, ct);

    /// <param name="run">The run's ticket (the sequence churn_runs), taken before it reads anything: the order runs began in,
    /// whatever the instances' clocks say. Null takes the next; a test gives an earlier one to stand for a run that began first.</param>
    internal async Task ScoreShopAsync(long shopId, long? run, CancellationToken ct)
    {
        var o = options.Value;
        if (!await switches.IsOnAsync(shopId, Name, ct))
        {
            logger.LogInformation("Shop {Shop}: churn segments are switched off; not scoring", shopId);
            // Why here too: the drop at the switch runs once, on the instance that saved it; one that died first leaves its
            // calls queued, and the daily run finds them.
            await CancelQueuedCallsAsync(shopId, ct);
            return;
        }
        if (run is null)
        {
            await using var ticket = db.CreateCommand("SELECT nextval('churn_runs')");
            run = (long)(await ticket.ExecuteScalarAsync(ct))!;
        }
        if (await registry.LoadActiveAsync(shopId, ChurnModelTrainer.Kind, ct) is not var (version, artifact)) return;
        using var model = ChurnModel.Load(new MemoryStream(artifact));
        // As of now, never of the store's newest order: until 4 Dec a store's timeline ended at its newest order, so a quiet
        // spell (three weeks without an order) stopped every customer's recency from growing just when it mattered.
        var now = clock.GetUtcNow();
        var data = await ChurnHistories.LoadAsync(db, shopId, now, ct);
        var customers = data.Customers;
        var firstOrder = customers.ToDictionary(c => c.CustomerId, c => c.Orders.Where(x => x.IsPurchase).Select(x => (DateTime?)x.At).Min());
        var scored = model.Score(customers, data.Now).Where(p => double.IsFinite(p.ChurnProbability)).ToList();
        var highFrom = ChurnSegments.HighValueFrom(scored.Select(p => p.TotalSpend).ToList(), o.HighValueShare);
        // One set of lines per run, from the active version's view of the store's churn rate (a candidate's answers are compared on the same lines).
        var lines = ChurnLines.For(o, (await registry.ListAsync(shopId, ct)).FirstOrDefault(m => m.Kind == ChurnModelTrainer.Kind && m.Version == version)?.Metrics ?? default);
        var kind = model.Kind == ChurnModelKind.Discriminative ? "discriminative" : "probabilistic";
        var scoredAt = clock.GetUtcNow();
        var release = await ReleaseAsync(shopId, customers, data.Now, ct);
        // Each customer's served score: the canary's for the customers in its share (by a hash of the customer), else the active version's.
        var served = scored.Select(p => release is { Stage: "canary", Scores: { } c } && InCanary(shopId, p.CustomerId, release.Share) && c.TryGetValue(p.CustomerId, out var q)
            ? (P: q, Version: release.Version, Kind: release.Kind!) : (P: p, Version: version, Kind: kind)).ToList();

        var rows = served.Select(s =>
        {
            var p = s.P;
            var years = firstOrder[p.CustomerId] is { } first ? Math.Max(1, (data.Now - first).TotalDays / 365.25) : 1;
            return (Id: long.Parse(p.CustomerId, CultureInfo.InvariantCulture), P: p, s.Version, s.Kind,
                Segment: ChurnSegments.Of(p.ChurnProbability, p.TotalSpend >= highFrom && p.TotalSpend > 0, lines), Yearly: Money(p.TotalSpend / years) ?? 0m);
        }).ToList();

        await using var conn = await db.OpenConnectionAsync(ct);
        // The day the counts are the store's for: its own, in its time zone (the page's plot reads them by day).
        var day = StoreData.ShopDays.DayOf(now, data.Zone);
        await using var tx = await conn.BeginTransactionAsync(ct);
        // Why: two runs for one shop (a retry beside the daily sweep) would both see the same changes and queue them twice.
        await LockShopAsync(conn, tx, shopId, ct);
        // Why again, under the lock, and from the database rather than this instance's cache (which another instance's change
        // reaches a moment later): switched off while this run scored, its calls would come after those the switch dropped.
        if (!(await switches.GetAsync(shopId, ct)).Single(s => s.Feature == Name).Enabled) return;
        // Why: two runs at once (the daily sweep beside one a new version queued) each read the store before this lock; the one
        // that began first could write last, and its older segments (or older version) would move back every customer the other
        // had just moved, tags and metafields with them. A run that began before the last one written leaves: that one is newer.
        await using (var newer = new NpgsqlCommand("SELECT max(run) FROM churn_segment_days WHERE shop_id = $1", conn, tx))
        {
            newer.Parameters.Add(Sql.Param(shopId));
            if (await newer.ExecuteScalarAsync(ct) is long written && written > run)
            {
                logger.LogInformation("Shop {Shop}: a churn run that began later (run {Written}) has written its scores; this one (run {Run}) writes nothing", shopId, written, run);
                return;
            }
        }
        // Customers no longer scored (their every order cancelled, or marked a test): their row goes, and so do the tag and
        // metafields we wrote on them (QueueChangesAsync), but never a call naming a customer who was erased. Why "ever
        // queued" (changes > 0) and not "written": a switch-off unmarks a customer whose calls it dropped, though Shopify may
        // still hold an earlier segment's tag; removing what is not there does nothing.
        var gone = new List<long>();
        await using (var drop = new NpgsqlCommand($"""
            DELETE FROM churn_scores s WHERE s.shop_id = $1 AND NOT (s.customer_id = ANY($2))
            RETURNING s.customer_id, s.changes > 0
              AND NOT EXISTS (SELECT 1 FROM customers c WHERE c.shop_id = s.shop_id AND c.id = s.customer_id AND {StoreWriter.CustomerGone("c")})
            """, conn, tx))
        {
            drop.Parameters.Add(Sql.Param(shopId));
            drop.Parameters.Add(Sql.Param(scored.Select(p => long.Parse(p.CustomerId, CultureInfo.InvariantCulture)).ToArray()));
            await using var r = await drop.ExecuteReaderAsync(ct);
            while (await r.ReadAsync(ct)) if (r.GetBoolean(1)) gone.Add(r.GetInt64(0));
        }
        await using (var batch = new NpgsqlBatch(conn, tx))
        {
            var store = new StoreWriter(batch, shopId);
            // One statement for the whole store (columns as arrays), not one per customer.
            store.Add($"""
                INSERT INTO churn_scores (shop_id, customer_id, model_version, model_kind, churn_probability, probability_alive, expected_orders_30,
                    expected_orders_90, expected_orders_365, expected_value_365, orders, days_since_last, total_spend, yearly_spend, segment, reasons, scored_at)
                SELECT $1, u.customer_id, u.version, u.kind, u.p, u.alive, u.e30, u.e90, u.e365, u.value, u.orders, u.since, u.spend, u.yearly, u.segment, u.reasons::jsonb, $5
                FROM unnest($2::bigint[], $6::float8[], $7::float8[], $8::float8[], $9::float8[], $10::float8[], $11::numeric[], $12::int[], $13::float8[],
                            $14::numeric[], $15::numeric[], $16::text[], $17::text[], $3::int[], $4::text[])
                     AS u(customer_id, p, alive, e30, e90, e365, value, orders, since, spend, yearly, segment, reasons, version, kind)
                -- Read again under the lock: a customer erased (or deleted in Shopify) while this run scored (minutes, in a large
                -- store) gets no row back, and so no tag, metafield or decision naming her.
                WHERE NOT EXISTS (SELECT 1 FROM customers c WHERE c.shop_id = $1 AND c.id = u.customer_id AND {StoreWriter.CustomerGone("c")})
                ON CONFLICT (shop_id, customer_id) DO UPDATE SET model_version = excluded.model_version, model_kind = excluded.model_kind,
                    churn_probability = excluded.churn_probability, probability_alive = excluded.probability_alive,
                    expected_orders_30 = excluded.expected_orders_30, expected_orders_90 = excluded.expected_orders_90,
                    expected_orders_365 = excluded.expected_orders_365, expected_value_365 = excluded.expected_value_365, orders = excluded.orders,
                    days_since_last = excluded.days_since_last, total_spend = excluded.total_spend, yearly_spend = excluded.yearly_spend,
                    segment = excluded.segment, reasons = excluded.reasons, scored_at = excluded.scored_at
                """, shopId, rows.Select(r => r.Id).ToArray(), rows.Select(r => r.Version).ToArray(), rows.Select(r => r.Kind).ToArray(), scoredAt,
                rows.Select(r => r.P.ChurnProbability).ToArray(), rows.Select(r => Finite(r.P.ProbabilityAlive)).ToArray(),
                rows.Select(r => Finite(r.P.ExpectedOrders30)).ToArray(), rows.Select(r => Finite(r.P.ExpectedOrders90)).ToArray(),
                rows.Select(r => Finite(r.P.ExpectedOrders365)).ToArray(), rows.Select(r => Money(PredictedValue(r.P))).ToArray(),
                rows.Select(r => r.P.Orders).ToArray(), rows.Select(r => r.P.DaysSinceLastOrder).ToArray(),
                rows.Select(r => Money(r.P.TotalSpend) ?? 0m).ToArray(), rows.Select(r => r.Yearly).ToArray(), rows.Select(r => r.Segment).ToArray(),
                rows.Select(r => JsonSerializer.Serialize(r.P.Reasons.Select(x => new { feature = x.Feature, text = x.Text, contribution = Math.Round(x.Contribution, 3) }))).ToArray());
            store.Add("DELETE FROM churn_segment_days WHERE shop_id = $1 AND day = $2", shopId, day);
            await batch.ExecuteNonQueryAsync(ct);
        }
        // Every segment a row, an empty one too: the admin page reads the last run's counts from here (ChurnStore.SummarySql).
        await using (var days = new NpgsqlCommand("""
            INSERT INTO churn_segment_days (shop_id, day, segment, customers, value_at_risk, scored_at, run, lines)
            SELECT $1, $2, g.segment, count(s.customer_id), coalesce(sum(s.churn_probability::numeric * s.yearly_spend) FILTER (WHERE g.segment = ANY($3)), 0), $5, $6, $7::jsonb
            FROM unnest($4::text[]) AS g(segment) LEFT JOIN churn_scores s ON s.shop_id = $1 AND s.segment = g.segment
            GROUP BY g.segment
            """, conn, tx))
        {
            days.Parameters.Add(Sql.Param(shopId));
            days.Parameters.Add(Sql.Param(day));
            days.Parameters.Add(Sql.Param(ChurnSegments.All.Where(ChurnSegments.AtStake).ToArray()));
            days.Parameters.Add(Sql.Param(ChurnSegments.All));
            days.Parameters.Add(Sql.Param(scoredAt));
            days.Parameters.Add(Sql.Param(run.Value));
            // The lines it bucketed by: the page describes its segments by them, not by a version activated since.
            days.Parameters.Add(Sql.Param(JsonSerializer.Serialize(lines)));
            await days.ExecuteNonQueryAsync(ct);
        }
        // In shadow, every customer scored is a decision compared: the segment the candidate would have given beside the served one.
        var shadow = release is { Stage: "shadow" }
            ? rows.Select(r => (r.Id, Json: JsonSerializer.Serialize(release.Scores is { } c && c.TryGetValue(r.P.CustomerId, out var q)
                ? new { version = release.Version, subject = ChurnSegments.Of(q.ChurnProbability, q.TotalSpend >= highFrom && q.TotalSpend > 0, lines), churn_probability = Math.Round(q.ChurnProbability, 4) }
                : (object)new { version = release.Version, failed = release.Failed ?? "it gave no finite probability for this customer" }))).ToList()
            : [];
        // In canary, every customer of its share scored is a decision of the candidate's, whether or not their segment changed.
        var canary = release is { Stage: "canary" } ? rows.Where(r => InCanary(shopId, r.P.CustomerId, release.Share)).Select(r => r.Id).ToList() : [];
        var calls = await QueueChangesAsync(conn, tx, shopId, o, scoredAt, release is { Stage: "canary" } ? release : null, canary, shadow, gone, ct);
        await tx.CommitAsync(ct);
        if (calls > 0) outbox.Kick(shopId);
        logger.LogInformation("Shop {Shop}: {Customers} customers scored for churn with model v{Version}; {Calls} Shopify calls queued", shopId, scored.Count, version, calls);
    }

    /// <summary>
    /// Every shop with an active churn model, rescored daily: recency grows every day even when the model does not change.
    /// A shop that fails (a model file that cannot be read, a query that times out) is logged and passed over, so the shops
    /// after it are still scored that day.
    /// </summary>
    [AutomaticRetry(Attempts = 0)]
    [Queue(JobQueues.Long)]
    public async Task SweepAsync(CancellationToken ct)
    {
        var shops = new List<long>();
        await using (var cmd = db.CreateCommand($"""
            SELECT DISTINCT m.shop_id FROM models m JOIN shops s ON s.id = m.shop_id
            WHERE m.kind = $1 AND m.status = 'active' AND {StoreData.ShopStatus.Installed("s")} ORDER BY m.shop_id
            """))
        {
            cmd.Parameters.Add(Sql.Param(ChurnModelTrainer.Kind));
            await using var r = await cmd.ExecuteReaderAsync(ct);
            while (await r.ReadAsync(ct)) shops.Add(r.GetInt64(0));
        }
        foreach (var shop in shops)
        {
            try { await ScoreShopAsync(shop, ct); }
            catch (Exception e) when (e is not OperationCanceledException) { logger.LogError(e, "Shop {Shop}: churn scoring failed; the sweep goes on to the next shop", shop); }
        }
    }

    /// <summary>A churn version in shadow or canary, with its scores of the same customers, or why it could not score them.</summary>
    private sealed record Release(int Version, string Stage, double Share, Dictionary<string, ChurnPrediction>? Scores, string? Kind, string? Failed);

    private async Task<Release?> ReleaseAsync(long shopId, IReadOnlyList<CustomerHistory> customers, DateTime now, CancellationToken ct)
    {
        if (await registry.LoadReleaseAsync(shopId, ChurnModelTrainer.Kind, ct) is not { } r) return null;
        var share = r.Stage == "canary" ? (await ReleaseSettings.GetAsync(db, shopId, ChurnModelTrainer.Kind, governance.Value, ct)).CanaryShare : 0;
        try
        {
            using var candidate = ChurnModel.Load(new MemoryStream(r.Artifact));
            var scores = candidate.Score(customers, now).Where(p => double.IsFinite(p.ChurnProbability)).ToDictionary(p => p.CustomerId);
            return new Release(r.Version, r.Stage, share, scores, candidate.Kind == ChurnModelKind.Discriminative ? "discriminative" : "probabilistic", null);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            logger.LogWarning("Shop {Shop}: churn version {Version} in {Stage} failed: {Message}", shopId, r.Version, r.Stage, e.Message);
            return new Release(r.Version, r.Stage, share, null, null, $"{e.GetType().Name}: {e.Message}");
        }
    }

    /// <summary>Whether a customer is in the canary's share: a hash of the customer, so they keep one version from run to run.</summary>
    public static bool InCanary(long shopId, string customerId, double share) =>
        PluginApp.Experiments.Assignment.Bucket(shopId.ToString(CultureInfo.InvariantCulture), "u:" + customerId, "release:" + ChurnModelTrainer.Kind) < share;

    private static async Task<int> QueueChangesAsync(NpgsqlConnection conn, NpgsqlTransaction tx, long shopId, ChurnOptions o, DateTimeOffset now,
        Release? canary, List<long> inCanary, List<(long Id, string Json)> shadow, List<long> gone, CancellationToken ct)
    {
        var changed = new List<(long Customer, string Segment, double Probability, decimal? Value, int Change)>();
        // A customer whose latest tag calls failed for good without Shopify refusing them (an outage longer than the outbox's
        // attempts): her segment reads as unwritten again, so this run writes it anew. Why: it read as written, and she kept
        // her old tag, or none, until her segment next changed (until 7 Dec 2026). A refused call (the customer merged or
        // deleted in Shopify) is not sent again. Found from the shop's failed calls (outbox_failed_idx), few on any day.
        await using (var cmd = new NpgsqlCommand("""
            UPDATE churn_scores s SET synced_segment = NULL
            FROM (SELECT DISTINCT split_part(m.idempotency_key, ':', 2)::bigint AS customer_id, split_part(m.idempotency_key, ':', 3)::int AS change
                  FROM outbox_messages m
                  WHERE m.shop_id = $1 AND m.failed_at IS NOT NULL AND m.outcome = 'unknown' AND m.operation IN ('tagsAdd', 'tagsRemove')
                    AND m.idempotency_key ~ '^churn:[0-9]+:[0-9]+:') f
            WHERE s.shop_id = $1 AND s.customer_id = f.customer_id AND s.changes = f.change AND s.synced_segment = s.segment
            """, conn, tx))
        {
            cmd.Parameters.Add(Sql.Param(shopId));
            await cmd.ExecuteNonQueryAsync(ct);
        }
        await using (var cmd = new NpgsqlCommand("""
            UPDATE churn_scores SET synced_segment = segment, changes = changes + 1, synced_probability = churn_probability, synced_value = expected_value_365
            WHERE shop_id = $1 AND segment IS DISTINCT FROM synced_segment
            RETURNING customer_id, segment, churn_probability, expected_value_365, changes
            """, conn, tx))
        {
            cmd.Parameters.Add(Sql.Param(shopId));
            await using var r = await cmd.ExecuteReaderAsync(ct);
            while (await r.ReadAsync(ct))
                changed.Add((r.GetInt64(0), r.GetString(1), r.GetDouble(2), r.IsDBNull(3) ? null : r.GetDecimal(3), r.GetInt32(4)));
        }
        // The same segment, but the probability or the value moved enough since they were written: the metafields only (a Flow
        // rule on churn_probability reads them; until 5 Dec 2026 they kept the values of the last change of segment).
        var moved = new List<(long Customer, string Segment, double Probability, decimal? Value)>();
        await using (var cmd = new NpgsqlCommand("""
            UPDATE churn_scores SET synced_probability = churn_probability, synced_value = expected_value_365
            WHERE shop_id = $1 AND synced_segment = segment
              AND (synced_probability IS NULL OR abs(churn_probability - synced_probability) >= $2
                   OR abs(coalesce(expected_value_365, 0) - coalesce(synced_value, 0)) >= greatest(1, $3 * abs(coalesce(synced_value, 0))))
            RETURNING customer_id, segment, churn_probability, expected_value_365
            """, conn, tx))
        {
            cmd.Parameters.Add(Sql.Param(shopId));
            cmd.Parameters.Add(Sql.Param(o.MetafieldProbabilityStep));
            cmd.Parameters.Add(Sql.Param((decimal)o.MetafieldValueStep));
            await using var r = await cmd.ExecuteReaderAsync(ct);
            while (await r.ReadAsync(ct)) moved.Add((r.GetInt64(0), r.GetString(1), r.GetDouble(2), r.IsDBNull(3) ? null : r.GetDecimal(3)));
        }
        // A metafieldsSet of several customers that Shopify refused for good: it sets all of a call or none, so one customer it
        // refuses (merged or deleted in Shopify meanwhile) kept the others' metafields unwritten, and as their scores read as
        // written, no later run sent them again (until 6 Dec 2026). Each customer of such a call is sent again in a call of
        // their own, with their values now, once (its key names the refused call); a call of one customer is not split again.
        // Likewise, since 7 Dec 2026, any metafieldsSet that failed for good without Shopify refusing it (an outage longer
        // than the outbox's attempts), one customer or many: its values read as written, and a customer whose segment had
        // not changed kept Shopify's older probability until it moved again from the unwritten one.
        var alone = new List<(long Refused, long Customer, string Segment, double Probability, decimal? Value)>();
        await using (var cmd = new NpgsqlCommand("""
            SELECT m.id, s.customer_id, s.segment, s.churn_probability, s.expected_value_365
            FROM outbox_messages m
            CROSS JOIN LATERAL (SELECT DISTINCT substring(mf->>'ownerId' FROM '[0-9]+$')::bigint AS customer_id
                                FROM jsonb_array_elements(m.variables->'metafields') mf) c
            JOIN churn_scores s ON s.shop_id = m.shop_id AND s.customer_id = c.customer_id
            WHERE m.shop_id = $1 AND m.failed_at IS NOT NULL AND m.operation = 'metafieldsSet'
              AND (m.outcome = 'refused' AND jsonb_array_length(m.variables->'metafields') > $2 OR m.outcome = 'unknown')
              AND m.idempotency_key LIKE 'churn-mf:%' AND m.idempotency_key NOT LIKE 'churn-mf:%:alone:%'
              AND NOT EXISTS (SELECT 1 FROM outbox_messages a WHERE a.shop_id = m.shop_id AND a.idempotency_key = 'churn-mf:' || c.customer_id || ':alone:' || m.id)
            ORDER BY m.id, s.customer_id
            """, conn, tx))
        {
            cmd.Parameters.Add(Sql.Param(shopId));
            cmd.Parameters.Add(Sql.Param(ChurnMetafieldKeys.Length));
            await using var r = await cmd.ExecuteReaderAsync(ct);
            while (await r.ReadAsync(ct))
                alone.Add((r.GetInt64(0), r.GetInt64(1), r.GetString(2), r.GetDouble(3), r.IsDBNull(4) ? null : r.GetDecimal(4)));
        }
        // The cleanup of a customer no longer scored (our tag and metafields removed) that failed for good without Shopify
        // refusing it: her row is gone, so no later run would queue it again, and she kept our segment in Shopify for good
        // (until 7 Dec 2026). Sent again, once, while she is still not scored; an erased customer's failed calls keep nothing
        // of hers (the erasure emptied them), so they name no one here.
        // Keyed by the failed cleanup's run, so its two calls failing send one cleanup again.
        var goneAgain = new List<(string Run, long Customer)>();
        await using (var cmd = new NpgsqlCommand($"""
            SELECT DISTINCT split_part(m.idempotency_key, ':', 4), c.customer_id
            FROM outbox_messages m
            CROSS JOIN LATERAL (SELECT split_part(m.idempotency_key, ':', 2)::bigint WHERE m.operation = 'tagsRemove'
                                UNION SELECT substring(mf->>'ownerId' FROM '[0-9]+$')::bigint
                                FROM jsonb_array_elements(CASE WHEN m.operation = 'metafieldsDelete' THEN m.variables->'metafields' END) mf) c(customer_id)
            WHERE m.shop_id = $1 AND m.failed_at IS NOT NULL AND m.outcome = 'unknown'
              AND (m.operation = 'tagsRemove' AND m.idempotency_key ~ '^churn:[0-9]+:gone:[0-9]+:remove$' AND m.variables ? 'id'
                   OR m.operation = 'metafieldsDelete' AND m.idempotency_key ~ '^churn-mf:[0-9]+:gone:[0-9]+$')
              AND NOT EXISTS (SELECT 1 FROM churn_scores s WHERE s.shop_id = m.shop_id AND s.customer_id = c.customer_id)
              AND NOT EXISTS (SELECT 1 FROM customers cu WHERE cu.shop_id = m.shop_id AND cu.id = c.customer_id AND {StoreWriter.CustomerGone("cu")})
              AND NOT EXISTS (SELECT 1 FROM outbox_messages a WHERE a.shop_id = m.shop_id
                              AND a.idempotency_key = 'churn:' || c.customer_id || ':gone-again:' || split_part(m.idempotency_key, ':', 4))
            ORDER BY 1, 2
            """, conn, tx))
        {
            cmd.Parameters.Add(Sql.Param(shopId));
            await using var r = await cmd.ExecuteReaderAsync(ct);
            while (await r.ReadAsync(ct)) goneAgain.Add((r.GetString(0), r.GetInt64(1)));
        }
        if (changed.Count == 0 && moved.Count == 0 && alone.Count == 0 && shadow.Count == 0 && inCanary.Count == 0 && gone.Count == 0 && goneAgain.Count == 0) return 0;
        await using var batch = new NpgsqlBatch(conn, tx);
        var store = new StoreWriter(batch, shopId);
        // The decision log: one entry per customer whose segment changed (what was written to Shopify), with its reasons; in
        // a shadow stage one per customer scored, each with the candidate's segment beside it; in a canary stage one per
        // customer of its share scored, saying so. Why every one in the canary's share, not only those whose segment changed:
        // the canary ends after its number of decisions, and a store's segments change for a few customers a day, so counted
        // by changes it ran for months and held the kind's scheduled trainings all that time.
        DecisionLog.AddPartition(batch, now);
        batch.BatchCommands.Add(new NpgsqlBatchCommand("""
            INSERT INTO decisions (shop_id, decided_at, decision_id, kind, subject, path, fallback, model_kind, model_version, customer_id, output, reasons, shadow)
            SELECT c.shop_id, $2, 'churn:' || c.customer_id || ':' || c.changes || CASE WHEN c.customer_id = ANY($3) THEN ''
                                                                                     WHEN sh.customer_id IS NOT NULL THEN ':shadow:' || $6 ELSE ':canary:' || $6 END,
                   'churn', c.segment, c.model_kind, false, 'churn', c.model_version, c.customer_id,
                   jsonb_build_object('churn_probability', round(c.churn_probability::numeric, 4), 'expected_value_365', c.expected_value_365,
                                      'days_since_last', c.days_since_last, 'orders', c.orders)
                   || CASE WHEN $4::int IS NULL OR NOT (c.customer_id = ANY($7)) THEN '{}'::jsonb
                           WHEN c.model_version = $4 THEN jsonb_build_object('release', 'canary', 'candidate', $4)
                           ELSE jsonb_build_object('release', 'canary', 'candidate', $4, 'failed', $8::text) END,
                   ARRAY(SELECT r->>'text' FROM jsonb_array_elements(c.reasons) r), sh.shadow::jsonb
            FROM churn_scores c LEFT JOIN unnest($5::bigint[], $9::text[]) AS sh(customer_id, shadow) ON sh.customer_id = c.customer_id
            WHERE c.shop_id = $1 AND (c.customer_id = ANY($3) OR sh.customer_id IS NOT NULL OR c.customer_id = ANY($7))
            """)
        {
            Parameters =
            {
                Sql.Param(shopId), Sql.Param(now), Sql.Param(changed.Select(c => c.Customer).ToArray()),
                new NpgsqlParameter<int?> { TypedValue = canary?.Version, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Integer },
                Sql.Param(shadow.Select(s => s.Id).ToArray()), Sql.Param(now.UtcTicks.ToString(CultureInfo.InvariantCulture)),
                // The customers in the canary's share: theirs is the candidate's decision, or a failure of it.
                Sql.Param(inCanary.ToArray()),
                Sql.Text(canary?.Failed ?? "it gave no finite probability for this customer"), Sql.Param(shadow.Select(s => s.Json).ToArray()),
            },
        });
        var calls = 0;
        var ours = ChurnSegments.All.Select(s => o.TagPrefix + s).ToArray();
        // Why the run's time in each key: a customer who left the scores and came back starts counting changes again, and the
        // keys of their first life may still be in the outbox (completed), which would drop the new calls as copies.
        var run = now.UtcTicks.ToString(CultureInfo.InvariantCulture);
        foreach (var c in changed.OrderBy(c => c.Customer))
        {
            var gid = Gid.Of("Customer", c.Customer);
            OutboxWriter.Enqueue(store, new OutboxCall(OutboxOperation.TagsRemove, gid,
                new { id = gid, tags = ours.Where(t => t != o.TagPrefix + c.Segment).ToArray() }, $"churn:{c.Customer}:{c.Change}:{run}:remove"), now);
            OutboxWriter.Enqueue(store, new OutboxCall(OutboxOperation.TagsAdd, gid,
                new { id = gid, tags = new[] { o.TagPrefix + c.Segment } }, $"churn:{c.Customer}:{c.Change}:{run}:add"), now);
            calls += 2;
        }
        foreach (var customer in gone.Order())
        {
            var gid = Gid.Of("Customer", customer);
            OutboxWriter.Enqueue(store, new OutboxCall(OutboxOperation.TagsRemove, gid, new { id = gid, tags = ours }, $"churn:{customer}:gone:{run}:remove"), now);
            calls++;
        }
        foreach (var chunk in gone.Order().Chunk(o.MetafieldCustomersPerCall))
        {
            var metafields = chunk.SelectMany(c => ChurnMetafieldKeys.Select(key => new { ownerId = Gid.Of("Customer", c), @namespace = o.MetafieldNamespace, key })).ToArray();
            OutboxWriter.Enqueue(store, new OutboxCall(OutboxOperation.MetafieldsDelete, "churn-metafields", new { metafields }, $"churn-mf:{chunk[0]}:gone:{run}"), now);
            calls++;
        }
        foreach (var (failedRun, customer) in goneAgain)
        {
            var gid = Gid.Of("Customer", customer);
            OutboxWriter.Enqueue(store, new OutboxCall(OutboxOperation.TagsRemove, gid, new { id = gid, tags = ours }, $"churn:{customer}:gone-again:{failedRun}"), now);
            OutboxWriter.Enqueue(store, new OutboxCall(OutboxOperation.MetafieldsDelete, "churn-metafields",
                new { metafields = ChurnMetafieldKeys.Select(key => new { ownerId = gid, @namespace = o.MetafieldNamespace, key }).ToArray() },
                $"churn-mf:{customer}:gone-again:{failedRun}"), now);
            calls += 2;
        }
        // Why one resource key for all: batches for the same customer must land in the order they were decided.
        foreach (var chunk in changed.OrderBy(c => c.Customer).Chunk(o.MetafieldCustomersPerCall))
        {
            OutboxWriter.Enqueue(store, new OutboxCall(OutboxOperation.MetafieldsSet, "churn-metafields",
                new { metafields = chunk.SelectMany(c => Metafields(o, c.Customer, c.Probability, c.Value, c.Segment)).ToArray() },
                $"churn-mf:{chunk[0].Customer}:{chunk[0].Change}:{run}"), now);
            calls++;
        }
        foreach (var c in alone)
        {
            OutboxWriter.Enqueue(store, new OutboxCall(OutboxOperation.MetafieldsSet, "churn-metafields",
                new { metafields = Metafields(o, c.Customer, c.Probability, c.Value, c.Segment) }, $"churn-mf:{c.Customer}:alone:{c.Refused}"), now);
            calls++;
        }
        foreach (var chunk in moved.OrderBy(c => c.Customer).Chunk(o.MetafieldCustomersPerCall))
        {
            OutboxWriter.Enqueue(store, new OutboxCall(OutboxOperation.MetafieldsSet, "churn-metafields",
                new { metafields = chunk.SelectMany(c => Metafields(o, c.Customer, c.Probability, c.Value, c.Segment)).ToArray() },
                $"churn-mf:{chunk[0].Customer}:moved:{run}"), now);
            calls++;
        }
        await batch.ExecuteNonQueryAsync(ct);
        return calls;
    }

    /// <summary>The metafields churn writes on a customer: the probability, the predicted value, the segment.</summary>
    private static readonly string[] ChurnMetafieldKeys = ["churn_probability", "predicted_value", "churn_segment"];

    private static object[] Metafields(ChurnOptions o, long customer, double probability, decimal? value, string segment) =>
    [
        Metafield(o, customer, ChurnMetafieldKeys[0], "number_decimal", probability.ToString("0.0000", CultureInfo.InvariantCulture)),
        Metafield(o, customer, ChurnMetafieldKeys[1], "number_decimal", (value ?? 0m).ToString("0.00", CultureInfo.InvariantCulture)),
        Metafield(o, customer, ChurnMetafieldKeys[2], "single_line_text_field", segment),
    ];

    private static object Metafield(ChurnOptions o, long customer, string key, string type, string value) =>
        new { ownerId = Gid.Of("Customer", customer), @namespace = o.MetafieldNamespace, key, type, value };

    /// <summary>
    /// Gamma-Gamma's value when it was trusted, else what the customer kept per purchase day (spend less refunds, over the
    /// days they bought on) times their expected purchase days in a year. Why days: BG/NBD counts purchase days, and until
    /// 5 Dec 2026 the spend was divided by orders, so a customer who split a day's cart into three orders was worth a third.
    /// </summary>
    internal static double PredictedValue(ChurnPrediction p) =>
        p.ExpectedValue365 is { } v && double.IsFinite(v) ? v : p.PurchaseDays > 0 ? p.TotalSpend / p.PurchaseDays * Finite(p.ExpectedOrders365) : 0;

    private static double Finite(double v) => double.IsFinite(v) ? v : 0;

    private static decimal? Money(double v) => double.IsFinite(v) ? Math.Round((decimal)v, 2) : null;
}
