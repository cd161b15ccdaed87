using System.Globalization;
using System.Text.Json;
using Npgsql;
using PluginApp.Data;
using PluginApp.Hosting;

namespace PluginApp.Experiments;

/// <summary>Limits an arm's outcomes must stay within; a broken one is shown beside the verdict.</summary>
/// <param name="MaxRefundRate">Share of the arm's order revenue refunded.</param>
/// <param name="MaxAverageDiscount">Discount as a share of the arm's order revenue before discounts.</param>
public sealed record Guardrails(double? MaxRefundRate = 0.10, double? MaxAverageDiscount = 0.15);

/// <summary>A shop's settings of one experiment.</summary>
public sealed record ExperimentSettings(IReadOnlyList<ArmShare> Arms, string Metric, Guardrails Guardrails, bool Running,
    DateTimeOffset? StartedAt, DateTimeOffset? StoppedAt, DateTimeOffset? UpdatedAt = null, string? UpdatedBy = null)
{
    /// <summary>The key of a problem with the arms as a whole (their names, their sum, the control's share).</summary>
    public const string ArmsField = "arms";

    /// <summary>
    /// Since when the settings stand (their last save, else their start): an answer given before was served under earlier
    /// ones (the stopped arm to everyone, or other shares), so its later view exposes no one (the cart offers' seen, the
    /// upsells' impressions).
    /// </summary>
    public DateTimeOffset StandingSince => UpdatedAt ?? StartedAt ?? DateTimeOffset.MinValue;

    /// <summary>
    /// Problems with the settings, by field: the arms as a whole under <see cref="ArmsField"/>, one arm's share under
    /// "share_{arm}". Shares and guardrails are fractions here and said in percent, as the Experiments form holds them:
    /// until 6 Dec 2026 a refund rate of 150 read "1.5 must be above 0 and at most 1", and shares of 60 and 50 "the shares
    /// sum to 1.1".
    /// </summary>
    public static Dictionary<string, string[]> Problems(ExperimentKind kind, IReadOnlyList<ArmShare>? arms, string? metric, Guardrails? g)
    {
        var p = new Dictionary<string, string[]>();
        static bool Bad(double share) => !double.IsFinite(share) || share < 0 || share > 1;
        if (arms is null || arms.Count != kind.Arms.Count || arms.Select(a => a.Name).Except(kind.Arms.Select(a => a.Name)).Any())
            p[ArmsField] = [$"arms must be exactly {string.Join(", ", kind.Arms.Select(a => a.Name))}"];
        else if (arms.Any(a => Bad(a.Share)))
            foreach (var a in arms.Where(a => Bad(a.Share))) p["share_" + a.Name] = ["a share must be a percent from 0 to 100"];
        else if (Math.Abs(arms.Sum(a => a.Share) - 1) > 1e-6)
            p[ArmsField] = [string.Create(CultureInfo.InvariantCulture, $"the shares sum to {arms.Sum(a => a.Share) * 100:0.##} %; they must sum to 100 %")];
        else if (arms.First(a => a.Name == kind.Control).Share <= 0 || arms.All(a => a.Name == kind.Control || a.Share <= 0))
            p[ArmsField] = [$"the control arm '{kind.Control}' and at least one other arm need a share above 0"];
        if (metric is null || !ExperimentKind.Metrics.Contains(metric)) p["metric"] = [$"metric '{metric}' must be one of {string.Join(", ", ExperimentKind.Metrics)}"];
        static bool BadRate(double v) => v is <= 0 or > 1 || !double.IsFinite(v);
        if (g?.MaxRefundRate is { } r && BadRate(r)) p["maxRefundRate"] = ["the refund rate must be a percent above 0 and at most 100"];
        if (g?.MaxAverageDiscount is { } d && BadRate(d)) p["maxAverageDiscount"] = ["the average discount must be a percent above 0 and at most 100"];
        return p;
    }
}

/// <summary>
/// Each shop's experiment settings (a shop that never changed one gets the feature's defaults) and the arm a unit gets.
/// Serving reads through a 15-second cache; a change made here clears this instance's entry at once. Other instances
/// reload once their entry is 15 seconds old: the request that finds it expired, and any during the reload, still get the
/// old settings (see <see cref="ExpiringCache{TKey, TValue}"/>).
/// </summary>
public sealed class ExperimentStore(NpgsqlDataSource db, ExperimentKinds kinds, TimeProvider clock)
{
    /// <summary>Why the experiment's pause began when it stopped (migration 0084).</summary>
    public const string StoppedCause = "stopped";

