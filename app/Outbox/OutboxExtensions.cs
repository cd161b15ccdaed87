using Microsoft.Extensions.Options;
using PluginApp.Compliance;
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
        foreach (var op in new[] { OutboxOperation.TagsAdd, OutboxOperation.TagsRemove, OutboxOperation.MetafieldsSet, OutboxOperation.MetafieldsDelete, OutboxOperation.OrderRiskAssessmentCreate })
            services.AddOutboxOperation(op);
        // Calls on the customer's own resource (tags, metafields): pending ones are dropped, sent ones keep no variables.
        services.AddPersonalData(new PersonalDataTable("outbox_messages", ["variables"],
            """
            WITH gone AS (DELETE FROM outbox_messages WHERE shop_id = $1 AND resource_key = 'gid://shopify/Customer/' || $2
                          AND completed_at IS NULL AND failed_at IS NULL RETURNING id)
            UPDATE outbox_messages SET variables = '{}' WHERE shop_id = $1 AND resource_key = 'gid://shopify/Customer/' || $2
              AND id NOT IN (SELECT id FROM gone)
            """, NotExported: "calls that write the app's own tags and metafields on the customer, whose values the export's churn scores hold"));
        services.AddRetention(new RetentionRule("sent or failed Shopify calls", TimeSpan.FromDays(30),
            "DELETE FROM outbox_messages WHERE coalesce(completed_at, failed_at) < $1"));
        services.AddRecurringJob<OutboxDrainJob>("outbox-sweep", j => j.SweepAsync(CancellationToken.None), _ => "* * * * *");
        return services;
    }

    /// <summary>Lets the outbox send calls of this kind (registered once per kind by the feature that produces them).</summary>
    public static IServiceCollection AddOutboxOperation(this IServiceCollection services, OutboxOperation operation) =>
        services.AddSingleton(operation);
}
