using Microsoft.AspNetCore.Http.HttpResults;
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
        api.MapPost("/models/promote", PromoteAsync);
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

    /// <summary>
    /// The merchant's rollback and promotion are governance events, saying who and why, beside the staged releases' and the
    /// breakers' (until 5 Dec 2026 only the model's status said so, and the Governance page's history left them out).
    /// </summary>
    private static async Task<Results<Ok<RollbackView>, ProblemHttpResult>> RollbackAsync(ModelRegistry registry, ModelKinds kinds, ShopScope scope,
        IServiceProvider services, HttpContext http, TimeProvider clock, string? kind, CancellationToken ct)
    {
        if (kind is null || !kinds.Contains(kind)) return UnknownKind(kind, kinds);
        var by = Admin.Switches.AdminUser.Of(http) ?? "the merchant";
        if (await registry.RollbackAsync(scope.ShopId, kind, ct, (from, to) => new Governance.GovernanceEvent(kind, "rolled_back",
                $"version {to} serves again, rolled back from version {from?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "none"} by {by}", by, clock.GetUtcNow())) is not { } v)
            return TypedResults.Problem(title: "Nothing to roll back to", detail: "there is no earlier active version to go back to", statusCode: 409);
        kinds[kind].Activated(services, scope.ShopId); // this instance at once; the others on the notification
        return TypedResults.Ok(new RollbackView(kind, v));
    }

    private static async Task<Results<Ok<PromoteView>, ProblemHttpResult>> PromoteAsync(ModelRegistry registry, ModelKinds kinds, ShopScope scope,
        IServiceProvider services, HttpContext http, TimeProvider clock, string? kind, int? version, CancellationToken ct)
    {
        if (kind is null || !kinds.Contains(kind)) return UnknownKind(kind, kinds);
        if (version is not > 0) return TypedResults.Problem(title: "Which version?", detail: "version must name the model version to promote", statusCode: 400);
        var by = Admin.Switches.AdminUser.Of(http) ?? "the merchant";
        var (promoted, reason) = await registry.PromoteAsync(scope.ShopId, kinds[kind], version.Value, ct, by,
            reason => new Governance.GovernanceEvent(kind, "promoted", $"version {version.Value} serves everyone; {reason}", by, clock.GetUtcNow()));
        if (!promoted) return TypedResults.Problem(title: "Not promoted", detail: reason, statusCode: 409);
        kinds[kind].Activated(services, scope.ShopId);
        return TypedResults.Ok(new PromoteView(kind, version.Value, reason));
    }

    public sealed record PromoteView(string Kind, int ActiveVersion, string Reason);

    private static ProblemHttpResult UnknownKind(string? kind, ModelKinds kinds) => TypedResults.Problem(title: "Unknown model kind",
        detail: $"kind must be one of {string.Join(", ", kinds.All.Select(k => k.Name))}" + (kind is null ? "" : $", not '{kind}'"), statusCode: 400);

    public sealed record RollbackView(string Kind, int ActiveVersion);

    private static async Task<Ok<List<TrainingRunView>>> TrainingRunsAsync(ModelRegistry registry, ShopScope scope, CancellationToken ct) =>
        TypedResults.Ok(await registry.TrainingRunsAsync(scope.ShopId, ct));
}
