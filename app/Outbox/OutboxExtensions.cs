using Microsoft.Extensions.Options;
using PluginApp.Compliance;
using PluginApp.Jobs;
using PluginApp.Webhooks;

namespace PluginApp.Outbox;

public static class OutboxExtensions
{
    /// <summary>
    /// $1 shop, $2 customer: calls on the customer's own resource (tags, metafields): pending ones are dropped, sent ones keep
    /// no variables. Calls that carry several customers' metafields at once (churn's batches): her entries leave them, and a
    /// pending one that held only hers is dropped. For her erasure, and when Shopify deletes her.
    /// </summary>
    internal const string DropCustomerCalls = """
        WITH gone AS (DELETE FROM outbox_messages WHERE shop_id = $1 AND resource_key = 'gid://shopify/Customer/' || $2
                      AND completed_at IS NULL AND failed_at IS NULL RETURNING id),
        emptied AS (UPDATE outbox_messages SET variables = '{}' WHERE shop_id = $1 AND resource_key = 'gid://shopify/Customer/' || $2
                      AND id NOT IN (SELECT id FROM gone)),
        batches AS (SELECT m.id, m.completed_at IS NULL AND m.failed_at IS NULL AS pending,
                           (SELECT coalesce(jsonb_agg(e ORDER BY n), '[]') FROM jsonb_array_elements(m.variables -> 'metafields') WITH ORDINALITY x(e, n)
                            WHERE e ->> 'ownerId' IS DISTINCT FROM 'gid://shopify/Customer/' || $2) AS others
                    FROM outbox_messages m
                    WHERE m.shop_id = $1 AND m.resource_key NOT LIKE 'gid://%' AND jsonb_typeof(m.variables -> 'metafields') = 'array'
                      AND EXISTS (SELECT 1 FROM jsonb_array_elements(m.variables -> 'metafields') e WHERE e ->> 'ownerId' = 'gid://shopify/Customer/' || $2)),
        dropped AS (DELETE FROM outbox_messages WHERE id IN (SELECT id FROM batches WHERE pending AND others = '[]'))
        UPDATE outbox_messages m SET variables = jsonb_set(m.variables, '{metafields}', b.others)
        FROM batches b WHERE m.id = b.id AND NOT (b.pending AND b.others = '[]')
        """;

    public static IServiceCollection AddOutbox(this IServiceCollection services)
    {
        services.AddOptions<OutboxOptions>().BindConfiguration(OutboxOptions.Section).ValidateOnStart();
        services.AddSingleton<IValidateOptions<OutboxOptions>, OutboxOptionsValidator>();
        services.AddTransient<OutboxDrainer>();
        services.AddTransient<OutboxScheduler>();
        foreach (var op in new[] { OutboxOperation.TagsAdd, OutboxOperation.TagsRemove, OutboxOperation.MetafieldsSet, OutboxOperation.MetafieldsDelete, OutboxOperation.OrderRiskAssessmentCreate })
            services.AddOutboxOperation(op);
        // Nothing queued writes on her after the erasure and nothing kept names her.
        services.AddPersonalData(new PersonalDataTable("outbox_messages", ["variables"],
            DropCustomerCalls, NotExported: "calls that write the app's own tags and metafields on the customer, whose values the export's churn scores hold"));
        // Nor on a customer Shopify deleted: each call would fail, and a batch of metafields with her would fail whole.
        services.AddIngestionStep<StoreData.CustomerDeletion>("Shopify calls: customer deleted", (store, deleted, _) =>
            store.Add(DropCustomerCalls, store.ShopId, deleted.Id));
        services.AddRetention(new RetentionRule("sent or failed Shopify calls", TimeSpan.FromDays(30),
            "DELETE FROM outbox_messages WHERE coalesce(completed_at, failed_at) < $1"));
        services.AddRecurringJob<OutboxDrainJob>("outbox-sweep", j => j.SweepAsync(CancellationToken.None), _ => "* * * * *");
        return services;
    }

    /// <summary>Lets the outbox send calls of this kind (registered once per kind by the feature that produces them).</summary>
    public static IServiceCollection AddOutboxOperation(this IServiceCollection services, OutboxOperation operation) =>
        services.AddSingleton(operation);
}
