using Microsoft.Extensions.Options;

namespace PluginApp.Operations;

/// <summary>
/// The operators' metrics endpoint. Who may read it is the operators' token, <c>Scheduling:DashboardToken</c> (the jobs
/// dashboard's): with none set, metrics are not collected and the endpoint refuses everyone.
/// </summary>
public sealed class OperationsOptions
{
    public const string Section = "Operations";

    /// <summary>Where Prometheus scrapes the metrics (text exposition format).</summary>
    public string MetricsPath { get; set; } = "/operator/metrics";

    /// <summary>
    /// How old the outbox backlog figures may be. A scrape older than this starts one read in the background and is
    /// answered with the last figures, so a burst of scrapes costs at most one query per period and never waits on one.
    /// </summary>
    public TimeSpan OutboxBacklogRefresh { get; set; } = TimeSpan.FromSeconds(15);
}

public sealed class OperationsOptionsValidator : IValidateOptions<OperationsOptions>
{
    // Why: these prefixes are reached by Shopify (the app proxy, webhooks, OAuth), by Stripe, by merchants or by anyone.
    private static readonly string[] PublicPrefixes = ["/proxy", "/apps", "/webhooks", "/stripe", "/auth", "/admin", "/api", "/demo", "/products", "/healthz", "/readyz"];

    public ValidateOptionsResult Validate(string? name, OperationsOptions o)
    {
        var f = new List<string>();
        if (!o.MetricsPath.StartsWith('/') || o.MetricsPath.Length < 2 || o.MetricsPath.EndsWith('/') || o.MetricsPath.Contains("..", StringComparison.Ordinal))
            f.Add($"Operations:MetricsPath '{o.MetricsPath}' must start with /, not end with / and hold no '..'.");
        else if (PublicPrefixes.FirstOrDefault(p => new PathString(o.MetricsPath).StartsWithSegments(p, StringComparison.OrdinalIgnoreCase)) is { } under)
            f.Add($"Operations:MetricsPath '{o.MetricsPath}' is under {under}, which the public reaches; use e.g. /operator/metrics.");
        if (o.OutboxBacklogRefresh < TimeSpan.FromSeconds(1) || o.OutboxBacklogRefresh > TimeSpan.FromMinutes(10))
            f.Add($"Operations:OutboxBacklogRefresh {o.OutboxBacklogRefresh} must be between 1 s and 10 min.");
        return f.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(f);
    }
}
