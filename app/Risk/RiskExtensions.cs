using PluginApp.Compliance;
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
        services.AddIngestionStep<OrderTransactionRows>("order risk queue on the order's card", RiskQueue.AddCard);
        // An order Shopify deleted leaves the review queue and holds nothing; its labels go with it, and so do the calls still
        // queued on it (its assessment, tags, cancellation, and its fulfillment orders' holds and releases), each of which
        // would fail. Why the queue and the score first: a scoring batch or a reviewer's decision that holds them commits its
        // calls with them, and the calls are looked for only once it has. The reviewers' decisions stay as their record,
        // without their notes: a note may name the customer, and once the order is gone no erasure or export could find it.
        services.AddIngestionStep<OrderDeletion>("order risk: order deleted", (store, deleted, _) =>
        {
            foreach (var table in (ReadOnlySpan<string>)["risk_pending", "risk_scores"])
                store.Add($"DELETE FROM {table} WHERE shop_id = $1 AND order_id = $2", store.ShopId, deleted.Id);
            store.Add("""
                DELETE FROM outbox_messages WHERE shop_id = $1 AND completed_at IS NULL AND failed_at IS NULL
                  AND (resource_key = 'gid://shopify/Order/' || $2
                       OR resource_key IN (SELECT unnest(h.fulfillment_orders) FROM risk_holds h WHERE h.shop_id = $1 AND h.order_id = $2))
                """, store.ShopId, deleted.Id);
            foreach (var table in (ReadOnlySpan<string>)["risk_labels", "risk_labels_waiting", "risk_holds", "review_locks"])
                store.Add($"DELETE FROM {table} WHERE shop_id = $1 AND order_id = $2", store.ShopId, deleted.Id);
            store.Add("UPDATE review_decisions SET note = NULL WHERE shop_id = $1 AND order_id = $2 AND note IS NOT NULL", store.ShopId, deleted.Id);
        });
        // A dispute's delivery or a Stripe match writes a label with no order row: one in flight across the deletion leaves
        // it (until 7 Dec 2026 the recheck looked only for the order's own rows).
        services.AddDeletedOrderRows("order risk labels", "risk_labels");
        services.AddBackfillMergeStep("order risk labels", StoreMerge.Orders, RiskQueue.BackfillLabels);
        services.AddBackfillMergeStep("order risk store days held", StoreMerge.Orders, RiskQueue.BackfillStoreDaysLock);
        services.AddBackfillMergeStep("order risk store days", StoreMerge.Orders, RiskQueue.BackfillStoreDays);
        // Shopify Payments chargebacks and inquiries: the order risk's own topics, labels written in the delivery's transaction.
        services.AddDisputeTopics();
        // What the app decided and learned about her orders is hers to see (until 5 Dec 2026 the export held only the decision
        // log's risk decisions, for its 90 days), with the features each was scored on (her earlier orders and spend, her
        // email's and address's counts) and what a hold read of her history (both left out until 5 Dec 2026). The rows stay
        // after her erasure: they name only the order, whose own personal fields are erased, and they are the store's record
        // of its risk decisions and chargebacks. The risk model no longer learns from her orders (RiskTrainer; until 5 Dec
        // 2026 this said it did).
        const string kept = "fraud evidence tied only to the order's id, whose personal fields are erased; the store's record of its risk decisions and chargebacks (the risk model does not learn from an erased customer's orders)";
        services.AddPersonalData(new PersonalDataTable("risk_scores", [], null, NotErased: kept, Export: """
            SELECT coalesce(jsonb_agg(jsonb_build_object('order_id', s.order_id, 'score', s.score, 'level', s.level, 'model_version', s.model_version,
                     'reasons', s.reasons, 'features', s.features, 'scored_at', s.scored_at) ORDER BY s.order_id), '[]')
            FROM risk_scores s WHERE s.shop_id = $1 AND s.order_id IN (SELECT id FROM redaction_orders)
            """));
        // A reviewer's label names the reviewer ("approved by Ada"): the export says the store's staff, as the review
        // decisions' part leaves out who decided.
        services.AddPersonalData(new PersonalDataTable("risk_labels", [], null, NotErased: kept, ExportAs: "fraud_labels", Export: """
            SELECT coalesce(jsonb_agg(jsonb_build_object('order_id', l.order_id, 'source', l.source, 'fraud', l.fraud, 'labelled_at', l.labelled_at,
                     'detail', CASE WHEN l.source <> 'review' THEN l.detail WHEN l.fraud THEN 'marked as fraud by the store''s staff'
                                    ELSE 'approved by the store''s staff' END) ORDER BY l.labelled_at, l.source), '[]')
            FROM risk_labels l WHERE l.shop_id = $1 AND l.order_id IN (SELECT id FROM redaction_orders)
            """));
        services.AddPersonalData(new PersonalDataTable("risk_holds", [], null, NotErased: kept, ExportAs: "fulfillment_holds", Export: """
            SELECT coalesce(jsonb_agg(jsonb_build_object('order_id', h.order_id, 'state', h.state, 'decided_at', h.decided_at, 'updated_at', h.updated_at,
                     'earlier_orders', h.earlier_orders, 'earlier_spend', h.earlier_spend) ORDER BY h.order_id), '[]')
            FROM risk_holds h WHERE h.shop_id = $1 AND h.order_id IN (SELECT id FROM redaction_orders)
            """));
        services.AddScopeUse("write_orders", "writing each order's risk assessment and tag, and cancelling an order from the review queue");
        services.AddScopeUse("write_merchant_managed_fulfillment_orders", "holding fulfillment of high-risk orders (when holds are on)");
        services.AddScopeUse("read_shopify_payments_disputes", "learning from Shopify Payments chargebacks (disputes/create and disputes/update)");
        services.AddSingleton(sp =>
        {
            var kicks = sp.GetRequiredService<RiskKicks>();
            // A NOTIFY from a committed delivery: its shop has orders to score. Why nothing on reconnect: notifications missed
            // while away are found by the sweep within a minute.
            return Data.ChangeSubscription.OfShops(RiskQueue.Channel, kicks.Kick, () => { });
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
