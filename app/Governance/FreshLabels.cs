using System.Globalization;
using Npgsql;
using PluginApp.Data;
using PluginApp.Ml.Metrics;
using PluginApp.Training;

namespace PluginApp.Governance;

public sealed record PerformanceView(string ModelKind, string Metric, int? ModelVersion, double Value, double? HeldOut, int N, string Detail, DateTimeOffset ComputedAt);

/// <summary>
/// How the active models do on outcomes that arrived after they were trained, each beside its held-out figure:
/// order risk's average precision on every order it scored 30 to 90 days ago, fraud when a label says so by now
/// (chargebacks, fraud cancellations, reviews), as training measures it held out;
/// churn's realized rate and Brier score for the segment decisions made between one and two horizons ago; the
/// recommender's recall on new orders (the share of products bought in the last 7 days by customers it answered that it
/// had shown them in the 7 days before).
/// </summary>
internal static class FreshLabels
{
    public const int MinLabelled = 20, MinPositives = 5, MinCustomers = 50, MinOrders = 20;
    /// <summary>Fresh average precision below this share of the held-out one raises an alert.</summary>
    public const double RiskAlertShare = 0.5;

    public static async Task<List<PerformanceView>> MeasureAsync(NpgsqlDataSource db, long shopId, IReadOnlyList<ModelEntry> models, DateTimeOffset now,
        CancellationToken ct)
    {
        var list = new List<PerformanceView>();
        ModelEntry? Active(string kind) => models.FirstOrDefault(m => m.Kind == kind && m.Status == "active");
        double? Metric(ModelEntry? m, string name) => m is null ? null : PluginApp.Training.PromotionGate.Metric(m.Metrics, name);

        // Order risk: every order scored by the active version (or, with none, by the rule prior) 30 to 90 days ago, its labels
        // given a month to come, an order with no fraud label counting as good, as the held-out figure it is set against
        // counts them. Why by version: a version activated today was measured, and alerted on, by the scores of the rules or
        // the version before it (until 4 Dec). Why every order: measured on the labelled ones alone (until 5 Dec 2026), which
        // are mostly fraud, a score that told nothing apart read 0.75 against a held-out 0.73, and no alert could come. Why the
        // score before any label (migration 0098): a label scores its order again, and until 7 Dec 2026 moved it out of the
        // window, or into the version active when the label came.
        var risk = Active("risk");
        var scores = new List<double>();
        var labels = new List<bool>();
        await using (var cmd = db.CreateCommand("""
            SELECT s.score, coalesce(bool_or(l.fraud), false)
            FROM (SELECT shop_id, order_id, coalesce(unlabelled_score, score) AS score, coalesce(unlabelled_scored_at, scored_at) AS scored_at,
                         CASE WHEN unlabelled_scored_at IS NULL THEN model_version ELSE unlabelled_model_version END AS model_version
                  FROM risk_scores WHERE shop_id = $1) s
            LEFT JOIN risk_labels l ON l.shop_id = s.shop_id AND l.order_id = s.order_id
            WHERE s.scored_at >= $2 AND s.scored_at < $4 AND s.model_version IS NOT DISTINCT FROM $3 GROUP BY s.order_id, s.score
            """))
        {
            cmd.Parameters.Add(Sql.Param(shopId));
            cmd.Parameters.Add(Sql.Param(now.AddDays(-90)));
            cmd.Parameters.Add(new NpgsqlParameter<int?> { TypedValue = risk?.Version, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Integer });
            cmd.Parameters.Add(Sql.Param(now.AddDays(-30)));
            await using var r = await cmd.ExecuteReaderAsync(ct);
            while (await r.ReadAsync(ct)) { scores.Add(r.GetDouble(0)); labels.Add(r.GetBoolean(1)); }
        }
        var positives = labels.Count(x => x);
        if (scores.Count >= MinLabelled && positives >= MinPositives && positives < labels.Count)
        {
            var ap = BinaryMetrics.AveragePrecision(scores.ToArray(), labels.ToArray());
            // Against the held-out figure of the score orders are given (the model blended with the rule prior), which is what
            // risk_scores holds; the model's own where the version has none. Until 7 Dec 2026 the model's own, so a version
            // whose prior weighed more than its model was alerted on a figure its served score never had.
            var served = Metric(risk, "ServedPrAuc");
            var heldOut = served ?? Metric(risk, "PrAuc");
            var against = heldOut is not { } figure ? "no held-out figure (the rule prior scores)"
                : string.Create(CultureInfo.InvariantCulture, $"{figure:0.000} held out{(served is null ? "" : ", as served (the model blended with the rule prior)")}");
            list.Add(new PerformanceView("risk", "fresh-average-precision", risk?.Version, ap, heldOut, scores.Count, string.Create(CultureInfo.InvariantCulture,
                $"average precision {ap:0.000} on the {scores.Count} orders it scored 30–90 days ago ({positives} labelled fraud by now), against {against}"), now));
        }

        // Churn: segment decisions made between one and two horizons ago, and whether the customer ordered within the horizon
        // after: a purchase as training counts one (not a test, cancelled or free order; until 4 Dec 2026 those read as the
        // customer coming back, and the realised churn looked better than it was).
        var churn = Active("churn");
        var horizon = churn is not null && churn.Metrics.TryGetProperty("HorizonDays", out var h) && h.TryGetInt32(out var hd) ? hd : 90;
        var probabilities = new List<double>();
        var churned = new List<bool>();
        // An order counts when it was placed (OrderTime), as churn's training labels it: one imported from the store's old
        // platform after the decision is no customer coming back.
        await using (var cmd = db.CreateCommand($$"""
            SELECT DISTINCT ON (d.customer_id) (d.output->>'churn_probability')::float8,
                   NOT EXISTS (SELECT 1 FROM orders o WHERE o.shop_id = d.shop_id AND o.customer_id = d.customer_id AND o.created_at > d.decided_at
                               AND o.created_at <= d.decided_at + make_interval(days => $4) AND {{StoreData.OrderTime.Placed("o")}} > d.decided_at
                               AND NOT o.test AND o.cancelled_at IS NULL AND o.total_price > 0)
            FROM decisions d WHERE d.shop_id = $1 AND d.kind = 'churn' AND d.customer_id IS NOT NULL AND d.decided_at BETWEEN $2 AND $3
              AND d.output ? 'churn_probability'
            ORDER BY d.customer_id, d.decided_at DESC
            """))
        {
            cmd.Parameters.Add(Sql.Param(shopId));
            cmd.Parameters.Add(Sql.Param(now.AddDays(-2 * horizon)));
            cmd.Parameters.Add(Sql.Param(now.AddDays(-horizon)));
            cmd.Parameters.Add(Sql.Param(horizon));
            await using var r = await cmd.ExecuteReaderAsync(ct);
            while (await r.ReadAsync(ct)) { probabilities.Add(r.GetDouble(0)); churned.Add(r.GetBoolean(1)); }
        }
        if (probabilities.Count >= MinCustomers)
        {
            var realized = churned.Count(x => x) / (double)churned.Count;
            var brier = BinaryMetrics.Brier(probabilities.ToArray(), churned.ToArray());
            list.Add(new PerformanceView("churn", "realized-churn", churn?.Version, brier, Metric(churn, "Brier"), probabilities.Count, string.Create(CultureInfo.InvariantCulture,
                $"of {probabilities.Count} customers whose segment was set {horizon}–{2 * horizon} days ago, {realized:P0} did not order within {horizon} days against {probabilities.Average():P0} predicted; Brier score {brier:0.000} (held out {Metric(churn, "Brier")?.ToString("0.000", CultureInfo.InvariantCulture) ?? "–"})"), now));
        }

        // Recommender: products bought in the last 7 days by customers it showed products to in the 7 days before each order.
        // Why answers that showed something: until 6 Dec 2026 an answer that showed nothing (switched off, a risky session)
        // counted its buyer's lines too, with no chance of a hit. Why the served candidate's held-out figure: the live recall
        // is the served answers', and a store served by popularity or the blend was set against ALS's figure.
        await using (var cmd = db.CreateCommand("""
            WITH bought AS (
              SELECT o.id AS order_id, o.customer_id, o.created_at, l.product_id FROM orders o JOIN order_lines l ON l.shop_id = o.shop_id AND l.order_id = o.id
              WHERE o.shop_id = $1 AND o.created_at >= $2 AND o.customer_id IS NOT NULL AND l.product_id IS NOT NULL
                AND EXISTS (SELECT 1 FROM decisions d WHERE d.shop_id = $1 AND d.kind = 'upsell' AND d.customer_id = o.customer_id AND d.path <> 'bestsellers'
                            AND cardinality(d.output_ids) > 0 AND d.decided_at BETWEEN o.created_at - interval '7 days' AND o.created_at))
            SELECT count(DISTINCT b.order_id), count(*),
                   count(*) FILTER (WHERE EXISTS (SELECT 1 FROM decisions d WHERE d.shop_id = $1 AND d.kind = 'upsell' AND d.customer_id = b.customer_id
                                                  AND d.path <> 'bestsellers' AND d.decided_at BETWEEN b.created_at - interval '7 days' AND b.created_at
                                                  AND b.product_id = ANY(d.output_ids)))
            FROM bought b
            """))
        {
            cmd.Parameters.Add(Sql.Param(shopId));
            cmd.Parameters.Add(Sql.Param(now.AddDays(-7)));
            await using var r = await cmd.ExecuteReaderAsync(ct);
            await r.ReadAsync(ct);
            var (orders, lines, hits) = (r.GetInt64(0), r.GetInt64(1), r.GetInt64(2));
            if (orders >= MinOrders)
            {
                var rec = Active("recommender");
                var recall = hits / (double)lines;
                // An unmeasured version (no held-out customer, no ServedNdcgAt10) stored RecallAt10 as 0: not a figure to show.
                var heldOut = Metric(rec, "ServedRecallAt10") ?? (Metric(rec, "ServedNdcgAt10") is null && Metric(rec, "TestUsers") is 0d ? null : Metric(rec, "RecallAt10"));
                list.Add(new PerformanceView("recommender", "recall-on-new-orders", rec?.Version, recall, heldOut, (int)orders, string.Create(CultureInfo.InvariantCulture,
                    $"{recall:P1} of the {lines} products in {orders} orders of the last 7 days had been shown to the buyer by the model in the week before (held-out Recall@10 {heldOut?.ToString("0.000", CultureInfo.InvariantCulture) ?? "–"})"), now));
            }
        }
        return list;
    }

