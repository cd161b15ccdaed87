using System.Linq.Expressions;
using Hangfire;
using Hangfire.AspNetCore;
using Hangfire.PostgreSql;
using Hangfire.PostgreSql.Factories;
using Microsoft.Extensions.Options;

namespace PluginApp.Jobs;

/// <summary>A recurring job a feature declares; registered with Hangfire when the app starts (UTC unless said).</summary>
public sealed record RecurringJobDeclaration(string Id, Action<IRecurringJobManager, string> Register, Func<IServiceProvider, string> Cron);

/// <summary>
/// Hangfire on the app's PostgreSQL: every instance queues jobs, those with Scheduling:Enabled also run them, and a
/// job runs on one instance at a time. Features enqueue through IBackgroundJobClient and declare their recurring
/// jobs with <see cref="AddRecurringJob{TJob}"/>.
/// </summary>
public static class SchedulingExtensions
{
    public static IHostApplicationBuilder AddScheduling(this IHostApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddOptions<SchedulingOptions>().BindConfiguration(SchedulingOptions.Section).ValidateOnStart();
        services.AddSingleton<IValidateOptions<SchedulingOptions>, SchedulingOptionsValidator>();
        services.AddSingleton<JobLocks>();
        services.AddSingleton<RunLog>();
        JobRetryPolicy.Apply();

        // Why our own JobStorage and JobActivator singletons: Hangfire's defaults resolve the static JobStorage.Current and
        // JobActivator.Current, so two app instances in one process (tests, blue-green) could run each other's jobs.
        services.AddSingleton<JobStorage>(sp =>
        {
            var o = sp.GetRequiredService<IOptions<SchedulingOptions>>().Value;
            var storage = new PostgreSqlStorageOptions
            {
                SchemaName = "hangfire",
                PrepareSchemaIfNecessary = true,
                UseSlidingInvisibilityTimeout = true,
                InvisibilityTimeout = o.InvisibilityTimeout,
                QueuePollInterval = o.QueuePollInterval,
                DistributedLockTimeout = TimeSpan.FromMinutes(1),
            };
            var cs = sp.GetRequiredService<IOptions<Data.DatabaseOptions>>().Value.Postgres;
            return new PostgreSqlStorage(new NpgsqlConnectionFactory(cs, storage), storage);
        });
        services.AddSingleton<JobActivator>(sp => new AspNetCoreJobActivator(sp.GetRequiredService<IServiceScopeFactory>()));
        services.AddHangfire((sp, c) => c
            .UseLogProvider(new HangfireLogs(sp.GetRequiredService<ILoggerFactory>()))
            .SetDataCompatibilityLevel(CompatibilityLevel.Version_180)
            .UseSimpleAssemblyNameTypeSerializer()
            .UseRecommendedSerializerSettings());

        if (builder.Configuration.GetSection(SchedulingOptions.Section).GetValue(nameof(SchedulingOptions.Enabled), true))
        {
            AddServer(services, JobQueues.Default, o => o.WorkerCount, "");
            // Why a second server for the long jobs: with one set of workers, a store's four trainings took all four, and its
            // orders' risk scoring and Shopify calls waited for a training to end (LongJobsTests).
            AddServer(services, JobQueues.Long, o => o.LongJobWorkers, "-long");
        }
        services.AddHostedService<RecurringJobsRegistrar>();
        return builder;
    }

    /// <summary>A job server of this instance for one queue, with its own workers.</summary>
    private static void AddServer(IServiceCollection services, string queue, Func<SchedulingOptions, int> workers, string nameSuffix) =>
        services.AddHangfireServer((sp, s) =>
        {
            var o = sp.GetRequiredService<IOptions<SchedulingOptions>>().Value;
            s.WorkerCount = workers(o);
            s.Queues = [queue];
            s.SchedulePollingInterval = o.SchedulePollingInterval;
            s.ServerName = $"pluginapp-{Environment.MachineName}-{Environment.ProcessId}{nameSuffix}";
        });

    /// <summary>Declares a recurring job (UTC); its cron expression is computed from the validated options when the app starts.</summary>
    public static IServiceCollection AddRecurringJob<TJob>(this IServiceCollection services, string id, Expression<Func<TJob, Task>> call,
        Func<IServiceProvider, string> cron) =>
        services.AddSingleton(new RecurringJobDeclaration(id, (m, c) => m.AddOrUpdate(id, call, c), cron));

    /// <summary>The operators' dashboard at Scheduling:DashboardPath, refusing everyone unless Scheduling:DashboardToken is set.</summary>
    public static WebApplication MapJobsDashboard(this WebApplication app)
    {
        var o = app.Services.GetRequiredService<IOptions<SchedulingOptions>>().Value;
        app.UseHangfireDashboard(o.DashboardPath, new DashboardOptions
        {
            Authorization = [new OperatorDashboardAuthorization(o.DashboardToken)],
            AsyncAuthorization = [],
            DisplayStorageConnectionString = false,
            AppPath = null,
        }, app.Services.GetRequiredService<JobStorage>());
        return app;
    }

    /// <summary>Writes every declared recurring job at start, so a new schedule or a changed one is live after a deploy.</summary>
    private sealed class RecurringJobsRegistrar(IEnumerable<RecurringJobDeclaration> declarations, IRecurringJobManager manager,
        IServiceProvider services, ILogger<RecurringJobsRegistrar> logger) : IHostedService
    {
        public Task StartAsync(CancellationToken ct)
        {
            foreach (var d in declarations)
            {
                var cron = d.Cron(services);
                d.Register(manager, cron);
                logger.LogDebug("Recurring job {Id} at '{Cron}'", d.Id, cron);
            }
            return Task.CompletedTask;
        }

        public Task StopAsync(CancellationToken ct) => Task.CompletedTask;
    }
}
