using System.Text.Json;
using Npgsql;
using PluginApp.Data;

namespace PluginApp.Training;

public sealed record ModelEntry(long Id, string Kind, int Version, string Status, string? StatusReason, DateTimeOffset? DataFrom,
    DateTimeOffset? DataTo, JsonElement Parameters, JsonElement Metrics, DateTimeOffset CreatedAt, DateTimeOffset? ActivatedAt);

public sealed record TrainingRunView(string Kind, string Trigger, string State, DateTimeOffset StartedAt, DateTimeOffset? FinishedAt, long? Rows,
    JsonElement? Parameters, JsonElement? Metrics, int? ModelVersion, string? Error);

/// <summary>What registering a trained model did: its version, whether it became active, whether it went into a staged release instead, and why.</summary>
public sealed record Registered(int Version, bool Activated, string Reason, bool Staged = false)
{
    public void Deconstruct(out int version, out bool activated, out string reason) => (version, activated, reason) = (Version, Activated, Reason);
}

/// <summary>
/// Models per shop and kind, with the promotion gate: a new model becomes active only when its held-out promotion
/// metric (the kind's, e.g. Recall@10 for the recommender) is not worse than the active one's; otherwise it stays a
/// candidate with the reason. A kind with staged releases (<see cref="ModelKind.StagedRelease"/>) whose shop has them on
/// puts a version that passes into shadow instead (Governance.StagedReleases moves it on). Every change of what serves is
/// announced (NOTIFY model_changed) so every instance reloads within seconds.
/// </summary>
public sealed class ModelRegistry(NpgsqlDataSource db, TimeProvider clock, Microsoft.Extensions.Options.IOptions<Governance.GovernanceOptions> governance)
{
    public const string Channel = "model_changed";

