using Microsoft.AspNetCore.Http.HttpResults;
using Npgsql;
using PluginApp.Data;
using PluginApp.Install;

namespace PluginApp.Recommendations;

/// <summary>The merchant's view of the recommender: models and their history, training, rollback, rules, what was attributed.</summary>
public static class RecommendationsAdminApi
{
    public static IEndpointRouteBuilder MapRecommendationsAdmin(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api/admin").RequireAuthorization(InstallExtensions.AdminPolicy).AddEndpointFilter<ShopSessionFilter>();
        api.MapGet("/models", (ModelRegistry registry, ShopScope scope, CancellationToken ct) => registry.ListAsync(scope.ShopId, ct));
        api.MapPost("/models/train", TrainAsync);
        api.MapPost("/models/rollback", RollbackAsync);
        api.MapGet("/models/training-runs", TrainingRunsAsync);
        api.MapGet("/rules", GetRulesAsync);
        api.MapPut("/rules", PutRulesAsync);
        api.MapGet("/rules/history", async (RulesStore rules, ShopScope scope, CancellationToken ct) =>
            (await rules.HistoryAsync(scope.ShopId, ct)).Select(h => new { h.Version, h.At, h.By, h.Rules }));
        api.MapGet("/recommendations/attribution", AttributionAsync);
        return app;
    }

    private static Accepted TrainAsync(TrainingScheduler scheduler, ShopScope scope)
    {
        scheduler.TrainNow(scope.Domain, "on demand");
        return TypedResults.Accepted("/api/admin/models");
    }

    private static async Task<Results<Ok<RollbackView>, Conflict<string>>> RollbackAsync(ModelRegistry registry, ModelCache models, ShopScope scope,
        CancellationToken ct)
    {
        if (await registry.RollbackAsync(scope.ShopId, ModelCache.Kind, ct) is not { } v)
            return TypedResults.Conflict("there is no earlier active version to go back to");
        models.Invalidate(scope.ShopId); // this instance at once; the others on the notification
        return TypedResults.Ok(new RollbackView(v));
    }

    public sealed record RollbackView(int ActiveVersion);

    private static async Task<List<object>> TrainingRunsAsync(NpgsqlDataSource db, ShopScope scope, CancellationToken ct)
    {
        await using var cmd = db.CreateCommand("""
            SELECT kind, trigger, state, started_at, finished_at, rows, parameters::text, metrics::text, model_version, error
            FROM training_runs WHERE shop_id = $1 ORDER BY id DESC LIMIT 50
            """);
        cmd.Parameters.AddWithValue(scope.ShopId);
        var list = new List<object>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
            list.Add(new
            {
                Kind = r.GetString(0), Trigger = r.GetString(1), State = r.GetString(2), StartedAt = r.GetFieldValue<DateTimeOffset>(3),
                FinishedAt = r.IsDBNull(4) ? (DateTimeOffset?)null : r.GetFieldValue<DateTimeOffset>(4), Rows = r.IsDBNull(5) ? (long?)null : r.GetInt64(5),
                Parameters = r.IsDBNull(6) ? null : System.Text.Json.JsonDocument.Parse(r.GetString(6)).RootElement.Clone() as object,
                Metrics = r.IsDBNull(7) ? null : System.Text.Json.JsonDocument.Parse(r.GetString(7)).RootElement.Clone() as object,
                ModelVersion = r.IsDBNull(8) ? (int?)null : r.GetInt32(8), Error = r.IsDBNull(9) ? null : r.GetString(9),
            });
        return list;
    }

    private static async Task<Ok<RulesView>> GetRulesAsync(RulesStore store, ShopScope scope, CancellationToken ct)
    {
        var (rules, version) = await store.GetAsync(scope.ShopId, ct);
        return TypedResults.Ok(new RulesView(version, rules));
    }

    public sealed record RulesView(int Version, BusinessRules Rules);

    private static async Task<Results<Ok<RulesView>, ValidationProblem>> PutRulesAsync(BusinessRules rules, RulesStore store, CatalogCache catalogs,
        ShopScope scope, HttpContext http, CancellationToken ct)
    {
        var problems = rules.Problems();
        if (problems.Count > 0) return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["rules"] = problems.ToArray() });
        var version = await store.SaveAsync(scope.ShopId, rules, http.User.FindFirst(System.Security.Claims.ClaimTypes.NameIdentifier)?.Value, ct);
        catalogs.Invalidate(scope.ShopId);
        return TypedResults.Ok(new RulesView(version, rules));
    }

    private static async Task<List<object>> AttributionAsync(NpgsqlDataSource db, ShopScope scope, CancellationToken ct)
    {
        await using var cmd = db.CreateCommand("""
            SELECT coalesce(experiment_arm, 'unknown'), count(*), coalesce(sum(revenue), 0), count(DISTINCT order_id)
            FROM recommendation_attributions WHERE shop_id = $1 GROUP BY 1 ORDER BY 1
            """);
        cmd.Parameters.AddWithValue(scope.ShopId);
        var list = new List<object>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct)) list.Add(new { Arm = r.GetString(0), Lines = r.GetInt64(1), Revenue = r.GetDecimal(2), Orders = r.GetInt64(3) });
        return list;
    }
}
