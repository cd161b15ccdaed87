using PluginApp.Admin;
using PluginApp.Install;
using PluginApp.Jobs;
using PluginApp.Outbox;
using PluginApp.StoreData;
using PluginApp.Training;
using PluginApp.Webhooks;
using PluginApp.Admin.Switches;
using PluginApp.Backfill;

namespace PluginApp.Risk;

/// <summary>Order risk: every order scored off the webhook path with reasons, written to Shopify through the outbox.</summary>
public static class RiskExtensions
{
    public static IServiceCollection AddRisk(this IServiceCollection services)
    {
        services.AddOptions<RiskOptions>().BindConfiguration(RiskOptions.Section).ValidateOnStart();
        services.AddSingleton<Microsoft.Extensions.Options.IValidateOptions<RiskOptions>, RiskOptionsValidator>();
        services.AddSingleton<RiskScorer>();
        services.AddSingleton<RiskModels>();
        services.AddSingleton<RiskBacktest>();
        services.AddSingleton<RiskySessions>();
        services.AddSingleton<Recommendations.IServingGuard>(sp => sp.GetRequiredService<RiskySessions>());
        services.AddModelKind(RiskTrainer.Registration);
        services.AddAiFeature(RiskScorer.Switch);
        services.AddSingleton<RiskKicks>();
        services.AddTransient<RiskScoringJob>();
        services.AddIngestionStep<OrderRows>("order risk queue", RiskQueue.Add);
        services.AddBackfillMergeStep("order risk labels", StoreMerge.Orders, RiskQueue.BackfillLabels);
        // Shopify Payments chargebacks and inquiries: the order risk's own topics, labels written in the delivery's transaction.
        services.AddDisputeTopics();
        services.AddScopeUse("write_orders", "writing each order's risk assessment and tag, and cancelling an order from the review queue");
        services.AddScopeUse("write_merchant_managed_fulfillment_orders", "holding fulfillment of high-risk orders (when holds are on)");
        services.AddScopeUse("read_shopify_payments_disputes", "learning from Shopify Payments chargebacks (disputes/create and disputes/update)");
        services.AddSingleton(sp =>
        {
            var kicks = sp.GetRequiredService<RiskKicks>();
            // Why nothing on reconnect: notifications missed while away are found by the sweep within a minute.
            return new Data.ChangeSubscription(RiskQueue.Channel, kicks.OnNotification, () => { });
        });
        services.AddRecurringJob<RiskScoringJob>("risk-sweep", j => j.SweepAsync(CancellationToken.None), _ => "* * * * *");
        // Fulfillment holds on HIGH orders and their release, and a reviewer's cancellation: each through the outbox.
        foreach (var op in RiskActions.All) services.AddOutboxOperation(op);
        services.AddTransient<RiskHolds>();
        services.AddTransient<RiskHoldJob>();
        services.AddTransient<RiskHoldScheduler>();
        services.AddAdminPage("/admin/risk", "Risk settings", 35);
        services.AddRecurringJob<RiskHoldJob>("risk-holds-sweep", j => j.SweepAsync(CancellationToken.None), _ => "* * * * *");
        return services;
    }
}
