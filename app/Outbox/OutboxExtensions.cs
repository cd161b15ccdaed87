using Microsoft.Extensions.Options;
using Quartz;

namespace PluginApp.Outbox;

public static class OutboxExtensions
{
    public static IServiceCollection AddOutbox(this IServiceCollection services)
    {
        services.AddOptions<OutboxOptions>().BindConfiguration(OutboxOptions.Section).ValidateOnStart();
        services.AddSingleton<IValidateOptions<OutboxOptions>, OutboxOptionsValidator>();
        services.AddTransient<OutboxDrainer>();
        return services;
    }

    public static void AddOutboxJobs(this IQuartzBuilder q, IConfiguration configuration)
    {
        var interval = configuration.GetSection(OutboxOptions.Section).Get<OutboxOptions>()?.PollInterval ?? new OutboxOptions().PollInterval;
        q.AddJob<OutboxDrainJob>(j => j.WithIdentity(OutboxDrainJob.Key).StoreDurably());
        q.AddTrigger(t => t.ForJob(OutboxDrainJob.Key).WithIdentity("outbox-drain-trigger", "system")
            .WithSimpleSchedule(s => s.WithInterval(interval).RepeatForever()));
    }
}
