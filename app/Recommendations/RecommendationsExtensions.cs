using Microsoft.Extensions.Options;
using PluginApp.Admin;
using PluginApp.Install;
using PluginApp.Admin.Switches;
using PluginApp.Compliance;
using PluginApp.Jobs;
using PluginApp.Training;
using PluginApp.Experiments;
using PluginApp.Webhooks;

namespace PluginApp.Recommendations;

public static class RecommendationsExtensions
{
    public static IServiceCollection AddRecommendations(this IServiceCollection services)
    {
        services.AddOptions<RecommendationOptions>().BindConfiguration(RecommendationOptions.Section).ValidateOnStart();
        services.AddScopeUse("read_products", "reading the catalog that upsells are chosen from");
        services.AddScopeUse("read_inventory", "leaving out of upsells what is out of stock");
        // Shopify requires it of an app that configures an app proxy (shopify.app.toml's [app_proxy]).
        services.AddScopeUse("write_app_proxy", "answering the storefront's upsell and cart offer blocks through the app proxy");
        services.AddSingleton<IValidateOptions<RecommendationOptions>, RecommendationOptionsValidator>();
        services.AddSingleton<SignalStore>();
        services.AddSingleton<ModelCache>();
        services.AddHostedService(sp => sp.GetRequiredService<ModelCache>());
        services.AddSingleton(sp =>
        {
            var models = sp.GetRequiredService<ModelCache>();
            return Data.ChangeSubscription.OfShops(ModelRegistry.Channel, models.Invalidate, models.InvalidateAll);
        });
        services.AddSingleton<CatalogCache>();
        services.AddSingleton(sp =>
        {
            var catalogs = sp.GetRequiredService<CatalogCache>();
            return Data.ChangeSubscription.OfShops(CatalogCache.Channel, catalogs.Invalidate, catalogs.InvalidateAll);
        });
        services.AddSingleton<AnswerCache>();
        services.AddSingleton<ModelArtifactScrubber>();
        services.AddHostedService(sp => sp.GetRequiredService<ModelArtifactScrubber>());
        services.AddSingleton<RecommendationService>();
        services.AddSingleton<ProxyLimiters>();
        services.AddSingleton<DecisionTokens>();
        services.AddSingleton<RulesStore>();
        // Storefront events of the customer, and of every visitor id tied to her (a logged-in customer's events carry both).
        services.AddVisitorLink(new VisitorLink("recommendations",
            "SELECT visitor_hash FROM recommendation_events WHERE shop_id = $1 AND customer_id = $2"));
        services.AddPersonalData(new PersonalDataTable("recommendation_events", ["customer_id", "visitor_hash"],
            """
            DELETE FROM recommendation_events WHERE shop_id = $1 AND (customer_id = $2 OR visitor_hash IN (SELECT visitor_hash FROM redaction_visitors) AND customer_id IS NULL)
            """,
            Export: """
                SELECT coalesce(jsonb_agg(to_jsonb(e) - 'shop_id' ORDER BY e.occurred_at), '[]') FROM recommendation_events e
                WHERE e.shop_id = $1 AND (e.customer_id = $2 OR e.visitor_hash IN (SELECT visitor_hash FROM redaction_visitors) AND e.customer_id IS NULL)
                """));
        // Which of her orders' lines the upsells are credited with, and by which answer and event: hers through her orders,
        // so in her export (until 6 Dec 2026 it was not declared, and left out). Kept: a line, a product, the answer's id and
        // what she did with it, no personal field; her events and the answer's ties to her are erased with her.
        services.AddPersonalData(new PersonalDataTable("recommendation_attributions", [], null,
            NotErased: "the store's credit of her orders' lines to the upsell answers she saw, holding no personal field (her events and the answers' ties to her are erased)",
            Export: """
                SELECT coalesce(jsonb_agg(jsonb_build_object('order_id', a.order_id, 'line_id', a.line_id, 'product_id', a.product_id, 'event', a.event_type,
                         'model_version', a.model_version, 'arm', a.experiment_arm, 'revenue', a.revenue, 'attributed_at', a.attributed_at) ORDER BY a.order_id, a.line_id), '[]')
                FROM recommendation_attributions a WHERE a.shop_id = $1 AND a.order_id IN (SELECT id FROM redaction_orders)
                """));
        services.AddModelKind(RecommenderTrainer.Registration);
        services.AddAiFeature(UpsellFeature.Registration);
        services.AddAdminPage("/admin/upsells", "Upsells and models", 10);
        services.AddAdminPage("/admin/rules", "Rules", 20);
        services.AddSingleton<UpsellStats>();
        services.AddTransient<BlockedCollectionsJob>();
        services.AddRecurringJob<BlockedCollectionsJob>(BlockedCollectionsJob.SweepId, j => j.SweepAsync(CancellationToken.None), _ => "17 * * * *");
        services.AddSingleton<RulesWhatIf>();
        services.AddIngestionStep<StoreData.OrderRows>("recommendation attribution", (store, order, at) => Attribution.Add(store, order, at.Shop, at.Now));
        // Nor is an order Shopify deleted any upsell's revenue.
        services.AddIngestionStep<StoreData.OrderDeletion>("recommendation attribution: order deleted", (store, deleted, _) =>
            store.Add("DELETE FROM recommendation_attributions WHERE shop_id = $1 AND order_id = $2", store.ShopId, deleted.Id));
        // A product's price, stock or status changed, a product was deleted, or an inventory item's tracking or cost changed:
        // every instance reloads the shop's catalog (and drops its cached answers) when it commits. Why the deletion and the
        // items too: until 5 Dec 2026 only products/create and update announced it, so a deleted product, or one whose cost
        // now put it under the margin floor, was served from the old catalog until it was CatalogMaxAge old.
        services.AddIngestionStep<StoreData.ProductRows>("catalog changed", (store, _, _) => store.NotifyShop(CatalogCache.Channel));
        services.AddIngestionStep<StoreData.ProductDeletion>("catalog changed: product deleted", (store, _, _) => store.NotifyShop(CatalogCache.Channel));
        services.AddIngestionStep<StoreData.InventoryItemRow>("catalog changed: inventory item", (store, _, _) => store.NotifyShop(CatalogCache.Channel));
        services.AddExperiment(UpsellExperiment.Kind);
        return services;
    }
}
