using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Options;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using PluginApp.Jobs;

namespace PluginApp.Operations;

/// <summary>
/// Operator metrics: request rates and durations per route (ASP.NET Core's http.server.request.duration), webhook lag,
/// job durations and failures, the outbox backlog, the serving path mix and the runtime's own figures, exported in
/// Prometheus' text format at <see cref="OperationsOptions.MetricsPath"/> to whoever presents the operators' token.
/// </summary>
public static class OperationsExtensions
{
    // The query parameters Shopify's app proxy adds to every request it forwards.
    private static readonly string[] ProxyParameters = ["signature", "path_prefix", "shop", "logged_in_customer_id"];

    public static IHostApplicationBuilder AddOperations(this IHostApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddOptions<OperationsOptions>().BindConfiguration(OperationsOptions.Section).ValidateOnStart();
        services.AddSingleton<IValidateOptions<OperationsOptions>, OperationsOptionsValidator>();
        JobMetricsFilter.Apply();
        // Why nothing is collected without a token: nobody could read it, so it would only cost.
        if (!MetricsEnabled(builder.Configuration)) return builder;
        services.AddSingleton<OutboxBacklog>();
        services.AddOpenTelemetry()
            .ConfigureResource(r => r.AddService("pluginapp"))
            .WithMetrics(m => m
                .AddMeter(OperatorMetrics.MeterName)
                .AddAspNetCoreInstrumentation()
                .AddRuntimeInstrumentation()
                .AddInstrumentation(sp => sp.GetRequiredService<OutboxBacklog>())
                .AddPrometheusExporter());
        return builder;
    }

    /// <summary>
    /// The metrics endpoint: 404 when the request came another way than straight to the path (through the app proxy's
    /// prefix with dot segments, or carrying the app proxy's parameters), 401 without the operators' token (always, when
    /// none is configured), else the Prometheus text.
    /// </summary>
    public static WebApplication MapOperatorMetrics(this WebApplication app)
    {
        var path = app.Services.GetRequiredService<IOptions<OperationsOptions>>().Value.MetricsPath;
        if (MetricsEnabled(app.Configuration))
            app.MapPrometheusScrapingEndpoint(path, meterProvider: null, configureBranchedPipeline: branch => branch.Use(GuardAsync), optionsName: null);
        else
            app.Map(path, (HttpContext http) => Refuse(http, path));
        return app;

        Task GuardAsync(HttpContext http, RequestDelegate next)
        {
            if (Refuse(http, path) is { } refused) return refused.ExecuteAsync(http);
            http.Response.Headers.CacheControl = "no-store";
            return next(http);
        }
    }

    private static IResult? Refuse(HttpContext http, string path)
    {
        if (!ReachedDirectly(http, path)) return Results.NotFound();
        var token = http.RequestServices.GetRequiredService<IOptions<SchedulingOptions>>().Value.DashboardToken;
        return OperatorToken.Authorize(http, token) ? null : Results.Unauthorized();
    }

    /// <summary>
    /// Whether the request line named the metrics path itself. Why the raw target: Kestrel removes dot segments
    /// (also percent-encoded ones) before routing, so "/proxy/%2E%2E/operator/metrics", which Shopify's app proxy could
    /// forward, is routed here; the request line still says where it was sent.
    /// </summary>
    private static bool ReachedDirectly(HttpContext http, string path)
    {
        var query = http.Request.Query;
        if (ProxyParameters.Any(query.ContainsKey)) return false;
        var target = http.Features.Get<IHttpRequestFeature>()?.RawTarget;
        if (string.IsNullOrEmpty(target)) return true; // in-process servers (tests) route what they were given
        if (!target.StartsWith('/'))
        {
            // absolute-form (a forward proxy's request line): drop scheme and authority
            var scheme = target.IndexOf("://", StringComparison.Ordinal);
            var slash = scheme < 0 ? -1 : target.IndexOf('/', scheme + 3);
            if (slash < 0) return false;
            target = target[slash..];
        }
        var end = target.IndexOfAny(['?', '#']);
        var requested = end < 0 ? target : target[..end];
        return requested.Equals(path, StringComparison.OrdinalIgnoreCase) || requested.Equals(path + "/", StringComparison.OrdinalIgnoreCase);
    }

    private static bool MetricsEnabled(IConfiguration configuration) =>
        !string.IsNullOrEmpty(configuration.GetSection(SchedulingOptions.Section)[nameof(SchedulingOptions.DashboardToken)]);
}