    /// <summary>
    /// Stores a trained model and applies the kind's gate. <paramref name="withModel"/>, given the new version, writes in the
    /// same transaction (the training run's outcome), so no one sees the model without it, nor it without the model.
    /// </summary>
    public async Task<Registered> RegisterAsync(long shopId, ModelKind modelKind, TrainedModel model, CancellationToken ct,
        Func<NpgsqlConnection, NpgsqlTransaction, int, Task>? withModel = null)
    {
        var kind = modelKind.Name;
        await using var conn = await db.OpenConnectionAsync(ct);
        await using var tx = await conn.BeginTransactionAsync(ct);
        // Serialize registrations per shop and kind so versions and the gate see one order.
        await Exec(conn, tx, "SELECT pg_advisory_xact_lock(hashtext($1))", ct, $"models:{shopId}:{kind}");
        var version = (int)(await Scalar(conn, tx, "SELECT coalesce(max(version), 0) + 1 FROM models WHERE shop_id = $1 AND kind = $2", ct, shopId, kind))!;
        var (activeVersion, activeMetrics) = await ActiveMetricsAsync(conn, tx, shopId, kind, ct);
        // A kind that gates on its baseline (order risk: the rule prior) never activates a model that does worse than it.
        var metrics = JsonSerializer.SerializeToElement(model.Metrics);
        var below = PromotionGate.BelowBaseline(modelKind, metrics);
        var gate = PromotionGate.Compare(modelKind, metrics, activeMetrics);
        var passes = below is null && gate.Passes;
        var reason = below ?? gate.Reason;
        // Why only with an active version: a shop's first model has nothing to be compared with in shadow, and serves at once.
        var release = passes && activeVersion is not null && modelKind.StagedRelease
            ? await Governance.ReleaseSettings.GetAsync(conn, tx, shopId, kind, governance.Value, ct) : null;
        var staged = release is { Staged: true };
        var how = "it serves everyone, as staged releases are off";
        if (staged && !await ActiveServesAsync(conn, tx, shopId, modelKind, ct))
        {
            staged = false;
            how = $"version {activeVersion} could not be read by this build";
            reason += $"; it serves at once, with no release: the active version {activeVersion} cannot be read by this build, so it answers nothing to compare with";
        }
        var activate = passes && !staged;
        var now = clock.GetUtcNow();
        if (activate)
        {
            await Exec(conn, tx, "UPDATE models SET status = 'retired', status_reason = $3 WHERE shop_id = $1 AND kind = $2 AND status = 'active'", ct,
                shopId, kind, $"replaced by version {version}");
            await EndReleaseAsync(conn, tx, shopId, kind, version, how, now, ct);
        }
        string? replaced = null;
        if (staged)
        {
            var previous = await Scalar(conn, tx, "SELECT version FROM models WHERE shop_id = $1 AND kind = $2 AND status IN ('shadow', 'canary')", ct, shopId, kind) as int?;
            if (previous is { } p)
            {
                await Exec(conn, tx, "UPDATE models SET status = 'candidate', status_reason = $4 WHERE shop_id = $1 AND kind = $2 AND version = $3", ct,
                    shopId, kind, p, $"its release was stopped: version {version} replaced it");
                replaced = $"; it replaces version {p}, whose release stopped";
            }
            reason = System.FormattableString.Invariant(
                $"{reason}; answers in shadow beside version {activeVersion} (logged, never shown) for {release!.ShadowDecisions} decisions, then a canary of {release.CanaryShare:P0} of {modelKind.CanaryUnit} for {release.CanaryDecisions} decisions, before it serves everyone{replaced}");
        }
        await Exec(conn, tx, """
            INSERT INTO models (shop_id, kind, version, status, status_reason, data_from, data_to, parameters, metrics, artifact, created_at, activated_at, stage_started_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9::jsonb, $10, $11, $12, $13)
            """, ct, shopId, kind, version, activate ? "active" : staged ? "shadow" : "candidate", reason, (object?)model.DataFrom ?? DBNull.Value, (object?)model.DataTo ?? DBNull.Value,
            JsonSerializer.Serialize(model.Parameters), JsonSerializer.Serialize(model.Metrics), model.Artifact, now, activate ? now : DBNull.Value,
            staged ? now : DBNull.Value);
        if (withModel is not null) await withModel(conn, tx, version);
        if (staged) await Governance.GovernanceEvents.RecordAsync(conn, tx, shopId, kind, "shadow_started", $"version {version}: {reason}", "the model registry", now, ct);
        // A version that serves at once (a shop's first, or staged releases off) changes what serves too: until 7 Dec 2026 it
        // left nothing in the governance history, while every staged step and rollback did.
        if (activate)
            await Governance.GovernanceEvents.RecordAsync(conn, tx, shopId, kind, "activated",
                $"version {version} serves everyone{(activeVersion is { } was ? $" in place of version {was}" : ", the first of its kind")}: {reason}", "the model registry", now, ct);
        if (activate || staged) await Notify(conn, tx, shopId, ct);
        await tx.CommitAsync(ct);
        return new Registered(version, activate, reason, staged);
    }

    /// <summary>The serving version and its held-out figures, if the shop has one (read under the caller's lock).</summary>
    private static async Task<(int? Version, JsonElement? Metrics)> ActiveMetricsAsync(NpgsqlConnection conn, NpgsqlTransaction tx, long shopId, string kind,
        CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand("SELECT version, metrics::text FROM models WHERE shop_id = $1 AND kind = $2 AND status = 'active'", conn, tx);
        cmd.Parameters.Add(Sql.Param(shopId));
        cmd.Parameters.Add(Sql.Param(kind));
        await using var r = await cmd.ExecuteReaderAsync(ct);
        return await r.ReadAsync(ct) ? (r.GetInt32(0), JsonDocument.Parse(r.GetString(1)).RootElement) : (null, null);
    }

    /// <summary>Whether the shop's active version of the kind (if any) can be served by this build (<see cref="ModelKind.CanServe"/>).</summary>
    public async Task<bool> ActiveServesAsync(long shopId, ModelKind kind, CancellationToken ct)
    {
        if (kind.Serves is null) return true;
        await using var conn = await db.OpenConnectionAsync(ct);
        await using var tx = await conn.BeginTransactionAsync(ct);
        return await ActiveServesAsync(conn, tx, shopId, kind, ct);
    }

