using Microsoft.AspNetCore.Http.HttpResults;
using PluginApp.Admin;
using PluginApp.Compliance;
using PluginApp.Data;
using PluginApp.Jobs;

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
        services.AddSingleton<ModelMonitor>();
        services.AddRecurringJob<ModelMonitor>("model-monitoring", m => m.SweepAsync(CancellationToken.None), _ => "30 5 * * *");
        services.AddSingleton<DecisionLog>();
        services.AddHostedService(sp => sp.GetRequiredService<DecisionLog>());
        services.AddSingleton<DecisionSearch>();
        services.AddAdminPage("/admin/governance", "Model governance", 72);
        services.AddAdminPage("/admin/decisions", "Decisions", 75);
        services.AddPersonalData(new PersonalDataTable("decisions", ["customer_id", "visitor_hash", "cart_token"],
            """
            UPDATE decisions SET customer_id = NULL, visitor_hash = NULL, cart_token = NULL, inputs = NULL
            WHERE shop_id = $1 AND (customer_id = $2 OR order_id IN (SELECT id FROM redaction_orders)
              OR cart_token IN (SELECT cart_token FROM redaction_orders WHERE cart_token IS NOT NULL)
              OR visitor_hash IN (SELECT visitor_hash FROM decisions WHERE shop_id = $1 AND customer_id = $2 AND visitor_hash IS NOT NULL))
            """,
            """
            SELECT coalesce(jsonb_agg(jsonb_build_object('kind', kind, 'decided_at', decided_at, 'subject', subject, 'model_version', model_version,
                     'arm', arm, 'output', output, 'reasons', reasons) ORDER BY decided_at), '[]'::jsonb)
            FROM decisions WHERE shop_id = $1 AND (customer_id = $2 OR order_id IN (SELECT id FROM redaction_orders))
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
        return api;
    }

    private static async Task<Results<Ok<List<DecisionView>>, ValidationProblem>> SearchAsync(string? kind, long? order, long? customer, long? product,
        DateTimeOffset? from, DateTimeOffset? to, int? limit, DecisionSearch search, ShopScope scope, CancellationToken ct)
    {
        var q = new DecisionQuery(kind, order, customer, product, from, to, limit ?? 50);
        var problems = DecisionSearch.Problems(q);
        if (problems.Count > 0) return TypedResults.ValidationProblem(problems);
        return TypedResults.Ok(await search.FindAsync(scope.ShopId, q, ct));
    }
}
