using Microsoft.Extensions.Options;

namespace PluginApp.Jobs;

/// <summary>The one scheduler: Hangfire on the app's PostgreSQL (schema "hangfire"), shared by every instance.</summary>
public sealed class SchedulingOptions
{
    public const string Section = "Scheduling";

    /// <summary>Whether this instance processes jobs. Off only for tools and tests that decide when work happens; jobs are still queued.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>Jobs this instance runs at once, besides the long ones.</summary>
    public int WorkerCount { get; set; } = 4;

    /// <summary>
    /// Long jobs (a model's training, a store's backfill: seconds to minutes each) this instance runs at once, on workers of
    /// their own (<see cref="JobQueues.Long"/>), so they never hold every worker while orders wait for their risk score or
    /// Shopify calls wait in the outbox.
    /// </summary>
    public int LongJobWorkers { get; set; } = 2;

    /// <summary>
    /// How long a job whose instance stopped renewing it (a crash, a kill) stays invisible before another instance takes it
    /// over. A live instance renews its jobs every fifth of this, so a job may run for hours without being taken twice.
    /// </summary>
    public TimeSpan InvisibilityTimeout { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>How often idle workers look for queued jobs.</summary>
    public TimeSpan QueuePollInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>How often delayed jobs (retries, backoffs) and recurring schedules are checked.</summary>
    public TimeSpan SchedulePollingInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Where the operators' dashboard is mounted.</summary>
    public string DashboardPath { get; set; } = "/ops/jobs";

    /// <summary>
    /// The operators' dashboard password (HTTP Basic, any user name, or a Bearer token). Unset: the dashboard refuses everyone.
    /// Why not Hangfire's default "local requests only": behind a proxy every request looks local.
    /// </summary>
    public string? DashboardToken { get; set; }
}

public sealed class SchedulingOptionsValidator : IValidateOptions<SchedulingOptions>
{
    public ValidateOptionsResult Validate(string? name, SchedulingOptions o)
    {
        var f = new List<string>();
        if (o.WorkerCount is < 1 or > 64) f.Add($"Scheduling:WorkerCount {o.WorkerCount} must be between 1 and 64.");
        if (o.LongJobWorkers is < 1 or > 16) f.Add($"Scheduling:LongJobWorkers {o.LongJobWorkers} must be between 1 and 16.");
        if (o.InvisibilityTimeout < TimeSpan.FromSeconds(2) || o.InvisibilityTimeout > TimeSpan.FromHours(2))
            f.Add($"Scheduling:InvisibilityTimeout {o.InvisibilityTimeout} must be between 2 s and 2 h.");
        if (o.QueuePollInterval < TimeSpan.FromMilliseconds(100) || o.QueuePollInterval > TimeSpan.FromMinutes(1))
            f.Add($"Scheduling:QueuePollInterval {o.QueuePollInterval} must be between 100 ms and 1 min.");
        if (o.SchedulePollingInterval < TimeSpan.FromMilliseconds(100) || o.SchedulePollingInterval > TimeSpan.FromMinutes(1))
            f.Add($"Scheduling:SchedulePollingInterval {o.SchedulePollingInterval} must be between 100 ms and 1 min.");
        if (!o.DashboardPath.StartsWith('/') || o.DashboardPath.Length < 2 || o.DashboardPath.EndsWith('/'))
            f.Add($"Scheduling:DashboardPath '{o.DashboardPath}' must start with / and not end with /.");
        if (o.DashboardToken is { } t && t.Length < 32)
            f.Add($"Scheduling:DashboardToken is {t.Length} characters; use at least 32 random characters.");
        return f.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(f);
    }
}
