using Npgsql;
using PluginApp.Data;

namespace PluginApp.Risk;

/// <summary>
/// The one order feature builder: scoring, training and the threshold backtest all call <see cref="BuildAsync"/>. Every
/// feature describes the order as it was when placed: windows count only orders created strictly before it, and
/// label-based windows count only labels known (labelled_at) by then, so rebuilding an order's features later, after
/// newer orders and labels arrived, gives the same numbers it was scored with. The store's usual order per day is kept as
/// first computed (risk_store_days), for the same reason and because it is the costly part on a large store.
/// </summary>
public static class OrderFeatures
{
    /// <summary>Each feature's name and what it measures, in vector order (the model's columns, the stored features' keys).</summary>
    public static readonly (string Name, string Description)[] All =
    [
        ("amount", "the order total"),
        ("amount_z", "how far the total is above the store's usual order, in standard deviations (the 90 whole days before)"),
        ("customer_orders_before", "the customer's earlier orders that stood (not tests, nor cancelled or known as fraud by the order's time; by email for guests)"),
        ("customer_age_days", "days since the customer's first order that stood"),
        ("customer_spend_before", "the customer's spend on her earlier orders that stood"),
        ("email_orders_1d", "orders from the same email in the 24 hours before"),
        ("email_orders_7d", "orders from the same email in the 7 days before"),
        ("email_orders_30d", $"orders from the same email in the 30 days before (counted up to {WindowCap})"),
        ("amount_vs_email_avg_30d", "the total against the same email's average order in the 30 days before (0 without one)"),
        ("ip_orders_1d", "orders from the same browser address in the 24 hours before"),
        ("ip_orders_7d", "orders from the same browser address in the 7 days before"),
        ("ip_orders_30d", $"orders from the same browser address in the 30 days before (counted up to {WindowCap})"),
        ("ip_emails_7d", "other emails than the order's that ordered from the same browser address in 7 days"),
        ("country_mismatch", "billing and shipping countries differ"),
        ("has_discount", "a discount code was used"),
        ("first_order_high_value", "a first order above the store's 90th percentile"),
        ("ip_fraud_share_30d", $"share of confirmed fraud among the address's labelled orders (30 days, its latest {WindowCap} orders)"),
        ("email_fraud_share_90d", $"share of confirmed fraud among the email's labelled orders (90 days, its latest {WindowCap} orders)"),
        ("ip_labelled_30d", $"labelled orders from the same address (30 days, among its latest {WindowCap} orders)"),
        ("email_labelled_90d", $"labelled orders from the same email (90 days, among its latest {WindowCap} orders)"),
        ("avs_no_match", "the card's address check failed (AVS result N)"),
        ("avs_partial", "the card's address check matched only the street or only the postcode (AVS result A, B, P, W or Z)"),
        ("cvv_no_match", "the card's security code did not match (CVV result N)"),
        ("card_orders_7d", "orders paid with the same card (issuer number and last four digits) in the 7 days before"),
        ("card_other_emails_30d", "other emails that paid with the same card in the 30 days before"),
        ("ip_fraud_14d", "confirmed fraud among the same browser address's orders in the 14 days before"),
        ("email_fraud_14d", "confirmed fraud among the same email's orders in the 14 days before"),
        ("amount_vs_email_avg_7d", "the total against the same email's average order in the 7 days before (0 without one)"),
    ];

    public static readonly string[] Names = All.Select(f => f.Name).ToArray();

    public static string Describe(string name) => All.First(f => f.Name == name).Description;

    public static int Index(string name) => Array.IndexOf(Names, name);

    /// <summary>The most orders a window of an email, a browser address or a card reads (see <see cref="Query"/>).</summary>
    public const int WindowCap = 500;

