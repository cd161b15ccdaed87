using Microsoft.Extensions.Options;
using Quartz;

namespace PluginApp.Jobs;

public sealed class SchedulingOptions
{
    public const string Section = "Scheduling";

    /// <summary>Off only for tools that must not run jobs; every app instance joins the cluster by default.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>How often an instance checks in with the cluster; a silent instance's jobs are recovered after a few of these.</summary>
    public TimeSpan ClusterCheckinInterval { get; set; } = TimeSpan.FromSeconds(5);

    public int ThreadCount { get; set; } = 4;
}

public sealed class SchedulingOptionsValidator : IValidateOptions<SchedulingOptions>
{
    public ValidateOptionsResult Validate(string? name, SchedulingOptions o)
    {
        var failures = new List<string>();
        if (o.ClusterCheckinInterval < TimeSpan.FromSeconds(1) || o.ClusterCheckinInterval > TimeSpan.FromMinutes(5))
            failures.Add($"Scheduling:ClusterCheckinInterval {o.ClusterCheckinInterval} must be between 1 s and 5 min.");
        if (o.ThreadCount is < 1 or > 64) failures.Add($"Scheduling:ThreadCount {o.ThreadCount} must be between 1 and 64.");
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}

/// <summary>Quartz 4, clustered on the app's PostgreSQL: instances share the work and never run one trigger twice.</summary>
public static class SchedulingExtensions
{
    public static IHostApplicationBuilder AddScheduling(this IHostApplicationBuilder builder, Action<IQuartzBuilder> jobs)
    {
        builder.Services.AddOptions<SchedulingOptions>().BindConfiguration(SchedulingOptions.Section).ValidateOnStart();
        builder.Services.AddSingleton<IValidateOptions<SchedulingOptions>, SchedulingOptionsValidator>();
        var options = builder.Configuration.GetSection(SchedulingOptions.Section).Get<SchedulingOptions>() ?? new SchedulingOptions();
        // Why read here: Quartz's store is configured at registration; the value is the same one DatabaseOptions validates.
        var connectionString = builder.Configuration.GetConnectionString("Postgres") ?? "";

        builder.Services.AddQuartz(q =>
        {
            q.ConfigureScheduler(o =>
            {
                o.InstanceName = "PluginApp";
                o.GenerateInstanceId = true;
            });
            q.UseDefaultThreadPool(options.ThreadCount);
            q.UsePersistentStore(s =>
            {
                s.UsePostgres(connectionString);
                s.UseClustering(c => c.CheckinInterval = options.ClusterCheckinInterval);
                s.ProvisionSchema();
            });
            jobs(q);
        });
        if (options.Enabled)
            builder.Services.AddQuartzHostedService(o => o.WaitForJobsToComplete = true);
        return builder;
    }
}
