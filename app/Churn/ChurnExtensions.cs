using Microsoft.Extensions.Options;
using PluginApp.Admin;
using PluginApp.Compliance;
using PluginApp.Install;
using PluginApp.Jobs;
using PluginApp.Training;
using PluginApp.Webhooks;
using PluginApp.Admin.Switches;

namespace PluginApp.Churn;

public static class ChurnExtensions
{
    public static IServiceCollection AddChurn(this IServiceCollection services)
    {
        services.AddOptions<ChurnOptions>().BindConfiguration(ChurnOptions.Section).ValidateOnStart();
        services.AddSingleton<IValidateOptions<ChurnOptions>, ChurnOptionsValidator>();
        services.AddModelKind(ChurnModelTrainer.Registration);
        services.AddAiFeature(ChurnScoringJob.Switch);
        services.AddTransient<ChurnScheduler>();
        services.AddTransient<ChurnScoringJob>();
        services.AddTransient<ChurnStore>();
        services.AddAdminPage("/admin/churn", "Churn segments", 40);
        services.AddScopeUse("write_customers", "writing churn segment tags (pluginapp:…) and metafields on customers");
        // Daily, after the nightly trainings (03:00 in each shop's zone): recency grows every day even when the model stays.
        services.AddRecurringJob<ChurnScoringJob>("churn-rescore", j => j.SweepAsync(CancellationToken.None), _ => "30 5 * * *");
        // A customer Shopify deleted leaves her segment at once, not at the next nightly scoring (which skips her then), as
        // an erased one does.
        const string dropScore = "DELETE FROM churn_scores WHERE shop_id = $1 AND customer_id = $2";
        services.AddIngestionStep<StoreData.CustomerDeletion>("churn segments: customer deleted", (store, deleted, _) =>
            store.Add(dropScore, store.ShopId, deleted.Id));
        services.AddPersonalData(new PersonalDataTable("churn_scores", ["customer_id", "reasons"],
            dropScore,
            Export: "SELECT coalesce(jsonb_agg(to_jsonb(s) - 'shop_id'), '[]') FROM churn_scores s WHERE s.shop_id = $1 AND s.customer_id = $2"));
        return services;
    }
}