    internal static readonly string Query = $$"""
        WITH target AS (
            SELECT o.id, o.shop_id, o.created_at, coalesce(o.total_price, 0) AS amount, o.customer_id, lower(o.email) AS email,
                   o.browser_ip, o.billing_country, o.shipping_country, o.discount_codes,
                   upper(o.avs_result) AS avs, upper(o.cvv_result) AS cvv, o.card_bin, o.card_last4
            -- Why the batch's orders found by id alone: PostgreSQL's statistics lag a store's first busy day (its orders came
            -- after the table was last analyzed, so the store looks nearly empty), and a scan of the store's orders then looked
            -- cheapest (6,000 read for a batch of 300). By id the estimate is the batch's size whatever the store's statistics
            -- say; OFFSET 0 keeps the store's condition out of the lookup.
            FROM (SELECT * FROM orders WHERE id = ANY($2) OFFSET 0) o
            WHERE o.shop_id = $1 AND o.created_at IS NOT NULL)
        SELECT t.id, t.amount,
               CASE WHEN st.sd > 0 THEN (t.amount - st.mean) / st.sd ELSE 0 END,
               coalesce(who.n, 0), coalesce(extract(epoch FROM t.created_at - who.first) / 86400, 0), coalesce(who.spend, 0),
               coalesce(em.d1, 0), coalesce(em.d7, 0), coalesce(em.d30, 0), coalesce(t.amount / nullif(em.avg30, 0), 0),
               coalesce(ip.d1, 0), coalesce(ip.d7, 0), coalesce(ip.d30, 0), coalesce(ip.emails7, 0),
               CASE WHEN t.billing_country IS NOT NULL AND t.shipping_country IS NOT NULL AND t.billing_country <> t.shipping_country THEN 1 ELSE 0 END,
               CASE WHEN t.discount_codes <> '' THEN 1 ELSE 0 END,
               CASE WHEN coalesce(who.n, 0) = 0 AND st.p90 IS NOT NULL AND t.amount > st.p90 THEN 1 ELSE 0 END,
               coalesce(ip.fraud::float8 / nullif(ip.labelled, 0), 0), coalesce(eml.fraud::float8 / nullif(eml.labelled, 0), 0),
               coalesce(ip.labelled, 0), coalesce(eml.labelled, 0),
               CASE WHEN t.avs = 'N' THEN 1 ELSE 0 END, CASE WHEN t.avs IN ('A', 'B', 'P', 'W', 'Z') THEN 1 ELSE 0 END,
               CASE WHEN t.cvv = 'N' THEN 1 ELSE 0 END, coalesce(cd.d7, 0), coalesce(cd.other_emails, 0),
               coalesce(ip.fraud14, 0), coalesce(eml.fraud14, 0), coalesce(t.amount / nullif(em.avg7, 0), 0)
        FROM target t
        LEFT JOIN risk_store_days st ON st.shop_id = $1 AND st.day = date_trunc('day', t.created_at, 'UTC')
        -- The customer's earlier orders that stood by the order's time: not a test, not cancelled by then, not known as fraud
        -- by then. Until 5 Dec 2026 every earlier order counted, so a buyer whose earlier orders had been cancelled as fraud
        -- read as a returning customer ("Returning customer: 3 earlier orders", a credit) and never as a first order over the
        -- store's usual amount. As of the order's time, so training rebuilds what scoring saw.
        LEFT JOIN LATERAL (
            SELECT count(*) AS n, min({{StoreData.OrderTime.Placed("p")}}) AS first, sum(p.total_price) AS spend
            FROM orders p WHERE p.shop_id = t.shop_id AND p.created_at < t.created_at AND NOT p.test
              AND (p.cancelled_at IS NULL OR p.cancelled_at > t.created_at)
              AND (p.fraud_known_at IS NULL OR p.fraud_known_at > t.created_at)
              AND ((t.customer_id IS NOT NULL AND p.customer_id = t.customer_id)
                OR (t.customer_id IS NULL AND t.email IS NOT NULL AND lower(p.email) = t.email))) who ON true
        -- Why each window of an email, a browser address or a card reads at most its latest {{WindowCap}} orders: its cost is the
        -- orders it reads, so an address many shoppers share (a mobile carrier's) or a ring's burst from one address would make
        -- every next order dearer, and scoring would fall behind when it matters most. Up to the cap the counts are exact; past
        -- it they read as the cap, and the averages, distinct emails and shares of fraud are those of the latest orders. Why in
        -- the time index's order alone: a tie-break on the id made PostgreSQL read the whole window to sort it. Past the cap,
        -- orders placed at the same moment as the last one read may stand in for one another, which moves only those
        -- averages, emails and shares, never a count. The customer's earlier orders (who) are read whole: the customer's age
        -- needs the first of them.
        -- The email's windows count when its orders were placed (OrderTime): an order imported from the store's old platform
        -- is created on the import's day, and until 7 Dec 2026 a returning customer's order that day read her whole imported
        -- history as orders of the last 24 hours. The creation's bounds stay, for the index.
        LEFT JOIN LATERAL (
            SELECT count(*) FILTER (WHERE p.placed >= t.created_at - interval '1 day') AS d1,
                   count(*) FILTER (WHERE p.placed >= t.created_at - interval '7 days') AS d7, count(*) AS d30, avg(p.total_price) AS avg30,
                   avg(p.total_price) FILTER (WHERE p.placed >= t.created_at - interval '7 days') AS avg7
            FROM (SELECT {{StoreData.OrderTime.Placed("p")}} AS placed, p.total_price FROM orders p
                  WHERE t.email IS NOT NULL AND p.shop_id = t.shop_id AND lower(p.email) = t.email
                    AND p.created_at < t.created_at AND p.created_at >= t.created_at - interval '30 days'
                  ORDER BY p.created_at DESC LIMIT {{WindowCap}}) p
            WHERE p.placed >= t.created_at - interval '30 days') em ON true
        -- The browser address's, the email's labels' and the card's windows count when their orders were placed too (since 7
        -- Dec 2026: an imported order of a returning shopper's home address, or of her card, read as one of the last day).
        -- An earlier order counts as labelled, or as confirmed fraud, when its first such label was known by the order's own
        -- time: each order carries those two times (copied from risk_labels by a trigger, or by LabelsWaiting when the label
        -- came first; migration 0040), so a window's labels are read with its orders. Why not a lookup among the labels for
        -- each order of the window: those lookups were half of this statement's time.
        LEFT JOIN LATERAL (
            SELECT count(*) FILTER (WHERE p.placed >= t.created_at - interval '1 day') AS d1,
                   count(*) FILTER (WHERE p.placed >= t.created_at - interval '7 days') AS d7, count(*) AS d30,
                   -- Other emails than the order's own (until 5 Dec 2026 its own counted too, and the reason, which adds the
                   -- order's, said "3 different email addresses" of two).
                   count(DISTINCT lower(p.email)) FILTER (WHERE p.placed >= t.created_at - interval '7 days'
                     AND lower(p.email) IS DISTINCT FROM t.email) AS emails7,
                   count(*) FILTER (WHERE p.fraud_known_at <= t.created_at) AS fraud,
                   count(*) FILTER (WHERE p.label_known_at <= t.created_at) AS labelled,
                   count(*) FILTER (WHERE p.fraud_known_at <= t.created_at AND p.placed >= t.created_at - interval '14 days') AS fraud14
            FROM (SELECT {{StoreData.OrderTime.Placed("p")}} AS placed, p.email, p.label_known_at, p.fraud_known_at FROM orders p
                  WHERE t.browser_ip IS NOT NULL AND p.shop_id = t.shop_id AND p.browser_ip = t.browser_ip
                    AND p.created_at < t.created_at AND p.created_at >= t.created_at - interval '30 days'
                  ORDER BY p.created_at DESC LIMIT {{WindowCap}}) p
            WHERE p.placed >= t.created_at - interval '30 days') ip ON true
        LEFT JOIN LATERAL (
            SELECT count(*) FILTER (WHERE p.fraud_known_at <= t.created_at) AS fraud,
                   count(*) FILTER (WHERE p.label_known_at <= t.created_at) AS labelled,
                   count(*) FILTER (WHERE p.fraud_known_at <= t.created_at AND p.placed >= t.created_at - interval '14 days') AS fraud14
            FROM (SELECT {{StoreData.OrderTime.Placed("p")}} AS placed, p.label_known_at, p.fraud_known_at FROM orders p
                  WHERE t.email IS NOT NULL AND p.shop_id = t.shop_id AND lower(p.email) = t.email
                    AND p.created_at < t.created_at AND p.created_at >= t.created_at - interval '90 days'
                  ORDER BY p.created_at DESC LIMIT {{WindowCap}}) p
            WHERE p.placed >= t.created_at - interval '90 days') eml ON true
        -- A card is its issuer number and last four digits (Shopify never sends the full number).
        LEFT JOIN LATERAL (
            SELECT count(*) FILTER (WHERE p.placed >= t.created_at - interval '7 days') AS d7,
                   count(DISTINCT lower(p.email)) FILTER (WHERE lower(p.email) <> t.email OR t.email IS NULL) AS other_emails
            FROM (SELECT {{StoreData.OrderTime.Placed("p")}} AS placed, p.email FROM orders p
                  WHERE t.card_bin IS NOT NULL AND t.card_last4 IS NOT NULL AND p.shop_id = t.shop_id
                    AND p.card_bin = t.card_bin AND p.card_last4 = t.card_last4
                    AND p.created_at < t.created_at AND p.created_at >= t.created_at - interval '30 days'
                  ORDER BY p.created_at DESC LIMIT {{WindowCap}}) p
            WHERE p.placed >= t.created_at - interval '30 days') cd ON true
        """;