    public static async Task SaveAsync(NpgsqlDataSource db, long shopId, IReadOnlyList<PerformanceView> figures, CancellationToken ct)
    {
        foreach (var f in figures)
        {
            await using var cmd = db.CreateCommand("""
                INSERT INTO model_performance (shop_id, model_kind, metric, model_version, value, held_out, n, detail, computed_at)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING
                """);
            cmd.Parameters.Add(Sql.Param(shopId));
            cmd.Parameters.Add(Sql.Param(f.ModelKind));
            cmd.Parameters.Add(Sql.Param(f.Metric));
            cmd.Parameters.Add(new NpgsqlParameter { Value = (object?)f.ModelVersion ?? DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Integer });
            cmd.Parameters.Add(Sql.Param(f.Value));
            cmd.Parameters.Add(new NpgsqlParameter { Value = (object?)f.HeldOut ?? DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Double });
            cmd.Parameters.Add(Sql.Param(f.N));
            cmd.Parameters.Add(Sql.Param(f.Detail));
            cmd.Parameters.Add(Sql.Param(f.ComputedAt));
            await cmd.ExecuteNonQueryAsync(ct);
        }
    }

    public static async Task<List<PerformanceView>> LatestAsync(NpgsqlDataSource db, long shopId, CancellationToken ct)
    {
        await using var cmd = db.CreateCommand("""
            SELECT DISTINCT ON (model_kind, metric) model_kind, metric, model_version, value, held_out, n, detail, computed_at
            FROM model_performance WHERE shop_id = $1 ORDER BY model_kind, metric, computed_at DESC
            """);
        cmd.Parameters.Add(Sql.Param(shopId));
        var list = new List<PerformanceView>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
            list.Add(new PerformanceView(r.GetString(0), r.GetString(1), r.IsDBNull(2) ? null : r.GetInt32(2), r.GetDouble(3), r.IsDBNull(4) ? null : r.GetDouble(4),
                r.GetInt32(5), r.GetString(6), r.GetFieldValue<DateTimeOffset>(7)));
        return list;
    }
}
