using Microsoft.AspNetCore.Http.HttpResults;
using Npgsql;
using PluginApp.Data;
using PluginApp.StoreData;

namespace PluginApp.Health;

public static class HealthEndpoints
{
    public static IEndpointRouteBuilder MapHealth(this IEndpointRouteBuilder app)
    {
        // The process answers: nothing else is checked, so a slow database never restarts a healthy process.
        app.MapGet("/healthz", () => TypedResults.Text("ok"));
        // Why a POST form: the ingest benchmark's ceiling sends its webhook bodies here (read, no database). Unauthenticated,
        // so it reads no more than a webhook may carry.
        app.MapPost("/healthz", async Task<Results<StatusCodeHttpResult, ContentHttpResult>> (HttpRequest r, CancellationToken ct) =>
                await Webhooks.WebhookEndpoints.ReadBodyAsync(r, ct) is null
                    ? TypedResults.StatusCode(StatusCodes.Status413PayloadTooLarge) : TypedResults.Text("ok"))
            .DisableAntiforgery();
        app.MapGet("/readyz", ReadyAsync);
        return app;
    }

    private static async Task<Results<Ok<Readiness>, ProblemHttpResult>> ReadyAsync(DatabaseMigrator migrator, CancellationToken ct)
    {
        try
        {
            return await migrator.IsUpToDateAsync(ct)
                ? TypedResults.Ok(new Readiness("ok", "applied"))
                : TypedResults.Problem(title: "Not ready", detail: "migrations are pending", statusCode: 503);
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException)
        {
            return TypedResults.Problem(title: "Not ready", detail: $"the database is unreachable: {e.Message}", statusCode: 503);
        }
    }

    public sealed record Readiness(string Database, string Migrations);
}