    // The store's usual order, from the 90 whole days before each order's day (UTC), for the days of the batch not computed yet.
    // Why the days first, materialized: a plan made while risk_store_days was nearly empty checked "not computed yet" once per
    // joined order row instead of once per day (200,000 scans of the table for 3,000 orders, a third of ingestion's database
    // time); now the days already computed are dropped before any order of the 90 days is read.
    // Why the batch's orders found by id alone, as in Query: on a store's first busy day the statistics say it has no orders,
    // and the days of a batch were found by walking every order of the store (in the ingest benchmark of 3 Dec 2026, 6,000
    // orders read and 5.6 ms for a batch of 420, against 420 and 1.2 ms by id; more with every order of the day).
    // Why a lock when a day is missing: a backfill chunk drops the days its orders belong to (RiskQueue.BackfillStoreDays),
    // and a day computed meanwhile from a snapshot without the chunk's orders, committed after the drop, would stay so. A
    // chunk holds the lock (shared: chunks merge side by side) from its drop to its commit; a batch with a day to compute
    // takes it alone, to the end of its transaction, so it computes the day after the chunk's commit, or before the drop,
    // which then drops it. The statement after the lock takes a snapshot that sees what the chunk committed. Why only then:
    // a day is computed once, and the scorers of a shop need not queue behind each other for days already there. Why the
    // days are computed only by a transaction that holds the lock (the setting below marks it), and tried twice: a day
    // present when the lock was looked at may be dropped by a chunk before the next statement, whose snapshot would then
    // miss another chunk's orders; the second try takes the lock for it.
    internal static string StoreDaysLockKey(string shopId) => $"hashtextextended('risk-store-days:' || {shopId}::text, 0)";