    /// <summary>
    /// $1 shop, $2 experiment, $3 time: a pause of the experiment begins, for <paramref name="cause"/> (the results leave out
    /// orders placed during it: ExperimentResults.Paused). One open pause a cause; each cause's writer opens and closes its own.
    /// </summary>
    public static string PauseSql(string cause) =>
        $"INSERT INTO experiment_pauses (shop_id, experiment, cause, paused_at) SELECT $1, $2, '{cause}', $3 WHERE NOT EXISTS (SELECT 1 FROM experiment_pauses WHERE shop_id = $1 AND experiment = $2 AND cause = '{cause}' AND resumed_at IS NULL) ON CONFLICT DO NOTHING";

    /// <summary>$1 shop, $2 experiment, $3 time: the pause for <paramref name="cause"/> ends.</summary>
    public static string ResumeSql(string cause) =>
        $"UPDATE experiment_pauses SET resumed_at = $3 WHERE shop_id = $1 AND experiment = $2 AND cause = '{cause}' AND resumed_at IS NULL";

    /// <summary>
    /// $1 shop, $2 experiment: when an experiment that ran by default started, by its exposures (null: none yet): the earliest
    /// still kept, or the shop's install when that is earlier. Why the install: an experiment running since an install more
    /// than 180 days ago has had its first exposures deleted by retention, and started at its earliest kept one it would count
    /// anew from about today (ExperimentResults.CountsFrom), its results emptied.
    /// </summary>
    private const string FirstExposureSql = """
        (SELECT CASE WHEN min(x.first_at) IS NOT NULL THEN least(min(x.first_at), (SELECT installed_at FROM shops WHERE id = $1)) END
         FROM experiment_exposures x WHERE x.shop_id = $1 AND x.experiment = $2)
        """;