    private static async Task<bool> ActiveServesAsync(NpgsqlConnection conn, NpgsqlTransaction tx, long shopId, ModelKind kind, CancellationToken ct)
    {
        if (kind.Serves is null) return true;
        return await Scalar(conn, tx, "SELECT artifact FROM models WHERE shop_id = $1 AND kind = $2 AND status = 'active'", ct, shopId, kind.Name) is not byte[] artifact
            || kind.CanServe(artifact);
    }

    /// <summary>The version in a staged release (shadow or canary) with its stage and artifact, or null.</summary>
    public async Task<(int Version, string Stage, byte[] Artifact)?> LoadReleaseAsync(long shopId, string kind, CancellationToken ct)
    {
        await using var cmd = db.CreateCommand("SELECT version, status, artifact FROM models WHERE shop_id = $1 AND kind = $2 AND status IN ('shadow', 'canary')");
        cmd.Parameters.AddWithValue(shopId);
        cmd.Parameters.AddWithValue(kind);
        await using var r = await cmd.ExecuteReaderAsync(ct);
        return await r.ReadAsync(ct) ? (r.GetInt32(0), r.GetString(1), (byte[])r[2]) : null;
    }

    /// <summary>
    /// Moves a version in release from one stage to the next (shadow to canary) or out of release (back to candidate), if it
    /// is still where the caller saw it. Returns whether it moved; announces the change.
    /// </summary>
    public async Task<bool> MoveReleaseAsync(long shopId, string kind, int version, string from, string to, string reason, string? summaryJson, CancellationToken ct,
        Governance.GovernanceEvent? record = null)
    {
        if (from is not ("shadow" or "canary") || to is not ("canary" or "candidate"))
            throw new ArgumentException($"a release moves from shadow or canary to canary or candidate, not from {from} to {to}");
        await using var conn = await db.OpenConnectionAsync(ct);
        await using var tx = await conn.BeginTransactionAsync(ct);
        await Exec(conn, tx, "SELECT pg_advisory_xact_lock(hashtext($1))", ct, $"models:{shopId}:{kind}");
        await using var cmd = new NpgsqlCommand("""
            UPDATE models SET status = $5, status_reason = $6, stage_started_at = CASE WHEN $5 = 'canary' THEN $7 ELSE stage_started_at END,
                   release_summary = coalesce($8::jsonb, release_summary)
            WHERE shop_id = $1 AND kind = $2 AND version = $3 AND status = $4
            """, conn, tx);
        foreach (var v in new object[] { shopId, kind, version, from, to, reason, clock.GetUtcNow() }) cmd.Parameters.Add(Sql.Param(v));
        cmd.Parameters.Add(Sql.Text(summaryJson));
        if (await cmd.ExecuteNonQueryAsync(ct) == 0) return false;
        if (record is { } e) await Governance.GovernanceEvents.RecordAsync(conn, tx, shopId, e.ModelKind, e.Event, e.Detail, e.By, e.At, ct);
        await Notify(conn, tx, shopId, ct);
        await tx.CommitAsync(ct);
        return true;
    }

    /// <summary>The start of the reason a version retired by a rollback keeps (the version rolled back to follows).</summary>
    private const string RolledBackFrom = "rolled back to version ";

    /// <summary>
    /// Which retired versions a rollback may go back to, as SQL over <c>models</c> (no alias): those that served and that no
    /// rollback retired. The one rule the rollback, the registry's retention (which keeps the newest of them) and the
    /// Upsells page's Roll back button read.
    /// </summary>
    public const string RollbackTarget = "status = 'retired' AND activated_at IS NOT NULL AND coalesce(status_reason, '') NOT LIKE '" + RolledBackFrom + "%'";

