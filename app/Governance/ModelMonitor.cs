using System.Globalization;
using Hangfire;
using Npgsql;
using PluginApp.Data;
using PluginApp.Jobs;
using PluginApp.Experiments;
using PluginApp.Ml.Experiments;
using PluginApp.Ml.Monitoring;
using PluginApp.Training;

namespace PluginApp.Governance;

public sealed record DriftView(string DecisionKind, string Field, string Role, string ModelKind, int? ModelVersion, double Psi, int ReferenceN, int CurrentN,
    double? ReferenceMean, double? CurrentMean, string Reference, DateTimeOffset ComputedAt)
{
    public string Reading => Psi >= DriftResult.Major ? "major shift" : Psi >= DriftResult.Moderate ? "moderate shift" : "stable";
}

public sealed record AlertView(string ModelKind, string Metric, string Detail, int? ModelVersion, DateTimeOffset Since, DateTimeOffset RaisedAt,
    DateTimeOffset? ClearedAt);

/// <summary>
/// Daily, per shop: input and prediction drift of every model kind whose decisions carry numbers (risk, offers, churn),
/// from its logged decisions (the last week against the model's training window, or against the four weeks before when
/// the log holds too little of that window), and the business numbers the merchant judges the models by: revenue per
/// visitor against the upsell holdout, margin per visitor against the cart-offers control, the chargeback rate, and the
/// share of reviewed flagged orders that were good; and each model on the outcomes that arrived since it was trained
/// (<see cref="FreshLabels"/>). Each raises an alert that says what moved, by how much, since when
/// and with which model version, and clears it when it no longer holds.
/// </summary>
public sealed class ModelMonitor(NpgsqlDataSource db, ModelKinds kinds, ModelRegistry registry, ExperimentResults experiments, TimeProvider clock,
    ILogger<ModelMonitor> logger)
{
    public static readonly TimeSpan Current = TimeSpan.FromDays(7), Baseline = TimeSpan.FromDays(28);
    internal NpgsqlDataSource Db => db;
    public const int MinRows = 30, Sample = 5000, MinReferenceInTrainingWindow = 100;
    public const double ChargebackRateAlert = 0.01, ApprovedShareAlert = 0.8;
    public const int MinReviews = 10, MinOrdersForChargebacks = 100;

    [Queue(JobQueues.Long)]
    public async Task SweepAsync(CancellationToken ct)
    {
        var shops = new List<long>();
        await using (var cmd = db.CreateCommand($"SELECT id FROM shops WHERE {StoreData.ShopStatus.Installed()}"))
        await using (var r = await cmd.ExecuteReaderAsync(ct))
            while (await r.ReadAsync(ct)) shops.Add(r.GetInt64(0));
        foreach (var shop in shops)
        {
            try { await RunShopAsync(shop, ct); }
            catch (Exception e) when (e is NpgsqlException or InvalidOperationException) { logger.LogWarning("Monitoring shop {Shop} failed: {Message}", shop, e.Message); }
        }
    }

    public async Task RunShopAsync(long shopId, CancellationToken ct)
    {
        var now = clock.GetUtcNow();
        var models = await registry.ListAsync(shopId, ct);
        var open = new HashSet<(string Kind, string Metric)>();
        foreach (var kind in kinds.All.Where(k => k.DecisionKind is not null))
        {
            var active = models.FirstOrDefault(m => m.Kind == kind.Name && m.Status == "active");
            foreach (var alert in await DriftAsync(shopId, kind, active, now, ct)) open.Add(alert);
        }
        foreach (var alert in await BusinessAsync(shopId, models, now, ct)) open.Add(alert);
        var performance = await FreshLabels.MeasureAsync(db, shopId, models, now, ct);
        await FreshLabels.SaveAsync(db, shopId, performance, ct);
        foreach (var p in performance.Where(p => p.Metric == "fresh-average-precision" && p.HeldOut is { } h && p.Value < FreshLabels.RiskAlertShare * h))
        {
            open.Add((p.ModelKind, p.Metric));
            await RaiseAsync(shopId, p.ModelKind, p.Metric, p.ModelVersion, $"the order risk model finds fraud less well on fresh labels: {p.Detail}", now.AddDays(-90), now, ct);
        }
        // Whatever was open and no longer holds is cleared.
        await using var clear = db.CreateCommand("""
            UPDATE governance_alerts SET cleared_at = $2
            WHERE shop_id = $1 AND cleared_at IS NULL AND NOT ((model_kind || '|' || metric) = ANY($3))
            """);
        clear.Parameters.Add(Sql.Param(shopId));
        clear.Parameters.Add(Sql.Param(now));
        clear.Parameters.Add(Sql.Param(open.Select(a => a.Kind + "|" + a.Metric).ToArray()));
        await clear.ExecuteNonQueryAsync(ct);
    }

    private async Task<List<(string, string)>> DriftAsync(long shopId, ModelKind kind, ModelEntry? active, DateTimeOffset now, CancellationToken ct)
    {
        var from = now - Current;
        var (refFrom, refTo, reference) = (now - Current - Baseline, from, "the four weeks before");
        // The training window ends where the week compared begins: a version trained two days ago has a window running into
        // this week, and until 5 Dec 2026 the week was largely compared with itself, and a real shift raised nothing.
        if (active?.DataFrom is { } df && active.DataTo is { } dt && (dt < from ? dt : from) is var end && df < end
            && await CountAsync(shopId, kind.DecisionKind!, df, end, ct) >= MinReferenceInTrainingWindow)
            (refFrom, refTo, reference) = (df, end, $"version {active.Version}'s training window");
        var refValues = await ValuesAsync(shopId, kind, refFrom, refTo, ct);
        var curValues = await ValuesAsync(shopId, kind, from, now, ct);
        // Outputs are compared within the serving version only: another version's (or the rule prior's) scores differ by design,
        // and until 4 Dec a promotion read as an output shift. The reference is the version's own decisions of the four weeks
        // before; one promoted this week has none yet, and its outputs are not compared until it has.
        var version = active?.Version;
        var ownRef = await ValuesAsync(shopId, kind, now - Current - Baseline, from, ct, ofVersion: true, version);
        var ownCur = await ValuesAsync(shopId, kind, from, now, ct, ofVersion: true, version);
        foreach (var key in refValues.Keys.Where(k => k.Role == "prediction").ToList()) refValues.Remove(key);
        foreach (var key in curValues.Keys.Where(k => k.Role == "prediction").ToList()) curValues.Remove(key);
        foreach (var (key, list) in ownRef) if (key.Role == "prediction") refValues[key] = list;
        foreach (var (key, list) in ownCur) if (key.Role == "prediction") curValues[key] = list;
        var ownReference = version is { } v ? $"version {v}'s own decisions of the four weeks before" : "the rule prior's decisions of the four weeks before";
        var alerts = new List<(string, string)>();
        await using var batch = new NpgsqlBatch(await db.OpenConnectionAsync(ct));
        await using var conn = batch.Connection!;
        foreach (var (key, cur) in curValues)
        {
            if (!refValues.TryGetValue(key, out var refs) || refs.Count < MinRows || cur.Count < MinRows) continue;
            var d = Drift.Psi(refs, cur);
            if (!double.IsFinite(d.Psi)) continue;
            batch.BatchCommands.Add(new NpgsqlBatchCommand("""
                INSERT INTO model_drift (shop_id, decision_kind, field, role, model_kind, model_version, psi, reference_n, current_n, reference_mean, current_mean, reference, computed_at)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) ON CONFLICT DO NOTHING
                """)
            {
                Parameters =
                {
                    Sql.Param(shopId), Sql.Param(kind.DecisionKind), Sql.Param(key.Field), Sql.Param(key.Role), Sql.Param(kind.Name),
                    new NpgsqlParameter { Value = (object?)active?.Version ?? DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Integer },
                    Sql.Param(d.Psi), Sql.Param(d.ReferenceCount), Sql.Param(d.CurrentCount), Sql.Param(d.ReferenceMean), Sql.Param(d.CurrentMean),
                    Sql.Param(key.Role == "prediction" ? ownReference : reference), Sql.Param(now),
                },
            });
            if (d.Psi < DriftResult.Major) continue;
            var metric = $"drift:{key.Role}:{key.Field}";
            var what = key.Role == "input" ? $"the {kind.Title.ToLowerInvariant()}'s input '{key.Field}'" : $"the {kind.Title.ToLowerInvariant()}'s output '{key.Field}'";
            alerts.Add((kind.Name, metric));
            await RaiseAsync(shopId, kind.Name, metric, active?.Version, string.Create(CultureInfo.InvariantCulture,
                $"{what} moved: population stability index {d.Psi:0.00} (a major shift; above {DriftResult.Major} is major), mean {d.ReferenceMean:0.###} → {d.CurrentMean:0.###}, last 7 days ({d.CurrentCount} decisions) against {(key.Role == "prediction" ? ownReference : reference)} ({d.ReferenceCount})"),
                from, now, ct);
        }
        if (batch.BatchCommands.Count > 0) await batch.ExecuteNonQueryAsync(ct);
        return alerts;
    }

    private async Task<List<(string, string)>> BusinessAsync(long shopId, List<ModelEntry> models, DateTimeOffset now, CancellationToken ct)
    {
        var alerts = new List<(string, string)>();
        int? Version(string kind) => models.FirstOrDefault(m => m.Kind == kind && m.Status == "active")?.Version;

        // Revenue per visitor against the holdout, margin per visitor against the control: only the always-valid interval is read.
        foreach (var (key, modelKind, metric, words) in new[]
                 {
                     ("upsells", "recommender", "revenue-per-visitor", "with the recommender is below the holdout's (store bestsellers)"),
                     ("cart-offers", "intent", "offer-margin", "with cart offers is below the control's (shown nothing)"),
                 })
        {
            ExperimentReport report;
            try { report = await experiments.ReportAsync(shopId, key, ct, history: false); }
            catch (KeyNotFoundException) { continue; }
            // A stopped experiment's figures are frozen at its stop: read daily, they would raise the same alert for ever.
            if (!report.Settings.Running) continue;
            var measure = ExperimentResults.Wording(report.Settings.Metric, "", "").Metric;
            foreach (var lift in report.Today)
            {
                var c = lift.Comparison;
                // The page's own reading (ExperimentAnalysis.Outcome): no alert before each arm has the visitors it waits for.
                if (ExperimentAnalysis.Outcome(c) != ExperimentOutcome.TreatmentWorse) continue;
                alerts.Add((modelKind, metric));
                await RaiseAsync(shopId, modelKind, metric, Version(modelKind), string.Create(CultureInfo.InvariantCulture,
                    // Why the adjusted means: the difference and its interval are of them (each visitor's earlier spending taken into
                    // account, as on the Experiments page); until 6 Dec 2026 the raw means stood beside them, and did not add up.
                    $"{measure} {words}: {c.AdjustedTreatmentMean:0.00} against {c.AdjustedControlMean:0.00} per visitor{(c.CupedUsed ? " (adjusted for what each had spent before)" : "")}, difference {c.Difference:0.00} (always-valid 95 % interval {c.SequentialDifference.Low:0.00} to {c.SequentialDifference.High:0.00}), {c.TreatmentUnits} and {c.ControlUnits} visitors"),
                    report.From, now, ct);
            }
        }

        await using var cmd = db.CreateCommand("""
            SELECT (SELECT count(*) FROM orders WHERE shop_id = $1 AND created_at >= $2),
                   -- Chargebacks only, each order once: a Shopify Payments chargeback (not an inquiry; DisputeLabels) or a
                   -- Stripe dispute (not an early fraud warning; StripeChargeJob). Until 5 Dec 2026 every fraud label but a
                   -- reviewer's counted, once per source: a store that cancelled two orders for fraud, which is how it avoids
                   -- chargebacks, was told its chargeback rate was at the card networks' line.
                   (SELECT count(DISTINCT order_id) FROM risk_labels WHERE shop_id = $1 AND fraud AND labelled_at >= $2
                      AND (source = 'dispute' AND detail LIKE 'Shopify Payments chargeback %'
                           OR source = 'stripe' AND detail LIKE 'Stripe dispute%')),
                   (SELECT count(*) FROM review_decisions WHERE shop_id = $1 AND decision IN ('approve', 'fraud') AND decided_at >= $2),
                   (SELECT count(*) FROM review_decisions WHERE shop_id = $1 AND decision = 'approve' AND decided_at >= $2)
            """);
        cmd.Parameters.Add(Sql.Param(shopId));
        cmd.Parameters.Add(Sql.Param(now.AddDays(-30)));
        long orders, chargebacks, reviewed, approved;
        await using (var r = await cmd.ExecuteReaderAsync(ct))
        {
            await r.ReadAsync(ct);
            (orders, chargebacks, reviewed, approved) = (r.GetInt64(0), r.GetInt64(1), r.GetInt64(2), r.GetInt64(3));
        }
        if (orders >= MinOrdersForChargebacks && (double)chargebacks / orders >= ChargebackRateAlert)
        {
            alerts.Add(("risk", "chargeback-rate"));
            await RaiseAsync(shopId, "risk", "chargeback-rate", Version("risk"), string.Create(CultureInfo.InvariantCulture,
                $"chargeback rate {(double)chargebacks / orders:P2} over the last 30 days ({chargebacks} fraud chargebacks on {orders} orders), at or above the {ChargebackRateAlert:P0} card networks watch"),
                now.AddDays(-30), now, ct);
        }
        if (reviewed >= MinReviews && (double)approved / reviewed >= ApprovedShareAlert)
        {
            alerts.Add(("risk", "false-positive-rate"));
            await RaiseAsync(shopId, "risk", "false-positive-rate", Version("risk"), string.Create(CultureInfo.InvariantCulture,
                $"{(double)approved / reviewed:P0} of the flagged orders reviewed in the last 30 days were good ({approved} of {reviewed}): the thresholds may be holding back good customers"),
                now.AddDays(-30), now, ct);
        }
        return alerts;
    }

    /// <summary>Opens the alert, or refreshes an open one's words (its "since" stays the first day it held).</summary>
    private async Task RaiseAsync(long shopId, string kind, string metric, int? version, string detail, DateTimeOffset since, DateTimeOffset now, CancellationToken ct)
    {
        await using var cmd = db.CreateCommand("""
            INSERT INTO governance_alerts (shop_id, model_kind, metric, detail, model_version, since, raised_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7)
            ON CONFLICT (shop_id, model_kind, metric) WHERE cleared_at IS NULL DO UPDATE SET detail = excluded.detail, model_version = excluded.model_version, updated_at = excluded.updated_at
            """);
        cmd.Parameters.Add(Sql.Param(shopId));
        cmd.Parameters.Add(Sql.Param(kind));
        cmd.Parameters.Add(Sql.Param(metric));
        cmd.Parameters.Add(Sql.Param(detail));
        cmd.Parameters.Add(new NpgsqlParameter { Value = (object?)version ?? DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Integer });
        cmd.Parameters.Add(Sql.Param(since));
        cmd.Parameters.Add(Sql.Param(now));
        await cmd.ExecuteNonQueryAsync(ct);
    }

    private async Task<long> CountAsync(long shopId, string kind, DateTimeOffset from, DateTimeOffset to, CancellationToken ct)
    {
        await using var cmd = db.CreateCommand("SELECT count(*) FROM decisions WHERE shop_id = $1 AND kind = $2 AND decided_at BETWEEN $3 AND $4");
        foreach (var v in new object[] { shopId, kind, from, to }) cmd.Parameters.Add(Sql.Param(v));
        return (long)(await cmd.ExecuteScalarAsync(ct))!;
    }

    /// <summary>
    /// Every numeric field of the inputs and outputs of the latest <see cref="Sample"/> decisions in the window; with
    /// <paramref name="ofVersion"/>, only those of model <paramref name="version"/> (null: the rule prior's).
    /// </summary>
    private async Task<Dictionary<(string Role, string Field), List<double>>> ValuesAsync(long shopId, ModelKind kind, DateTimeOffset from, DateTimeOffset to,
        CancellationToken ct, bool ofVersion = false, int? version = null)
    {
        await using var cmd = db.CreateCommand($$"""
            WITH d AS (SELECT d.inputs, d.output FROM decisions d WHERE d.shop_id = $1 AND d.kind = $2 AND d.decided_at >= $3 AND d.decided_at < $4
                         AND (NOT $6 OR d.model_version IS NOT DISTINCT FROM $7) AND ({{kind.DriftSample}})
                       ORDER BY d.decided_at DESC LIMIT $5)
            SELECT 'input', e.key, e.value::text::float8 FROM d, jsonb_each(coalesce(d.inputs, '{}')) e WHERE jsonb_typeof(e.value) = 'number'
            UNION ALL
            SELECT 'prediction', e.key, e.value::text::float8 FROM d, jsonb_each(coalesce(d.output, '{}')) e WHERE jsonb_typeof(e.value) = 'number'
            """);
        foreach (var v in new object[] { shopId, kind.DecisionKind!, from, to, Sample, ofVersion }) cmd.Parameters.Add(Sql.Param(v));
        cmd.Parameters.Add(new NpgsqlParameter<int?> { TypedValue = version, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Integer });
        var values = new Dictionary<(string, string), List<double>>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
        {
            var key = (r.GetString(0), r.GetString(1));
            (values.TryGetValue(key, out var list) ? list : values[key] = []).Add(r.GetDouble(2));
        }
        return values;
    }

    public static async Task<List<DriftView>> LatestDriftAsync(NpgsqlDataSource db, long shopId, CancellationToken ct)
    {
        await using var cmd = db.CreateCommand("""
            SELECT DISTINCT ON (decision_kind, field) decision_kind, field, role, model_kind, model_version, psi, reference_n, current_n, reference_mean, current_mean, reference, computed_at
            FROM model_drift m WHERE shop_id = $1
              -- The last run's figures only: a field it no longer compares (a promoted version's outputs, until it has its own
              -- reference) shows nothing rather than the figure of another version.
              AND computed_at = (SELECT max(computed_at) FROM model_drift x WHERE x.shop_id = m.shop_id)
            ORDER BY decision_kind, field, computed_at DESC
            """);
        cmd.Parameters.Add(Sql.Param(shopId));
        var list = new List<DriftView>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
            list.Add(new DriftView(r.GetString(0), r.GetString(1), r.GetString(2), r.GetString(3), r.IsDBNull(4) ? null : r.GetInt32(4), r.GetDouble(5),
                r.GetInt32(6), r.GetInt32(7), r.IsDBNull(8) ? null : r.GetDouble(8), r.IsDBNull(9) ? null : r.GetDouble(9), r.GetString(10),
                r.GetFieldValue<DateTimeOffset>(11)));
        return list.OrderByDescending(d => d.Psi).ToList();
    }

    public static async Task<List<AlertView>> AlertsAsync(NpgsqlDataSource db, long shopId, bool openOnly, CancellationToken ct)
    {
        await using var cmd = db.CreateCommand($"""
            SELECT model_kind, metric, detail, model_version, since, raised_at, cleared_at FROM governance_alerts
            WHERE shop_id = $1 {(openOnly ? "AND cleared_at IS NULL" : "")} ORDER BY cleared_at IS NOT NULL, raised_at DESC LIMIT 50
            """);
        cmd.Parameters.Add(Sql.Param(shopId));
        var list = new List<AlertView>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
            list.Add(new AlertView(r.GetString(0), r.GetString(1), r.GetString(2), r.IsDBNull(3) ? null : r.GetInt32(3), r.GetFieldValue<DateTimeOffset>(4),
                r.GetFieldValue<DateTimeOffset>(5), r.IsDBNull(6) ? null : r.GetFieldValue<DateTimeOffset>(6)));
        return list;
    }
}