    private static readonly TimeSpan CacheFor = TimeSpan.FromSeconds(15);
    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);
    private readonly ExpiringCache<(long ShopId, string Key), ExperimentSettings> _cache = new(CacheFor, clock);

    public ExperimentKind Kind(string key) => kinds.Find(key) ?? throw new ArgumentException($"no experiment '{key}' is declared", nameof(key));

    /// <summary>How far a share sent back by the form (rounded to 0.01 %) may be from the stored one and still stand for it.</summary>
    private const double ShownShareTolerance = 0.00005 + 1e-9;

    /// <summary>The shares sent, each within <see cref="ShownShareTolerance"/> of its stored one replaced by the stored one: the
    /// form shows and sends shares to 0.01 %, and a share sent back as shown is no change.</summary>
    public static List<ArmShare> AsStored(IEnumerable<ArmShare> sent, IReadOnlyList<ArmShare> stored) =>
        [.. sent.Select(a => stored.FirstOrDefault(b => b.Name == a.Name) is { } b && a.Share >= 0 && Math.Abs(b.Share - a.Share) <= ShownShareTolerance
            ? a with { Share = b.Share } : a)];

    public async Task<ExperimentSettings> GetAsync(long shopId, string key, CancellationToken ct)
    {
        Kind(key); // an undeclared experiment is refused before anything is cached for it
        return await _cache.GetAsync((shopId, key), static (self, at) => self.LoadAsync(at), this, ct);
    }

    /// <remarks>Not cancelled by a request that stops waiting: the shop's requests in flight share it.</remarks>
    private async Task<ExperimentSettings> LoadAsync((long ShopId, string Key) at)
    {
        var (shopId, key) = at;
        var kind = Kind(key);
        await using var cmd = db.CreateCommand("""
            SELECT arms::text, metric, guardrails::text, status, started_at, stopped_at, updated_at, updated_by
            FROM experiments WHERE shop_id = $1 AND key = $2
            """);
        cmd.Parameters.Add(Sql.Param(shopId));
        cmd.Parameters.Add(Sql.Param(key));
        await using var r = await cmd.ExecuteReaderAsync();
        return await r.ReadAsync()
                ? new ExperimentSettings(JsonSerializer.Deserialize<List<ArmShare>>(r.GetString(0), Json)!, r.GetString(1),
                    JsonSerializer.Deserialize<Guardrails>(r.GetString(2), Json)!, r.GetString(3) == "running",
                    r.IsDBNull(4) ? null : r.GetFieldValue<DateTimeOffset>(4), r.IsDBNull(5) ? null : r.GetFieldValue<DateTimeOffset>(5),
                    r.GetFieldValue<DateTimeOffset>(6), r.IsDBNull(7) ? null : r.GetString(7))
                : new ExperimentSettings(kind.Arms, kind.DefaultMetric, new Guardrails(), kind.RunsByDefault, null, null);
    }

    /// <summary>
    /// Fixes the start of an experiment that runs by default and was never saved (<see cref="FirstExposureSql"/>), with the
    /// settings it runs under (the feature's defaults), as its first save would: its results then count from there, not from
    /// a window that slid with each day. Why: the verdict's always-valid interval holds for a sample that grows from one
    /// start, read as often as one likes; until 8 Dec 2026 such an experiment counted the visitors first seen in the last 90
    /// days, a different sample every day. The settings count as standing since that start (they never changed), so an
    /// answer given before the first exposure still exposes its visitor. Clears this instance's cached settings whatever it
    /// finds, so the caller reads the row another request or instance may have written.
    /// </summary>
    public async Task FixDefaultStartAsync(long shopId, string key, CancellationToken ct)
    {
        var kind = Kind(key);
        if (!kind.RunsByDefault) return;
        await using var cmd = db.CreateCommand($"""
            INSERT INTO experiments (shop_id, key, arms, metric, guardrails, status, started_at, stopped_at, updated_at, updated_by, counted_arms)
            SELECT $1, $2, $3::jsonb, $4, $5::jsonb, 'running', f.at, NULL, f.at, NULL, $3::jsonb
            FROM (SELECT {FirstExposureSql} AS at) f
            WHERE f.at IS NOT NULL
            ON CONFLICT (shop_id, key) DO NOTHING
            """);
        cmd.Parameters.Add(Sql.Param(shopId));
        cmd.Parameters.Add(Sql.Param(key));
        cmd.Parameters.Add(Sql.Param(JsonSerializer.Serialize(kind.Arms, Json)));
        cmd.Parameters.Add(Sql.Param(kind.DefaultMetric));
        cmd.Parameters.Add(Sql.Param(JsonSerializer.Serialize(new Guardrails(), Json)));
        await cmd.ExecuteNonQueryAsync(ct);
        _cache.Remove((shopId, key));
    }

    /// <summary>The arm of a unit (null key: the stopped arm), and whether the experiment is running for this shop.</summary>
    public async Task<(string Arm, bool Running)> AssignAsync(long shopId, string shop, string key, string? unitKey, CancellationToken ct)
    {
        var kind = Kind(key);
        var s = await GetAsync(shopId, key, ct);
        if (!s.Running || unitKey is null) return (kind.StoppedArm, s.Running && unitKey is not null);
        return (Assignment.Arm(shop, unitKey, key, s.Arms, kind.StoppedArm), true);
    }

    /// <summary>
    /// Saves the shop's settings; <paramref name="running"/> starts or stops it (starting again keeps the first start). An
    /// experiment that ran by default before its first save started with its exposures (<see cref="FirstExposureSql"/>, as
    /// <see cref="FixDefaultStartAsync"/> fixes it when its results are first read), whether that save keeps it running or stops it: until 4 Dec the first save (a guardrail changed, or a
    /// stop and a start) started it anew, and the visitors already exposed, whose first exposure never changes, were out of
    /// its results for good.
    /// A save that runs it with other shares than its results count under starts it at that moment: assignment is a hash
    /// cut at the shares, so a change moves the visitors near a cut to another arm while their first exposure, and so their
    /// results, stay in the first one; counting only visitors first exposed after the change keeps every visitor counted in
    /// the arm they were served (until 5 Dec 2026 a change from 50/50 to 90/10 served 40 % of the treatment's visitors the
    /// control and went on counting their orders for the treatment). A save that stops it keeps its results whatever the
    /// shares (<c>counted_arms</c> keeps the shares they count under, and the next start with other ones starts anew), and a
    /// share the form sent back rounded to its 0.1 % is no change: the stored share stays.
    /// </summary>
    public async Task SaveAsync(long shopId, string key, IReadOnlyList<ArmShare> arms, string metric, Guardrails guardrails, bool running, string? by,
        CancellationToken ct)
    {
        var kind = Kind(key);
        var ordered = kind.Arms.Select(a => new ArmShare(a.Name, arms.First(x => x.Name == a.Name).Share, a.Description)).ToList();
        var now = clock.GetUtcNow();
        await using var conn = await db.OpenConnectionAsync(ct);
        await using var tx = await conn.BeginTransactionAsync(ct);
        bool wasRunning;
        IReadOnlyList<ArmShare> before, counted;
        await using (var read = new NpgsqlCommand("""
            SELECT status, arms::text, coalesce(counted_arms, arms)::text FROM experiments WHERE shop_id = $1 AND key = $2 FOR UPDATE
            """, conn, tx))
        {
            read.Parameters.Add(Sql.Param(shopId));
            read.Parameters.Add(Sql.Param(key));
            await using var r = await read.ExecuteReaderAsync(ct);
            var found = await r.ReadAsync(ct);
            wasRunning = found ? r.GetString(0) == "running" : kind.RunsByDefault;
            before = found ? JsonSerializer.Deserialize<List<ArmShare>>(r.GetString(1), Json)! : kind.Arms;
            counted = found ? JsonSerializer.Deserialize<List<ArmShare>>(r.GetString(2), Json)! : kind.Arms;
        }
        ordered = AsStored(ordered, before);
        var reshared = running && ordered.Any(a => counted.FirstOrDefault(b => b.Name == a.Name) is not { } b || Math.Abs(b.Share - a.Share) > 1e-9);
        await using var cmd = new NpgsqlCommand($"""
            INSERT INTO experiments (shop_id, key, arms, metric, guardrails, status, started_at, stopped_at, updated_at, updated_by, counted_arms)
            VALUES ($1, $2, $3::jsonb, $4, $5::jsonb, $6,
                    CASE WHEN $9 THEN $7 WHEN $6 = 'running' THEN least($7, coalesce({FirstExposureSql}, $7)) ELSE {FirstExposureSql} END,
                    CASE WHEN $6 = 'stopped' THEN $7 END, $7, $8, $10::jsonb)
            ON CONFLICT (shop_id, key) DO UPDATE SET arms = excluded.arms, metric = excluded.metric, guardrails = excluded.guardrails,
              counted_arms = excluded.counted_arms,
              status = excluded.status, updated_at = excluded.updated_at, updated_by = excluded.updated_by,
              started_at = CASE WHEN $9 THEN excluded.updated_at
                                ELSE coalesce(experiments.started_at, CASE WHEN excluded.status = 'running' THEN excluded.updated_at END) END,
              stopped_at = CASE WHEN excluded.status = 'stopped' AND experiments.status <> 'stopped' THEN excluded.updated_at
                                WHEN excluded.status = 'running' THEN NULL ELSE experiments.stopped_at END
            """, conn, tx);
        cmd.Parameters.Add(Sql.Param(shopId));
        cmd.Parameters.Add(Sql.Param(key));
        cmd.Parameters.Add(Sql.Param(JsonSerializer.Serialize(ordered, Json)));
        cmd.Parameters.Add(Sql.Param(metric));
        cmd.Parameters.Add(Sql.Param(JsonSerializer.Serialize(guardrails, Json)));
        cmd.Parameters.Add(Sql.Param(running ? "running" : "stopped"));
        cmd.Parameters.Add(Sql.Param(now));
        cmd.Parameters.Add(Sql.Text(by));
        cmd.Parameters.Add(Sql.Param(reshared));
        // Running, the results count under the shares it serves; stopped, under the ones they counted under before.
        cmd.Parameters.Add(Sql.Param(JsonSerializer.Serialize(running ? ordered : counted, Json)));
        await cmd.ExecuteNonQueryAsync(ct);
        // A stop opens a pause and a start closes it: the results leave out the orders placed while it was stopped.
        if (wasRunning != running)
        {
            await using var pause = new NpgsqlCommand(running ? ResumeSql(StoppedCause) : PauseSql(StoppedCause), conn, tx);
            pause.Parameters.Add(Sql.Param(shopId));
            pause.Parameters.Add(Sql.Param(key));
            pause.Parameters.Add(Sql.Param(now));
            await pause.ExecuteNonQueryAsync(ct);
        }
        await tx.CommitAsync(ct);
        _cache.Remove((shopId, key));
    }
}
