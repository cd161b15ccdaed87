using Microsoft.AspNetCore.Http.HttpResults;
using PluginApp.Data;

namespace PluginApp.Stripe;

/// <summary>
/// The store's Stripe connection, under the admin API's session token and shop filter: every route acts on the session's
/// own shop (there is no id in the path to point at another store's). Secrets go in and never come back out.
/// </summary>
public static class StripeAdminApi
{
    public sealed record ConnectBody(string? RestrictedKey, string? WebhookSecret);

    /// <summary>The connection's state and what to paste into Stripe's dashboard (the endpoint, its events and API version).</summary>
    public sealed record StripeView(StripeStatus Status, string[] Events, string ApiVersion, List<StripeEventView> Recent);

    public static RouteGroupBuilder MapStripeAdmin(this RouteGroupBuilder api)
    {
        api.MapGet("/stripe", GetAsync);
        api.MapPut("/stripe", ConnectAsync);
        api.MapDelete("/stripe", DisconnectAsync);
        return api;
    }

    private static async Task<Ok<StripeView>> GetAsync(StripeConnections connections, ShopScope scope, CancellationToken ct) =>
        TypedResults.Ok(await ViewAsync(connections, scope.ShopId, ct));

    private static async Task<Results<Ok<StripeView>, ValidationProblem>> ConnectAsync(ConnectBody body, StripeConnections connections, ShopScope scope,
        ILoggerFactory logs, HttpContext http, CancellationToken ct)
    {
        var errors = StripeConnections.Validate(body.RestrictedKey, body.WebhookSecret);
        if (errors.Count > 0) return TypedResults.ValidationProblem(errors);
        await connections.ConnectAsync(scope.ShopId, body.RestrictedKey!, body.WebhookSecret!, ct);
        logs.CreateLogger(typeof(StripeAdminApi)).LogInformation("Shop {ShopId} connected its Stripe account ({User})", scope.ShopId,
            Admin.Switches.AdminUser.Of(http) ?? "no staff user");
        return TypedResults.Ok(await ViewAsync(connections, scope.ShopId, ct));
    }

    private static async Task<Results<NoContent, NotFound>> DisconnectAsync(StripeConnections connections, ShopScope scope, CancellationToken ct) =>
        await connections.DisconnectAsync(scope.ShopId, ct) ? TypedResults.NoContent() : TypedResults.NotFound();

    private static async Task<StripeView> ViewAsync(StripeConnections connections, long shopId, CancellationToken ct) =>
        new(await connections.StatusAsync(shopId, ct), StripeWebhooks.LabelEvents, StripeApiVersion.Pinned,
            await connections.RecentEventsAsync(shopId, 20, ct));
}
