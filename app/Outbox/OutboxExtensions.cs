using Microsoft.Extensions.Options;
using PluginApp.Jobs;

namespace PluginApp.Outbox;

public static class OutboxExtensions
{
    public static IServiceCollection AddOutbox(this IServiceCollection services)
    {
        services.AddOptions<OutboxOptions>().BindConfiguration(OutboxOptions.Section).ValidateOnStart();
        services.AddSingleton<IValidateOptions<OutboxOptions>, OutboxOptionsValidator>();
        services.AddTransient<OutboxDrainer>();
        services.AddTransient<OutboxScheduler>();
        foreach (var op in new[] { OutboxOperation.TagsAdd, OutboxOperation.TagsRemove, OutboxOperation.MetafieldsSet, OutboxOperation.OrderRiskAssessmentCreate })
            services.AddOutboxOperation(op);
        services.AddRecurringJob<OutboxDrainJob>("outbox-sweep", j => j.SweepAsync(CancellationToken.None), _ => "* * * * *");
        return services;
    }

    /// <summary>Lets the outbox send calls of this kind (registered once per kind by the feature that produces them).</summary>
    public static IServiceCollection AddOutboxOperation(this IServiceCollection services, OutboxOperation operation) =>
        services.AddSingleton(operation);
}
