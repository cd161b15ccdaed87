using Microsoft.AspNetCore.Http.HttpResults;
using PluginApp.Admin;
using PluginApp.Compliance;
using PluginApp.Data;
using PluginApp.Jobs;
using Microsoft.Extensions.Options;
using Npgsql;

namespace PluginApp.Governance;

/// <summary>
/// Model governance: the one decision log every feature writes to, searchable by the merchant. Registered after the
/// features, because their erasures find a customer's visitor ids through the decisions this one erases.
/// </summary>
public static class GovernanceFeature
{
    /// <summary>How long decisions are kept; the log is partitioned by month, so old months are dropped, not deleted row by row.</summary>
    public static readonly TimeSpan DecisionRetention = TimeSpan.FromDays(90);

    public static IServiceCollection AddGovernance(this IServiceCollection services)
    {
        services.AddOptions<GovernanceOptions>().BindConfiguration(GovernanceOptions.Section).ValidateOnStart();
        services.AddSingleton<Microsoft.Extensions.Options.IValidateOptions<GovernanceOptions>, GovernanceOptionsValidator>();
        services.AddSingleton<ModelBreakers>();
        services.AddSingleton(sp =>
        {
            var breakers = sp.GetRequiredService<ModelBreakers>();
            return PluginApp.Data.ChangeSubscription.OfShops(PluginApp.Training.ModelRegistry.Channel, breakers.ModelChanged, breakers.AnyModelChanged);
        });
        services.AddSingleton<ModelMonitor>();
        services.AddRecurringJob<ModelMonitor>("model-monitoring", m => m.SweepAsync(CancellationToken.None), _ => "30 5 * * *");
        services.AddSingleton<StagedReleases>();
        services.AddRecurringJob<StagedReleases>("staged-releases", r => r.SweepAsync(CancellationToken.None), _ => "*/5 * * * *");
        services.AddSingleton<DecisionLog>();
        services.AddHostedService(sp => sp.GetRequiredService<DecisionLog>());
        services.AddSingleton<DecisionSearch>();
        services.AddAdminPage("/admin/governance", "Model governance", 72);
        services.AddAdminPage("/admin/decisions", "Decisions", 75);
        // Why the churn decision's id too: it is 'churn:{customer}:{n}' (ChurnScoring), and with her score and reasons beside it
        // the id alone named the erased customer; the rest of the id (which run, canary or shadow) stays for the log's counts.
        // The visitor ids her answers were served to: logged in, or on the carts her orders came from (a guest's cart offers).
        // Once her carts are found, the visitor ids answered on them with nobody else logged in (a guest's cart, found
        // through her checkout by her email).
        services.AddVisitorLink(new VisitorLink("decision log", """
            SELECT visitor_hash FROM decisions WHERE shop_id = $1 AND (customer_id = $2 OR order_id IN (SELECT id FROM redaction_orders)
              OR cart_token IN (SELECT cart_token FROM redaction_orders WHERE cart_token IS NOT NULL))
            """, ByCarts: """
            SELECT visitor_hash FROM decisions WHERE shop_id = $1 AND cart_token IN (SELECT cart_token FROM redaction_carts)
              AND (customer_id IS NULL OR customer_id = $2)
            """));
        // The carts answered for her, logged in or under one of her visitor ids, before the nightly job copies the logged-in
        // ones to cart_customers.
        services.AddCartLink(new CartLink("decision log", """
            SELECT cart_token FROM decisions WHERE shop_id = $1 AND cart_token IS NOT NULL
              AND (customer_id = $2 OR visitor_hash IN (SELECT visitor_hash FROM redaction_visitors) AND customer_id IS NULL)
            """));
        // A decision found through one of her carts or visitor ids is hers only when nobody was logged in for it: another
        // customer logged in on the same browser or cart (a household's) keeps hers (until 6 Dec 2026 the carts' did not).
        services.AddPersonalData(new PersonalDataTable("decisions", ["customer_id", "visitor_hash", "cart_token"],
            """
            UPDATE decisions SET customer_id = NULL, visitor_hash = NULL, cart_token = NULL, inputs = NULL,
              decision_id = regexp_replace(decision_id, '^churn:' || $2 || ':', 'churn:erased-' || substr(md5(random()::text), 1, 12) || ':')
            WHERE shop_id = $1 AND (customer_id = $2 OR order_id IN (SELECT id FROM redaction_orders)
              OR cart_token IN (SELECT cart_token FROM redaction_carts) AND customer_id IS NULL
              OR visitor_hash IN (SELECT visitor_hash FROM redaction_visitors) AND customer_id IS NULL)
            """,
            """
            SELECT coalesce(jsonb_agg(jsonb_build_object('kind', kind, 'decided_at', decided_at, 'subject', subject, 'model_version', model_version,
                     'arm', arm, 'products_looked_at', input_ids, 'products_answered', output_ids, 'inputs', inputs, 'output', output,
                     'reasons', reasons, 'shadow', shadow) ORDER BY decided_at), '[]'::jsonb)
            FROM decisions WHERE shop_id = $1 AND (customer_id = $2 OR order_id IN (SELECT id FROM redaction_orders)
              OR cart_token IN (SELECT cart_token FROM redaction_carts) AND customer_id IS NULL
              OR visitor_hash IN (SELECT visitor_hash FROM redaction_visitors) AND customer_id IS NULL)
            """, "decisions"));
        services.AddRetention(new RetentionRule("the decision log (upsell answers, cart offers, risk scores, churn segments)", DecisionRetention,
            "SELECT decisions_drop_before($1)"));
        return services;
    }

