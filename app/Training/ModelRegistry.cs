using System.Text.Json;
using Npgsql;
using PluginApp.Data;

namespace PluginApp.Training;

public sealed record ModelEntry(long Id, string Kind, int Version, string Status, string? StatusReason, DateTimeOffset? DataFrom,
    DateTimeOffset? DataTo, JsonElement Parameters, JsonElement Metrics, DateTimeOffset CreatedAt, DateTimeOffset? ActivatedAt);

public sealed record TrainingRunView(string Kind, string Trigger, string State, DateTimeOffset StartedAt, DateTimeOffset? FinishedAt, long? Rows,
    JsonElement? Parameters, JsonElement? Metrics, int? ModelVersion, string? Error);

/// <summary>
/// Models per shop and kind, with the promotion gate: a new model becomes active only when its held-out promotion
/// metric (the kind's, e.g. Recall@10 for the recommender) is not worse than the active one's; otherwise it stays a
/// candidate with the reason. Every change of the active model is announced (NOTIFY model_changed) so every instance
/// reloads within seconds.
/// </summary>
public sealed class ModelRegistry(NpgsqlDataSource db, TimeProvider clock)
{
    public const string Channel = "model_changed";

    /// <summary>Stores a trained model and applies the kind's gate. Returns its version and whether it became active.</summary>
    public async Task<(int Version, bool Activated, string Reason)> RegisterAsync(long shopId, ModelKind modelKind, TrainedModel model, CancellationToken ct)
    {
        var kind = modelKind.Name;
        var metric = modelKind.PromotionMetric;
        var candidate = model.MetricValue(metric);
        await using var conn = await db.OpenConnectionAsync(ct);
        await using var tx = await conn.BeginTransactionAsync(ct);
        // Serialize registrations per shop and kind so versions and the gate see one order.
        await Exec(conn, tx, "SELECT pg_advisory_xact_lock(hashtext($1))", ct, $"models:{shopId}:{kind}");
        var version = (int)(await Scalar(conn, tx, "SELECT coalesce(max(version), 0) + 1 FROM models WHERE shop_id = $1 AND kind = $2", ct, shopId, kind))!;
        var active = await Scalar(conn, tx,
            "SELECT (metrics->>$3)::float8 FROM models WHERE shop_id = $1 AND kind = $2 AND status = 'active'", ct, shopId, kind, metric) as double?;
        // A kind that gates on its baseline (order risk: the rule prior) never activates a model that does worse than it.
        var baseline = modelKind.BaselineGate && modelKind.BaselineMetric is { } b ? model.MetricValue(b) : (double?)null;
        var beatsBaseline = baseline is null || candidate >= baseline.Value;
        var activate = beatsBaseline && (active is null || candidate >= active.Value);
        var reason = !beatsBaseline ? $"held-out {metric} {candidate:F4} is below the baseline's {baseline:F4} on the same orders"
            : active is null ? "first model"
            : activate ? $"held-out {metric} {candidate:F4} is not worse than the active model's {active:F4}"
            : $"held-out {metric} {candidate:F4} is worse than the active model's {active:F4}";
        var now = clock.GetUtcNow();
        if (activate)
            await Exec(conn, tx, "UPDATE models SET status = 'retired', status_reason = $3 WHERE shop_id = $1 AND kind = $2 AND status = 'active'", ct,
                shopId, kind, $"replaced by version {version}");
        await Exec(conn, tx, """
            INSERT INTO models (shop_id, kind, version, status, status_reason, data_from, data_to, parameters, metrics, artifact, created_at, activated_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9::jsonb, $10, $11, $12)
            """, ct, shopId, kind, version, activate ? "active" : "candidate", reason, (object?)model.DataFrom ?? DBNull.Value, (object?)model.DataTo ?? DBNull.Value,
            JsonSerializer.Serialize(model.Parameters), JsonSerializer.Serialize(model.Metrics), model.Artifact, now, activate ? now : DBNull.Value);
        if (activate) await Notify(conn, tx, shopId, ct);
        await tx.CommitAsync(ct);
        return (version, activate, reason);
    }

    /// <summary>Makes the most recently retired version active again. Returns the version restored, or null when there is none.</summary>
    public async Task<int?> RollbackAsync(long shopId, string kind, CancellationToken ct)
    {
        await using var conn = await db.OpenConnectionAsync(ct);
        await using var tx = await conn.BeginTransactionAsync(ct);
        await Exec(conn, tx, "SELECT pg_advisory_xact_lock(hashtext($1))", ct, $"models:{shopId}:{kind}");
        var previous = await Scalar(conn, tx, """
            SELECT version FROM models WHERE shop_id = $1 AND kind = $2 AND status = 'retired' AND activated_at IS NOT NULL
            ORDER BY activated_at DESC LIMIT 1
            """, ct, shopId, kind) as int?;
        if (previous is null) return null;
        await Exec(conn, tx, "UPDATE models SET status = 'retired', status_reason = $3 WHERE shop_id = $1 AND kind = $2 AND status = 'active'", ct,
            shopId, kind, $"rolled back to version {previous}");
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
    public async Task<(bool Promoted, string Reason)> PromoteAsync(long shopId, ModelKind modelKind, int version, CancellationToken ct)
    {
        var (kind, metric) = (modelKind.Name, modelKind.PromotionMetric);
        await using var conn = await db.OpenConnectionAsync(ct);
        await using var tx = await conn.BeginTransactionAsync(ct);
        await Exec(conn, tx, "SELECT pg_advisory_xact_lock(hashtext($1))", ct, $"models:{shopId}:{kind}");
        var target = await Scalar(conn, tx, "SELECT (metrics->>$4)::float8 FROM models WHERE shop_id = $1 AND kind = $2 AND version = $3 AND status <> 'active'",
            ct, shopId, kind, version, metric) as double?;
        if (target is null) return (false, $"version {version} is not an inactive {kind} model of this shop");
        var active = await Scalar(conn, tx, "SELECT (metrics->>$3)::float8 FROM models WHERE shop_id = $1 AND kind = $2 AND status = 'active'",
            ct, shopId, kind, metric) as double?;
        if (active is { } a && target.Value < a)
            return (false, $"held-out {metric} {target:F4} is worse than the active model's {a:F4}");
        await Exec(conn, tx, "UPDATE models SET status = 'retired', status_reason = $3 WHERE shop_id = $1 AND kind = $2 AND status = 'active'", ct,
            shopId, kind, $"replaced by version {version} (promoted by the merchant)");
        var reason = $"promoted by the merchant: held-out {metric} {target:F4}" + (active is { } b ? $" is not worse than {b:F4}" : "");
        await Exec(conn, tx, "UPDATE models SET status = 'active', status_reason = $4, activated_at = $5 WHERE shop_id = $1 AND kind = $2 AND version = $3", ct,
            shopId, kind, version, reason, clock.GetUtcNow());
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

    /// <summary>The shop's latest training runs of every kind, newest first.</summary>
    public async Task<List<TrainingRunView>> TrainingRunsAsync(long shopId, CancellationToken ct)
    {
        await using var cmd = db.CreateCommand("""
            SELECT kind, trigger, state, started_at, finished_at, rows, parameters::text, metrics::text, model_version, error
            FROM training_runs WHERE shop_id = $1 ORDER BY id DESC LIMIT 50
            """);
        cmd.Parameters.AddWithValue(shopId);
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
