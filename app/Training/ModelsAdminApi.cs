using System.Text.Json;
using Microsoft.AspNetCore.Http.HttpResults;
using Npgsql;
using PluginApp.Data;

namespace PluginApp.Training;

/// <summary>The merchant's view of every model kind: versions and their held-out metrics, training runs, training on demand, rollback.</summary>
public static class ModelsAdminApi
{
    public static RouteGroupBuilder MapModelsAdmin(this RouteGroupBuilder api)
    {
        api.MapGet("/models", ListAsync);
        api.MapPost("/models/train", Train);
        api.MapPost("/models/rollback", RollbackAsync);
        api.MapGet("/models/training-runs", TrainingRunsAsync);
        return api;
    }

    private static async Task<Ok<List<ModelEntry>>> ListAsync(ModelRegistry registry, ShopScope scope, CancellationToken ct) =>
        TypedResults.Ok(await registry.ListAsync(scope.ShopId, ct));

    /// <summary>Trains every kind, or the one named by ?kind=.</summary>
    private static Results<Accepted, ProblemHttpResult> Train(TrainingScheduler scheduler, ModelKinds kinds, ShopScope scope, string? kind)
    {
        if (kind is not null && !kinds.Contains(kind)) return UnknownKind(kind, kinds);
        scheduler.OnDemand(scope.Domain, kind);
        return TypedResults.Accepted("/api/admin/models");
    }

    private static async Task<Results<Ok<RollbackView>, ProblemHttpResult>> RollbackAsync(ModelRegistry registry, ModelKinds kinds, ShopScope scope,
        IServiceProvider services, string? kind, CancellationToken ct)
    {
        if (kind is null || !kinds.Contains(kind)) return UnknownKind(kind, kinds);
        if (await registry.RollbackAsync(scope.ShopId, kind, ct) is not { } v)
            return TypedResults.Problem(title: "Nothing to roll back to", detail: "there is no earlier active version to go back to", statusCode: 409);
        kinds[kind].OnActivated?.Invoke(services, scope.ShopId); // this instance at once; the others on the notification
        return TypedResults.Ok(new RollbackView(kind, v));
    }

    private static ProblemHttpResult UnknownKind(string? kind, ModelKinds kinds) => TypedResults.Problem(title: "Unknown model kind",
        detail: $"kind must be one of {string.Join(", ", kinds.All.Select(k => k.Name))}" + (kind is null ? "" : $", not '{kind}'"), statusCode: 400);

    public sealed record RollbackView(string Kind, int ActiveVersion);

    public sealed record TrainingRunView(string Kind, string Trigger, string State, DateTimeOffset StartedAt, DateTimeOffset? FinishedAt, long? Rows,
        JsonElement? Parameters, JsonElement? Metrics, int? ModelVersion, string? Error);

    private static async Task<Ok<List<TrainingRunView>>> TrainingRunsAsync(NpgsqlDataSource db, ShopScope scope, CancellationToken ct)
    {
        await using var cmd = db.CreateCommand("""
            SELECT kind, trigger, state, started_at, finished_at, rows, parameters::text, metrics::text, model_version, error
            FROM training_runs WHERE shop_id = $1 ORDER BY id DESC LIMIT 50
            """);
        cmd.Parameters.AddWithValue(scope.ShopId);
        var list = new List<TrainingRunView>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
            list.Add(new TrainingRunView(r.GetString(0), r.GetString(1), r.GetString(2), r.GetFieldValue<DateTimeOffset>(3),
                r.IsDBNull(4) ? null : r.GetFieldValue<DateTimeOffset>(4), r.IsDBNull(5) ? null : r.GetInt64(5),
                r.IsDBNull(6) ? null : JsonDocument.Parse(r.GetString(6)).RootElement.Clone(),
                r.IsDBNull(7) ? null : JsonDocument.Parse(r.GetString(7)).RootElement.Clone(),
                r.IsDBNull(8) ? null : r.GetInt32(8), r.IsDBNull(9) ? null : r.GetString(9)));
        return TypedResults.Ok(list);
    }
}