    public static RouteGroupBuilder MapGovernanceAdmin(this RouteGroupBuilder api)
    {
        api.MapGet("/decisions", SearchAsync);
        api.MapPost("/monitoring/run", async (ModelMonitor monitor, ShopScope scope, CancellationToken ct) =>
        {
            await monitor.RunShopAsync(scope.ShopId, ct);
            return TypedResults.Ok(await ModelMonitor.AlertsAsync(monitor.Db, scope.ShopId, openOnly: true, ct));
        });
        api.MapGet("/releases", ReleasesAsync);
        api.MapPut("/releases/{kind}/settings", PutReleaseSettingsAsync);
        api.MapPost("/releases/{kind}/stop", StopReleaseAsync);
        api.MapPost("/releases/{kind}/promote", PromoteReleaseAsync);
        return api;
    }

    /// <summary>A kind with staged releases in this shop: its settings, and its version in shadow or canary if any.</summary>
    public sealed record ReleaseKindView(string Kind, string Title, string Unit, ReleaseSettings Settings, ReleaseView? Release);

    public sealed record ReleaseSettingsBody(bool? Staged, int? ShadowDecisions, double? CanaryShare, int? CanaryDecisions);

    public sealed record ReleaseActionBody(string? Reason);

    public static async Task<List<ReleaseKindView>> ReleaseKindsAsync(long shopId, Training.ModelKinds kinds, StagedReleases releases,
        NpgsqlDataSource db, GovernanceOptions o, CancellationToken ct)
    {
        var running = await releases.StatusAsync(shopId, ct);
        var list = new List<ReleaseKindView>();
        foreach (var k in kinds.All.Where(k => k.StagedRelease).OrderBy(k => k.Title, StringComparer.Ordinal))
            list.Add(new ReleaseKindView(k.Name, k.Title, k.CanaryUnit, await ReleaseSettings.GetAsync(db, shopId, k.Name, o, ct), running.FirstOrDefault(r => r.Kind == k.Name)));
        return list;
    }

    private static async Task<Ok<List<ReleaseKindView>>> ReleasesAsync(Training.ModelKinds kinds, StagedReleases releases, NpgsqlDataSource db,
        IOptions<GovernanceOptions> o, ShopScope scope, CancellationToken ct) =>
        TypedResults.Ok(await ReleaseKindsAsync(scope.ShopId, kinds, releases, db, o.Value, ct));

