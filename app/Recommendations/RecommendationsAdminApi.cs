using Microsoft.AspNetCore.Http.HttpResults;
using Npgsql;
using PluginApp.Data;
using PluginApp.Install;
using PluginApp.StoreData;

namespace PluginApp.Recommendations;

/// <summary>The merchant's view of upsells: the business rules and their history, and what was attributed to recommendations.</summary>
public static class RecommendationsAdminApi
{
    public static RouteGroupBuilder MapRecommendationsAdmin(this RouteGroupBuilder api)
    {
        api.MapGet("/rules", GetRulesAsync);
        api.MapPut("/rules", PutRulesAsync);
        api.MapGet("/rules/history", RulesHistoryAsync);
        api.MapGet("/recommendations/attribution", AttributionAsync);
        return api;
    }

    public sealed record RulesHistoryView(int Version, DateTimeOffset At, string? By, System.Text.Json.JsonElement Rules);

    private static async Task<Ok<List<RulesHistoryView>>> RulesHistoryAsync(RulesStore rules, ShopScope scope, CancellationToken ct) =>
        TypedResults.Ok((await rules.HistoryAsync(scope.ShopId, ct)).Select(h => new RulesHistoryView(h.Version, h.At, h.By, h.Rules)).ToList());

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

    public sealed record AttributionView(string Arm, long Lines, decimal Revenue, long Orders);

    private static async Task<Ok<List<AttributionView>>> AttributionAsync(NpgsqlDataSource db, ShopScope scope, CancellationToken ct)
    {
        await using var cmd = db.CreateCommand("""
            SELECT coalesce(experiment_arm, 'unknown'), count(*), coalesce(sum(revenue), 0), count(DISTINCT order_id)
            FROM recommendation_attributions WHERE shop_id = $1 GROUP BY 1 ORDER BY 1
            """);
        cmd.Parameters.AddWithValue(scope.ShopId);
        var list = new List<AttributionView>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct)) list.Add(new AttributionView(r.GetString(0), r.GetInt64(1), r.GetDecimal(2), r.GetInt64(3)));
        return TypedResults.Ok(list);
    }
}