    /// <summary>Whether <paramref name="m"/> is a version a rollback may go back to (<see cref="RollbackTarget"/>).</summary>
    public static bool IsRollbackTarget(ModelEntry m) =>
        m.Status == "retired" && m.ActivatedAt is not null && !(m.StatusReason ?? "").StartsWith(RolledBackFrom, StringComparison.Ordinal);

    /// <summary>
    /// Makes the version that served before the active one active again: the most recently activated retired version, not
    /// counting those a rollback retired. Returns the version restored, or null when there is none. Why not those: after
    /// versions 1, 2, 3 and a rollback to 2, a second rollback must reach 1; until 6 Dec 2026 it took 3 back, the version
    /// just rolled back from, whose activation was the more recent.
    /// </summary>
    /// <param name="record">The governance event of the rollback, given the versions (from, to); written in its transaction.</param>
    public async Task<int?> RollbackAsync(long shopId, string kind, CancellationToken ct, Func<int?, int, Governance.GovernanceEvent>? record = null)
    {
        await using var conn = await db.OpenConnectionAsync(ct);
        await using var tx = await conn.BeginTransactionAsync(ct);
        await Exec(conn, tx, "SELECT pg_advisory_xact_lock(hashtext($1))", ct, $"models:{shopId}:{kind}");
        var previous = await Scalar(conn, tx, $"""
            SELECT version FROM models WHERE shop_id = $1 AND kind = $2 AND {RollbackTarget}
            ORDER BY activated_at DESC LIMIT 1
            """, ct, shopId, kind) as int?;
        if (previous is null) return null;
        await EndReleaseAsync(conn, tx, shopId, kind, previous.Value, "a rollback", clock.GetUtcNow(), ct);
        var replaced = await Scalar(conn, tx, "SELECT version FROM models WHERE shop_id = $1 AND kind = $2 AND status = 'active'", ct, shopId, kind) as int?;
        await Exec(conn, tx, "UPDATE models SET status = 'retired', status_reason = $3 WHERE shop_id = $1 AND kind = $2 AND status = 'active'", ct,
            shopId, kind, $"{RolledBackFrom}{previous}");
        if (record?.Invoke(replaced, previous.Value) is { } e) await Governance.GovernanceEvents.RecordAsync(conn, tx, shopId, e.ModelKind, e.Event, e.Detail, e.By, e.At, ct);
        await Exec(conn, tx, "UPDATE models SET status = 'active', status_reason = 'rollback', activated_at = $4 WHERE shop_id = $1 AND kind = $2 AND version = $3", ct,
            shopId, kind, previous.Value, clock.GetUtcNow());
        await Notify(conn, tx, shopId, ct);
        await tx.CommitAsync(ct);
        return previous;
    }

