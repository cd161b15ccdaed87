using System.Text.Json;
using Npgsql;

namespace PluginApp.Recommendations;

/// <summary>Trains, evaluates and registers one shop's recommender, recording the run (start, end, rows, parameters, metrics, error).</summary>
public sealed class TrainingService(NpgsqlDataSource db, SignalStore signals, ModelRegistry registry, ModelCache models, TimeProvider clock,
    ILogger<TrainingService> logger)
{
    /// <summary>Signals older than this are not read: their decayed weight is negligible.</summary>
    public static readonly TimeSpan History = TimeSpan.FromDays(730);

    public async Task<(int Version, bool Activated)> TrainAsync(string shop, string trigger, CancellationToken ct)
    {
        var shopId = await ShopIdAsync(shop, ct);
        var runId = await StartRunAsync(shopId, trigger, ct);
        try
        {
            var now = clock.GetUtcNow();
            var data = await signals.LoadAsync(shopId, History, ct);
            var p = RecommenderTraining.Defaults;
            // Why the newest signal and not the clock: a replayed or quiet store is judged on its own timeline.
            var asOf = data.Count > 0 ? data.Max(s => s.At) : now;
            var trained = await Task.Run(() => RecommenderTraining.Train(data, asOf, p), ct);
            var (version, activated, reason) = await registry.RegisterAsync(shopId, ModelCache.Kind, trained.Bundle.ToBytes(), p, trained.Metrics,
                trained.From, trained.To, ct);
            await FinishRunAsync(runId, "completed", trained.Interactions, p, trained.Metrics, version, null, ct);
            if (activated) models.Invalidate(shopId); // this instance at once; the others on the notification
            logger.LogInformation("Trained {Shop} recommender v{Version} ({Reason})", shop, version, reason);
            return (version, activated);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            await FinishRunAsync(runId, "failed", null, null, null, null, e.Message, CancellationToken.None);
            throw;
        }
    }

    private async Task<long> ShopIdAsync(string shop, CancellationToken ct)
    {
        await using var cmd = db.CreateCommand("SELECT id FROM shops WHERE domain = $1 AND uninstalled_at IS NULL");
        cmd.Parameters.AddWithValue(shop);
        return await cmd.ExecuteScalarAsync(ct) is long id ? id : throw new Install.ShopNotConnectedException(shop, "the app is not installed");
    }

    private async Task<long> StartRunAsync(long shopId, string trigger, CancellationToken ct)
    {
        await using var cmd = db.CreateCommand("""
            INSERT INTO training_runs (shop_id, kind, trigger, state, started_at) VALUES ($1, $2, $3, 'running', $4) RETURNING id
            """);
        cmd.Parameters.AddWithValue(shopId);
        cmd.Parameters.AddWithValue(ModelCache.Kind);
        cmd.Parameters.AddWithValue(trigger);
        cmd.Parameters.AddWithValue(clock.GetUtcNow());
        return (long)(await cmd.ExecuteScalarAsync(ct))!;
    }

    private async Task FinishRunAsync(long runId, string state, long? rows, object? parameters, object? metrics, int? version, string? error, CancellationToken ct)
    {
        await using var cmd = db.CreateCommand("""
            UPDATE training_runs SET state = $2, finished_at = $3, rows = $4, parameters = $5::jsonb, metrics = $6::jsonb, model_version = $7, error = $8
            WHERE id = $1
            """);
        cmd.Parameters.AddWithValue(runId);
        cmd.Parameters.AddWithValue(state);
        cmd.Parameters.AddWithValue(clock.GetUtcNow());
        cmd.Parameters.Add(new NpgsqlParameter { Value = (object?)rows ?? DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Bigint });
        cmd.Parameters.Add(new NpgsqlParameter { Value = parameters is null ? DBNull.Value : JsonSerializer.Serialize(parameters), NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Text });
        cmd.Parameters.Add(new NpgsqlParameter { Value = metrics is null ? DBNull.Value : JsonSerializer.Serialize(metrics), NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Text });
        cmd.Parameters.Add(new NpgsqlParameter { Value = (object?)version ?? DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Integer });
        cmd.Parameters.Add(new NpgsqlParameter { Value = (object?)error ?? DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Text });
        await cmd.ExecuteNonQueryAsync(ct);
    }
}
