using System.Globalization;
using System.Text.Json;
using Microsoft.Extensions.Options;
using Npgsql;
using PluginApp.Data;
using PluginApp.Training;

namespace PluginApp.Governance;

/// <summary>A version in a staged release as the merchant sees it: where it is, how far, how it compares, and its guardrail.</summary>
/// <param name="Decisions">Decisions it has made in this stage (shadow answers logged, or canary answers served).</param>
/// <param name="Target">Decisions after which it moves on (shadow to canary, canary to active).</param>
/// <param name="Agreement">Mean overlap of what it would have shown and what was shown (in shadow; kept from the shadow stage during the canary).</param>
/// <param name="Effect">The estimated effect, as the registry's gate (<see cref="PromotionGate"/>) compares the versions: where
/// both measured the kind's baseline in their own run, its held-out lead over that baseline minus the active version's lead
/// over its own; otherwise its held-out promotion metric minus the active version's. Why the leads: each version was measured
/// on its own window, and until 5 Dec 2026 a version the gate let into shadow for its larger lead was stopped after its shadow
/// decisions as "now worse" for a lower raw figure from a harder month, every night.</param>
public sealed record ReleaseView(string Kind, string Title, int Version, string Stage, int? ActiveVersion, DateTimeOffset StageStartedAt,
    long Decisions, int Target, long Failures, string? LastFailure, double? Agreement, long Compared, string Metric, double? CandidateMetric,
    double? ActiveMetric, double CanaryShare, string Guardrail, bool Breached, bool GuardrailRead = true,
    double? CandidateBaseline = null, double? ActiveBaseline = null, string? BaselineName = null, string? NotComparable = null, bool GuardrailReadable = true)
{
    /// <summary>Whether <see cref="Effect"/> compares the leads over the baseline.</summary>
    public bool AgainstBaseline => CandidateBaseline is not null && ActiveBaseline is not null;

    /// <summary>
    /// None when the active version's figure is not comparable (<see cref="NotComparable"/>, why). Why: the gate let such a
    /// version through, and until 6 Dec 2026 its shadow step then stopped it as "now worse" on the figures the gate had set
    /// aside, every night, so the first purchase-intent version judged on shown carts never served where releases are staged.
    /// </summary>
    public double? Effect => NotComparable is null && CandidateMetric is { } c && ActiveMetric is { } a
        ? AgainstBaseline ? (c - CandidateBaseline!.Value) - (a - ActiveBaseline!.Value) : c - a
        : null;
}