    /// <summary>
    /// Makes a candidate or retired version active on the merchant's word, through the same gate as a new model: refused
    /// when its held-out promotion metric is worse than the active version's.
    /// </summary>
    /// <param name="by">Who promotes, in words ("the merchant", "the staged release").</param>
    /// <param name="record">The governance event of the promotion, given its reason; written in the promotion's transaction.</param>
    /// <param name="stage">The release stage the caller saw the version in, when it promotes a release: refused if the version
    /// left it meanwhile (stopped by the merchant, or replaced by a newer release), which would otherwise serve everyone.</param>
    public async Task<(bool Promoted, string Reason)> PromoteAsync(long shopId, ModelKind modelKind, int version, CancellationToken ct, string by = "the merchant",
        Func<string, Governance.GovernanceEvent>? record = null, string? stage = null)
    {
        var kind = modelKind.Name;
        await using var conn = await db.OpenConnectionAsync(ct);
        await using var tx = await conn.BeginTransactionAsync(ct);
        await Exec(conn, tx, "SELECT pg_advisory_xact_lock(hashtext($1))", ct, $"models:{shopId}:{kind}");
        var target = await Scalar(conn, tx, "SELECT metrics::text FROM models WHERE shop_id = $1 AND kind = $2 AND version = $3 AND status <> 'active' AND status = coalesce($4::text, status)",
            ct, shopId, kind, version, (object?)stage ?? DBNull.Value) as string;
        if (target is null)
            return (false, stage is null ? $"version {version} is not an inactive {kind} model of this shop" : $"version {version} is no longer in {stage}");
        var (_, activeMetrics) = await ActiveMetricsAsync(conn, tx, shopId, kind, ct);
        var metrics = JsonDocument.Parse(target).RootElement;
        if (PromotionGate.BelowBaseline(modelKind, metrics) is { } below) return (false, below);
        var gate = PromotionGate.Compare(modelKind, metrics, activeMetrics);
        if (!gate.Passes) return (false, gate.Reason);
        await Exec(conn, tx, "UPDATE models SET status = 'retired', status_reason = $3 WHERE shop_id = $1 AND kind = $2 AND status = 'active'", ct,
            shopId, kind, $"replaced by version {version} (promoted by {by})");
        var reason = $"promoted by {by}: {gate.Reason}";
        await EndReleaseAsync(conn, tx, shopId, kind, version, "promoted by " + by, clock.GetUtcNow(), ct);
        await Exec(conn, tx, "UPDATE models SET status = 'active', status_reason = $4, activated_at = $5 WHERE shop_id = $1 AND kind = $2 AND version = $3", ct,
            shopId, kind, version, reason, clock.GetUtcNow());
        if (record?.Invoke(reason) is { } e) await Governance.GovernanceEvents.RecordAsync(conn, tx, shopId, e.ModelKind, e.Event, e.Detail, e.By, e.At, ct);
        await Notify(conn, tx, shopId, ct);
        await tx.CommitAsync(ct);
        return (true, reason);
    }

    /// <summary>The active model's version and artifact, or null.</summary>
    public async Task<(int Version, byte[] Artifact)?> LoadActiveAsync(long shopId, string kind, CancellationToken ct)
    {
        await using var cmd = db.CreateCommand("SELECT version, artifact FROM models WHERE shop_id = $1 AND kind = $2 AND status = 'active'");
        cmd.Parameters.AddWithValue(shopId);
        cmd.Parameters.AddWithValue(kind);
        await using var r = await cmd.ExecuteReaderAsync(ct);
        return await r.ReadAsync(ct) ? (r.GetInt32(0), (byte[])r[1]) : null;
    }

    public async Task<List<ModelEntry>> ListAsync(long shopId, CancellationToken ct)
    {
        await using var cmd = db.CreateCommand("""
            SELECT id, kind, version, status, status_reason, data_from, data_to, parameters::text, metrics::text, created_at, activated_at
            FROM models WHERE shop_id = $1 ORDER BY kind, version DESC
            """);
        cmd.Parameters.AddWithValue(shopId);
        var list = new List<ModelEntry>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
            list.Add(new ModelEntry(r.GetInt64(0), r.GetString(1), r.GetInt32(2), r.GetString(3), r.IsDBNull(4) ? null : r.GetString(4),
                r.IsDBNull(5) ? null : r.GetFieldValue<DateTimeOffset>(5), r.IsDBNull(6) ? null : r.GetFieldValue<DateTimeOffset>(6),
                JsonDocument.Parse(r.GetString(7)).RootElement.Clone(), JsonDocument.Parse(r.GetString(8)).RootElement.Clone(),
                r.GetFieldValue<DateTimeOffset>(9), r.IsDBNull(10) ? null : r.GetFieldValue<DateTimeOffset>(10)));
        return list;
    }