    private const string MissingDays = """
            SELECT x.day FROM (SELECT DISTINCT date_trunc('day', o.created_at, 'UTC') AS day
                               FROM (SELECT shop_id, created_at FROM orders WHERE id = ANY($2) OFFSET 0) o
                               WHERE o.shop_id = $1 AND o.created_at IS NOT NULL) x
            WHERE NOT EXISTS (SELECT 1 FROM risk_store_days c WHERE c.shop_id = $1 AND c.day = x.day)
        """;

    internal static readonly string StoreDaysHeld =
        $"SELECT pg_advisory_xact_lock({StoreDaysLockKey("$1")}), set_config('pluginapp.store_days_held', $1::text, true) WHERE EXISTS ({MissingDays})";

    internal static readonly string StoreDays = $"""
        WITH d AS MATERIALIZED ({MissingDays}
              AND current_setting('pluginapp.store_days_held', true) = $1::text)
        INSERT INTO risk_store_days (shop_id, day, mean, sd, p90)
        SELECT $1, d.day, avg(p.total_price), stddev_samp(p.total_price), percentile_cont(0.9) WITHIN GROUP (ORDER BY p.total_price)
        FROM d LEFT JOIN orders p ON p.shop_id = $1 AND p.created_at >= d.day - interval '90 days' AND p.created_at < d.day AND p.total_price IS NOT NULL
        GROUP BY d.day
        ON CONFLICT (shop_id, day) DO NOTHING
        """;