/// <summary>
/// Shadow and canary releases, one mechanism for every model kind that opts in (<see cref="ModelKind.StagedRelease"/>). A new
/// version that passes the held-out gate while another serves is put in shadow by the registry: serving computes its answer
/// to the same requests and logs it in decisions.shadow, never showing it. After the shop's number of shadow decisions this
/// job compares them (agreement: the mean overlap of what it would have shown with what was shown; the estimated effect:
/// its held-out metric against the active version's) and, if it never failed, starts its canary: a deterministic share of
/// visitors gets its answers (their decisions say so), and its errors send them the active version's answer and count
/// against it. A broken guardrail (too many failures, or the kind's own: the recommender's click-through) rolls it back at
/// once; a canary that makes its number of decisions without one is promoted through the registry's gate. Every step is a
/// governance event in words.
/// </summary>
public sealed class StagedReleases(NpgsqlDataSource db, ModelKinds kinds, ModelRegistry registry, IOptions<GovernanceOptions> options,
    IServiceProvider services, TimeProvider clock, ILogger<StagedReleases> logger)
{
    public const string Guard = "the release guardrail";
    public const string Stager = "the staged release";

    /// <summary>How many times its decisions a canary waits for its guardrail to be read before it is promoted unguarded.</summary>
    public const int GuardrailWaitFactor = 3;

    /// <summary>Every shop with a version in release (the recurring job).</summary>
    public async Task SweepAsync(CancellationToken ct)
    {
        var shops = new List<long>();
        await using (var cmd = db.CreateCommand($"""
            SELECT DISTINCT m.shop_id FROM models m JOIN shops s ON s.id = m.shop_id WHERE m.status IN ('shadow', 'canary') AND {StoreData.ShopStatus.Installed("s")}
            """))
        await using (var r = await cmd.ExecuteReaderAsync(ct))
            while (await r.ReadAsync(ct)) shops.Add(r.GetInt64(0));
        foreach (var shop in shops)
        {
            try { await RunShopAsync(shop, ct); }
            catch (Exception e) when (e is NpgsqlException or InvalidOperationException) { logger.LogWarning("Releases of shop {Shop}: {Message}", shop, e.Message); }
        }
    }

    /// <summary>Moves each of the shop's releases on, back, or leaves it where it is.</summary>
    public async Task RunShopAsync(long shopId, CancellationToken ct)
    {
        foreach (var view in await StatusAsync(shopId, ct))
        {
            var kind = kinds[view.Kind];
            if (view.Stage == "shadow") await ShadowStepAsync(shopId, kind, view, ct);
            else await CanaryStepAsync(shopId, kind, view, ct);
        }
    }

    private async Task ShadowStepAsync(long shopId, ModelKind kind, ReleaseView v, CancellationToken ct)
    {
        var o = options.Value;
        if (v.Failures > 0 && (v.Failures >= o.BreakerFailures || v.Decisions >= v.Target))
        {
            await StopAsync(shopId, kind, v, "shadow_stopped", Guard,
                $"failed {Count(v.Failures)} of {Count(v.Decisions)} times in shadow (the last: {v.LastFailure}); a version that fails in shadow gets no canary", ct);
            return;
        }
        if (v.Decisions < v.Target) return;
        if (v.Effect is < 0)
        {
            await StopAsync(shopId, kind, v, "shadow_stopped", Guard, $"it is now worse than the active version {v.ActiveVersion}: {EffectWords(v)}", ct);
            return;
        }
        var settings = await ReleaseSettings.GetAsync(db, shopId, kind.Name, options.Value, ct);
        var summary = JsonSerializer.Serialize(new { agreement = v.Agreement, compared = v.Compared, shadow_decisions = v.Decisions, effect = v.Effect });
        var words = Inv($"after {Count(v.Decisions)} shadow decisions beside version {v.ActiveVersion} without a failure, ") +
                    AgreementWords(v) + ", " + EffectWords(v) +
                    Inv($"; it now answers {v.CanaryShare:P0} of {kind.CanaryUnit} (each kept on one version by a hash) for {Count(settings.CanaryDecisions)} decisions");
        if (!await registry.MoveReleaseAsync(shopId, kind.Name, v.Version, "shadow", "canary", "in canary: " + words, summary, ct,
                new GovernanceEvent(kind.Name, "canary_started", $"version {v.Version}: {words}", Stager, clock.GetUtcNow()))) return;
        kind.OnReleaseChanged?.Invoke(services, shopId);
    }

    private async Task CanaryStepAsync(long shopId, ModelKind kind, ReleaseView v, CancellationToken ct)
    {
        if (v.Breached)
        {
            await StopAsync(shopId, kind, v, "canary_rolled_back", Guard, $"rolled back automatically: {v.Guardrail}; every visitor gets version {v.ActiveVersion} again", ct);
            return;
        }
        if (v.Decisions - v.Failures < v.Target) return;
        // Why wait for the guardrail: a canary promoted before it was read was never guarded at all. Why not for ever: a store
        // whose guardrail cannot be read (its theme sends no impressions) would keep the kind's trainings held behind it; past
        // GuardrailWaitFactor times its decisions it is promoted, and the event says the guardrail was never read.
        // One that cannot be read whatever the wait (a state a small store's canary share keeps too small) is promoted at its
        // decisions, saying so.
        if (!v.GuardrailRead && v.GuardrailReadable && v.Decisions - v.Failures < (long)v.Target * GuardrailWaitFactor) return;
        var unguarded = v.GuardrailRead ? "" : v.GuardrailReadable ? Inv($" without its guardrail read after {GuardrailWaitFactor} times its decisions")
            : " without its guardrail, which a store this size cannot read";
        var (promoted, reason) = await registry.PromoteAsync(shopId, kind, v.Version, ct, by: Stager, record: reason => new GovernanceEvent(kind.Name, "promoted",
            $"version {v.Version} serves everyone after {Count(v.Decisions)} canary decisions{unguarded} ({v.Guardrail}); version {v.ActiveVersion} is retired. {Capitalized(reason)}",
            Stager, clock.GetUtcNow()), stage: v.Stage);
        if (!promoted)
        {
            await StopAsync(shopId, kind, v, "canary_stopped", Guard, $"not promoted after its canary: {reason}", ct);
            return;
        }
        kind.Activated(services, shopId);
    }

    /// <summary>The merchant stops a release: the version goes back to candidate and everyone gets the active version.</summary>
    public async Task<(bool Stopped, string Detail)> StopByMerchantAsync(long shopId, string kindName, string? by, string? why, CancellationToken ct)
    {
        var v = (await StatusAsync(shopId, ct)).FirstOrDefault(r => r.Kind == kindName);
        if (v is null) return (false, $"no {kindName} version is in shadow or canary");
        var detail = $"stopped in {v.Stage} by {by ?? "the merchant"}" + (string.IsNullOrWhiteSpace(why) ? "" : $": {why.Trim()}");
        return (await StopAsync(shopId, kinds[kindName], v, "release_stopped", by ?? "the merchant", detail, ct), detail);
    }

    /// <summary>The merchant promotes a version in release now, through the registry's held-out gate.</summary>
    public async Task<(bool Promoted, string Detail)> PromoteByMerchantAsync(long shopId, string kindName, string? by, CancellationToken ct)
    {
        var v = (await StatusAsync(shopId, ct)).FirstOrDefault(r => r.Kind == kindName);
        if (v is null) return (false, $"no {kindName} version is in shadow or canary");
        var kind = kinds[kindName];
        var (promoted, reason) = await registry.PromoteAsync(shopId, kind, v.Version, ct, by: by ?? "the merchant", record: reason => new GovernanceEvent(kind.Name, "promoted",
            $"version {v.Version} promoted from {v.Stage} before the end of its release ({Count(v.Decisions)} of {Count(v.Target)} decisions); {reason}", by ?? "the merchant",
            clock.GetUtcNow()), stage: v.Stage);
        if (!promoted) return (false, reason);
        kind.Activated(services, shopId);
        kind.OnReleaseChanged?.Invoke(services, shopId);
        return (true, reason);
    }

    private async Task<bool> StopAsync(long shopId, ModelKind kind, ReleaseView v, string evt, string by, string detail, CancellationToken ct)
    {
        if (!await registry.MoveReleaseAsync(shopId, kind.Name, v.Version, v.Stage, "candidate", detail, null, ct,
                new GovernanceEvent(kind.Name, evt, $"version {v.Version}: {detail}", by, clock.GetUtcNow()))) return false;
        kind.OnReleaseChanged?.Invoke(services, shopId);
        logger.LogInformation("Shop {Shop}: {Kind} v{Version} left its {Stage}: {Detail}", shopId, kind.Name, v.Version, v.Stage, detail);
        return true;
    }

    /// <summary>The shop's versions in release, each with its numbers so far and its guardrail's reading.</summary>
    public async Task<List<ReleaseView>> StatusAsync(long shopId, CancellationToken ct)
    {
        var list = new List<ReleaseView>();
        var staged = kinds.All.Where(k => k.StagedRelease).ToList();
        if (staged.Count == 0) return list;
        var models = await registry.ListAsync(shopId, ct);
        foreach (var kind in staged)
        {
            if (models.FirstOrDefault(m => m.Kind == kind.Name && m.Status is "shadow" or "canary") is not { } release) continue;
            var active = models.FirstOrDefault(m => m.Kind == kind.Name && m.Status == "active");
            var settings = await ReleaseSettings.GetAsync(db, shopId, kind.Name, options.Value, ct);
            var from = await StageStartedAsync(shopId, kind.Name, release.Version, ct) ?? release.CreatedAt;
            list.Add(release.Status == "shadow"
                ? await ShadowViewAsync(shopId, kind, release, active, from, settings, ct)
                : await CanaryViewAsync(shopId, kind, release, active, from, settings, ct));
        }
        return list;
    }

    private async Task<DateTimeOffset?> StageStartedAsync(long shopId, string kind, int version, CancellationToken ct)
    {
        await using var cmd = db.CreateCommand("SELECT stage_started_at FROM models WHERE shop_id = $1 AND kind = $2 AND version = $3");
        foreach (var v in new object[] { shopId, kind, version }) cmd.Parameters.Add(Sql.Param(v));
        return await cmd.ExecuteScalarAsync(ct) as DateTimeOffset?;
    }

    private async Task<ReleaseView> ShadowViewAsync(long shopId, ModelKind kind, ModelEntry release, ModelEntry? active, DateTimeOffset from,
        ReleaseSettings settings, CancellationToken ct)
    {
        // Agreement: for answers that are lists (products), the share of the larger list both hold; for a single answer (a level, an action), whether they match
        // (the active version's own choice where the decision logs it, "policy": a cart offer's before exploration).
        await using var cmd = db.CreateCommand($$"""
            WITH d AS (
                SELECT customer_id, shadow, decided_at,
                       CASE WHEN shadow ? 'failed' THEN NULL
                            WHEN shadow ? 'ids' THEN CASE WHEN greatest(cardinality(output_ids), jsonb_array_length(shadow->'ids')) = 0 THEN 1.0
                                 ELSE (SELECT count(*) FROM unnest(output_ids) x WHERE x IN (SELECT jsonb_array_elements_text(shadow->'ids')::bigint))::float8
                                      / greatest(cardinality(output_ids), jsonb_array_length(shadow->'ids')) END
                            WHEN shadow ? 'subject' THEN (shadow->>'subject' IS NOT DISTINCT FROM coalesce(shadow->>'policy', subject))::int::float8 END AS overlap
                FROM decisions WHERE shop_id = $1 AND kind = $2 AND decided_at >= $3 AND shadow IS NOT NULL AND shadow->>'version' = $4)
            SELECT count({{Counted(kind)}}), count({{Counted(kind)}}) FILTER (WHERE shadow ? 'failed'),
                   (array_agg(shadow->>'failed' ORDER BY decided_at DESC) FILTER (WHERE shadow ? 'failed'))[1], avg(overlap), count(overlap)
            FROM d
            """);
        foreach (var v in new object[] { shopId, kind.DecisionKind ?? kind.Name, from, release.Version.ToString(CultureInfo.InvariantCulture) }) cmd.Parameters.Add(Sql.Param(v));
        await using var r = await cmd.ExecuteReaderAsync(ct);
        await r.ReadAsync(ct);
        var (n, failures, last, agreement, compared) = (r.GetInt64(0), r.GetInt64(1), r.IsDBNull(2) ? null : r.GetString(2), r.IsDBNull(3) ? (double?)null : r.GetDouble(3), r.GetInt64(4));
        var guardrail = failures == 0 ? "no failure in shadow" : $"failed {Count(failures)} times in shadow (the last: {last})";
        return WithBaselines(new ReleaseView(kind.Name, kind.Title, release.Version, "shadow", active?.Version, from, n, settings.ShadowDecisions, failures, last, agreement, compared,
            kind.MetricName, Metric(release, kind), active is null ? null : Metric(active, kind), settings.CanaryShare, guardrail, failures > 0), release, active, kind);
    }

    private async Task<ReleaseView> CanaryViewAsync(long shopId, ModelKind kind, ModelEntry release, ModelEntry? active, DateTimeOffset from,
        ReleaseSettings settings, CancellationToken ct)
    {
        long n, failures;
        string? last;
        await using (var cmd = db.CreateCommand($$"""
            SELECT count({{Counted(kind)}}), count({{Counted(kind)}}) FILTER (WHERE output ? 'failed'),
                   (array_agg(output->>'failed' ORDER BY decided_at DESC) FILTER (WHERE output ? 'failed'))[1]
            FROM decisions WHERE shop_id = $1 AND kind = $2 AND decided_at >= $3 AND output->>'release' = 'canary' AND output->>'candidate' = $4
            """))
        {
            foreach (var v in new object[] { shopId, kind.DecisionKind ?? kind.Name, from, release.Version.ToString(CultureInfo.InvariantCulture) }) cmd.Parameters.Add(Sql.Param(v));
            await using var r = await cmd.ExecuteReaderAsync(ct);
            await r.ReadAsync(ct);
            (n, failures, last) = (r.GetInt64(0), r.GetInt64(1), r.IsDBNull(2) ? null : r.GetString(2));
        }
        double? agreement = null;
        long compared = 0;
        await using (var cmd = db.CreateCommand("SELECT release_summary::text FROM models WHERE shop_id = $1 AND kind = $2 AND version = $3"))
        {
            foreach (var v in new object[] { shopId, kind.Name, release.Version }) cmd.Parameters.Add(Sql.Param(v));
            if (await cmd.ExecuteScalarAsync(ct) is string json)
            {
                var s = JsonDocument.Parse(json).RootElement;
                if (s.TryGetProperty("agreement", out var a) && a.ValueKind == JsonValueKind.Number) agreement = a.GetDouble();
                if (s.TryGetProperty("compared", out var c) && c.ValueKind == JsonValueKind.Number) compared = c.GetInt64();
            }
        }
        var o = options.Value;
        var share = n == 0 ? 0 : (double)failures / n;
        // Judged once the minimum is made, or once the canary has made its decisions: a shop whose target is below the
        // minimum (`canaryDecisions` 20 against 50) was promoted with a third of its answers failed (until 7 Dec 2026).
        var failed = (n >= o.CanaryMinDecisions || n - failures >= settings.CanaryDecisions) && share > o.CanaryMaxFailureShare;
        var words = new List<string>
        {
            Inv($"{Count(failures)} of {Count(n)} canary decisions failed ({share:P1}; the limit is {o.CanaryMaxFailureShare:P1} once {Count(o.CanaryMinDecisions)} are made, or its decisions)")
            + (last is null ? "" : $", the last: {last}"),
        };
        var breached = failed;
        var (read, readable) = (true, true);
        if (!failed && kind.ReleaseGuardrail is { } guardrail)
        {
            var reading = await guardrail(services, new ReleaseWindow(shopId, release.Version, active?.Version, from), ct);
            if (reading is not null)
            {
                words.Add(reading.Detail);
                breached |= reading.Breached;
                (read, readable) = (reading.Read, reading.Readable);
            }
        }
        if (!read && readable && n - failures >= settings.CanaryDecisions)
            words.Add(Inv($"its decisions are made: it is promoted once its guardrail is read, or unguarded after {Count((long)settings.CanaryDecisions * GuardrailWaitFactor)}"));
        return WithBaselines(new ReleaseView(kind.Name, kind.Title, release.Version, "canary", active?.Version, from, n, settings.CanaryDecisions, failures, last, agreement, compared,
            kind.MetricName, Metric(release, kind), active is null ? null : Metric(active, kind), settings.CanaryShare, string.Join("; ", words), breached, read)
            { GuardrailReadable = readable }, release, active, kind);
    }

    private static double? Metric(ModelEntry m, ModelKind kind) => PromotionGate.Figure(m.Metrics, kind);

    /// <summary>
    /// What a release's decisions are counted by: each decision, or, for a kind that scores every customer in a run
    /// (<see cref="ModelKind.ReleaseCountsCustomersDaily"/>), each customer once a day (UTC). Why: churn logs its shadow's and
    /// canary's customers at every run, and until 8 Dec 2026 every run counted, so a day's extra runs (a release's settings
    /// saved, churn switched on) ended a release of four days' customers in one, having seen the same customers four times.
    /// </summary>
    private static string Counted(ModelKind kind) => kind.ReleaseCountsCustomersDaily ? "DISTINCT (customer_id, date_trunc('day', decided_at, 'UTC'))" : "*";

    /// <summary>The view with both versions' baseline figures of their own runs, where the kind measures one.</summary>
    private static ReleaseView WithBaselines(ReleaseView v, ModelEntry release, ModelEntry? active, ModelKind kind) => v with
    {
        CandidateBaseline = PromotionGate.Metric(release.Metrics, kind.BaselineMetric),
        ActiveBaseline = active is null ? null : PromotionGate.Metric(active.Metrics, kind.BaselineMetric),
        BaselineName = kind.BaselineName,
        NotComparable = active is null ? null : PromotionGate.NotComparable(kind, release.Metrics, active.Metrics),
    };

    public static string AgreementWords(ReleaseView v) => v.Agreement is { } a
        ? Inv($"it agreed with version {v.ActiveVersion} on {a:P0} of what was shown ({Count(v.Compared)} answers compared)")
        : "no answer could be compared yet";

    public static string EffectWords(ReleaseView v) => v.NotComparable is { } why ? $"no estimate of its effect: the active version's held-out {v.Metric} is not comparable ({why})"
        : v.Effect is not { } e ? $"no held-out {v.Metric} to compare"
        : v.AgainstBaseline
            ? Inv($"estimated effect {e:+0.0000;-0.0000;0.0000} held-out {v.Metric} against {v.BaselineName}, each on its own held-out data ") +
              Inv($"({v.CandidateMetric:F4}, {v.CandidateMetric - v.CandidateBaseline:+0.0000;-0.0000;0.0000} against it; the active version's {v.ActiveMetric:F4}, {v.ActiveMetric - v.ActiveBaseline:+0.0000;-0.0000;0.0000})")
            : Inv($"estimated effect {e:+0.0000;-0.0000;0.0000} held-out {v.Metric} ({v.CandidateMetric:F4} against {v.ActiveMetric:F4})");

    private static string Count(long n) => n.ToString("N0", CultureInfo.InvariantCulture);

    private static string Inv(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);

    private static string Capitalized(string s) => s.Length == 0 ? s : char.ToUpperInvariant(s[0]) + s[1..] + (s.EndsWith('.') ? "" : ".");
}