    /// <summary>The shop's latest training runs (of one kind, or of every kind), newest first.</summary>
    /// <remarks>Why the kind in the query: a page of one kind that filtered the shop's 50 latest runs of every kind showed
    /// "no training has run yet" once other kinds' runs (retrainings on new orders, skips) had filled them (until 6 Dec 2026).</remarks>
    public async Task<List<TrainingRunView>> TrainingRunsAsync(long shopId, CancellationToken ct, string? kind = null, int limit = 50)
    {
        await using var cmd = db.CreateCommand($"""
            SELECT kind, trigger, state, started_at, finished_at, rows, parameters::text, metrics::text, model_version, error
            FROM training_runs WHERE shop_id = $1{(kind is null ? "" : " AND kind = $3")} ORDER BY id DESC LIMIT $2
            """);
        cmd.Parameters.AddWithValue(shopId);
        cmd.Parameters.AddWithValue(limit);
        if (kind is not null) cmd.Parameters.AddWithValue(kind);
        var list = new List<TrainingRunView>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
            list.Add(new TrainingRunView(r.GetString(0), r.GetString(1), r.GetString(2), r.GetFieldValue<DateTimeOffset>(3),
                r.IsDBNull(4) ? null : r.GetFieldValue<DateTimeOffset>(4), r.IsDBNull(5) ? null : r.GetInt64(5),
                r.IsDBNull(6) ? null : JsonDocument.Parse(r.GetString(6)).RootElement.Clone(),
                r.IsDBNull(7) ? null : JsonDocument.Parse(r.GetString(7)).RootElement.Clone(),
                r.IsDBNull(8) ? null : r.GetInt32(8), r.IsDBNull(9) ? null : r.GetString(9)));
        return list;
    }

    /// <summary>
    /// Ends any release of another version when <paramref name="serving"/> comes to serve everyone by another path (staged
    /// releases off, a promotion, a rollback): the version goes back to candidate, with its event. Why: until 7 Dec 2026 it
    /// kept answering its canary share beside the version the merchant chose, held every training of its kind back, and at
    /// the end of its canary could replace that version.
    /// </summary>
    private static async Task EndReleaseAsync(NpgsqlConnection conn, NpgsqlTransaction tx, long shopId, string kind, int serving, string how, DateTimeOffset now,
        CancellationToken ct)
    {
        var ended = new List<(int Version, string Stage)>();
        await using (var cmd = new NpgsqlCommand("""
            UPDATE models m SET status = 'candidate', status_reason = $4
            FROM models old WHERE old.id = m.id AND m.shop_id = $1 AND m.kind = $2 AND m.status IN ('shadow', 'canary') AND m.version <> $3
            RETURNING m.version, old.status
            """, conn, tx))
        {
            foreach (var v in new object[] { shopId, kind, serving, $"its release stopped: version {serving} serves everyone ({how})" }) cmd.Parameters.Add(Sql.Param(v));
            await using var r = await cmd.ExecuteReaderAsync(ct);
            while (await r.ReadAsync(ct)) ended.Add((r.GetInt32(0), r.GetString(1)));
        }
        foreach (var (version, stage) in ended)
            await Governance.GovernanceEvents.RecordAsync(conn, tx, shopId, kind, "release_stopped",
                $"version {version}: stopped in {stage}, as version {serving} serves everyone ({how})", "the model registry", now, ct);
    }

    private static Task Notify(NpgsqlConnection conn, NpgsqlTransaction tx, long shopId, CancellationToken ct) =>
        Exec(conn, tx, "SELECT pg_notify($1, $2)", ct, Channel, shopId.ToString(System.Globalization.CultureInfo.InvariantCulture));

    private static async Task Exec(NpgsqlConnection conn, NpgsqlTransaction tx, string sql, CancellationToken ct, params object?[] args)
    {
        await using var cmd = new NpgsqlCommand(sql, conn, tx);
        foreach (var a in args) cmd.Parameters.Add(new NpgsqlParameter { Value = a ?? DBNull.Value });
        await cmd.ExecuteNonQueryAsync(ct);
    }

    private static async Task<object?> Scalar(NpgsqlConnection conn, NpgsqlTransaction tx, string sql, CancellationToken ct, params object[] args)
    {
        await using var cmd = new NpgsqlCommand(sql, conn, tx);
        foreach (var a in args) cmd.Parameters.Add(new NpgsqlParameter { Value = a });
        var v = await cmd.ExecuteScalarAsync(ct);
        return v is DBNull ? null : v;
    }
}