    // The labels that came before their orders (risk_labels_waiting, migration 0040): once an order is stored, its labels are
    // written again as they are, so the labels' own trigger gives the order its label times before any window below reads it.
    // Nearly always nothing waits: one lookup of an empty index. Why the two guards: with a store's statistics behind (its
    // orders came after the table was last analyzed) the plan read all of the store's orders, twice, to find nothing waiting
    // (18,921 pages a call, auto_explain); now the waiting orders are read first and looked up one by one (OFFSET 0 keeps the
    // lookup from becoming a join), and the labels are not read at all when none of the orders was stored.
    private const string LabelsWaiting = """
        WITH stored AS (
            DELETE FROM risk_labels_waiting w
            WHERE w.shop_id = $1 AND EXISTS (SELECT 1 FROM orders o WHERE o.shop_id = w.shop_id AND o.id = w.order_id OFFSET 0)
            RETURNING w.order_id)
        UPDATE risk_labels l SET labelled_at = l.labelled_at
        FROM stored s WHERE EXISTS (SELECT 1 FROM stored) AND l.shop_id = $1 AND l.order_id = s.order_id
        """;

    /// <summary>The features of each order of <paramref name="orderIds"/> that exists (with a creation time), as of its creation.</summary>
    public static async Task<Dictionary<long, float[]>> BuildAsync(NpgsqlConnection conn, long shopId, IReadOnlyCollection<long> orderIds,
        CancellationToken ct, NpgsqlTransaction? tx = null)
    {
        var result = new Dictionary<long, float[]>(orderIds.Count);
        if (orderIds.Count == 0) return result;
        var ids = orderIds.ToArray();
        await using (var first = new NpgsqlBatch(conn, tx)
                     {
                         BatchCommands =
                         {
                             new NpgsqlBatchCommand(LabelsWaiting) { Parameters = { Sql.Param(shopId) } },
                             // Held to the end of the transaction (the batch's own, without one): until the days are committed.
                             new NpgsqlBatchCommand(StoreDaysHeld) { Parameters = { Sql.Param(shopId), Sql.Param(ids) } },
                             new NpgsqlBatchCommand(StoreDays) { Parameters = { Sql.Param(shopId), Sql.Param(ids) } },
                             new NpgsqlBatchCommand(StoreDaysHeld) { Parameters = { Sql.Param(shopId), Sql.Param(ids) } },
                             new NpgsqlBatchCommand(StoreDays) { Parameters = { Sql.Param(shopId), Sql.Param(ids) } },
                         },
                     })
            await first.ExecuteNonQueryAsync(ct);
        await using var cmd = new NpgsqlCommand(Query, conn, tx);
        cmd.Parameters.Add(Sql.Param(shopId));
        cmd.Parameters.Add(Sql.Param(ids));
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
        {
            var v = new float[Names.Length];
            for (var i = 0; i < v.Length; i++) v[i] = Convert.ToSingle(r.GetValue(i + 1), System.Globalization.CultureInfo.InvariantCulture);
            result[r.GetInt64(0)] = v;
        }
        return result;
    }

    /// <summary>The vector as stored beside a score: name → value.</summary>
    public static Dictionary<string, float> Named(float[] v) => Names.Select((n, i) => (n, v[i])).ToDictionary(p => p.n, p => p.Item2);
}