    private static ProblemHttpResult? NotStaged(string kind, Training.ModelKinds kinds) =>
        kinds.Contains(kind) && kinds[kind].StagedRelease ? null
            : TypedResults.Problem(title: "No staged releases for this kind", statusCode: 404,
                detail: $"kind must be one of {string.Join(", ", kinds.All.Where(k => k.StagedRelease).Select(k => k.Name))}, not '{kind}'");

    private static async Task<Results<Ok<ReleaseSettings>, ValidationProblem, ProblemHttpResult>> PutReleaseSettingsAsync(string kind, ReleaseSettingsBody body,
        Training.ModelKinds kinds, NpgsqlDataSource db, IOptions<GovernanceOptions> o, ShopScope scope, HttpContext http, IServiceProvider services,
        TimeProvider clock, CancellationToken ct)
    {
        if (NotStaged(kind, kinds) is { } problem) return problem;
        var current = await ReleaseSettings.GetAsync(db, scope.ShopId, kind, o.Value, ct);
        var next = new ReleaseSettings(body.Staged ?? current.Staged, body.ShadowDecisions ?? current.ShadowDecisions, body.CanaryShare ?? current.CanaryShare,
            body.CanaryDecisions ?? current.CanaryDecisions, Chosen: true);
        var problems = next.Problems();
        if (problems.Count > 0) return TypedResults.ValidationProblem(problems);
        await next.SaveAsync(db, scope.ShopId, kind, PluginApp.Admin.Switches.AdminUser.Of(http) ?? "the merchant", clock.GetUtcNow(), ct); // and announced
        kinds[kind].OnReleaseChanged?.Invoke(services, scope.ShopId);
        return TypedResults.Ok(next);
    }

    private static async Task<Results<Ok<ReleaseActionView>, ProblemHttpResult>> StopReleaseAsync(string kind, ReleaseActionBody? body, Training.ModelKinds kinds,
        StagedReleases releases, ShopScope scope, HttpContext http, CancellationToken ct)
    {
        if (NotStaged(kind, kinds) is { } problem) return problem;
        if (body?.Reason?.Length > 500) return TypedResults.Problem(title: "Reason too long", detail: "at most 500 characters", statusCode: 400);
        var (stopped, detail) = await releases.StopByMerchantAsync(scope.ShopId, kind, PluginApp.Admin.Switches.AdminUser.Of(http), body?.Reason, ct);
        return stopped ? TypedResults.Ok(new ReleaseActionView(kind, detail)) : TypedResults.Problem(title: "Nothing to stop", detail: detail, statusCode: 409);
    }

    private static async Task<Results<Ok<ReleaseActionView>, ProblemHttpResult>> PromoteReleaseAsync(string kind, Training.ModelKinds kinds,
        StagedReleases releases, ShopScope scope, HttpContext http, CancellationToken ct)
    {
        if (NotStaged(kind, kinds) is { } problem) return problem;
        var (promoted, detail) = await releases.PromoteByMerchantAsync(scope.ShopId, kind, PluginApp.Admin.Switches.AdminUser.Of(http), ct);
        return promoted ? TypedResults.Ok(new ReleaseActionView(kind, detail)) : TypedResults.Problem(title: "Not promoted", detail: detail, statusCode: 409);
    }

    public sealed record ReleaseActionView(string Kind, string Detail);

    private static async Task<Results<Ok<List<DecisionView>>, ValidationProblem>> SearchAsync(string? kind, long? order, long? customer, long? product,
        DateTimeOffset? from, DateTimeOffset? to, int? limit, DecisionSearch search, ShopScope scope, CancellationToken ct)
    {
        var q = new DecisionQuery(kind, order, customer, product, from, to, limit ?? 50);
        var problems = DecisionSearch.Problems(q);
        if (problems.Count > 0) return TypedResults.ValidationProblem(problems);
        return TypedResults.Ok(await search.FindAsync(scope.ShopId, q, ct));
    }
}
