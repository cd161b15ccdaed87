using Microsoft.Extensions.Options;
using PluginApp.CartOffers;
using PluginApp.Compliance;
using PluginApp.Install;
using PluginApp.Jobs;
using PluginApp.Training;
using PluginApp.Admin.Switches;

namespace PluginApp.Intent;

public static class IntentFeature
{
    public const string Name = "purchase-intent";

    /// <summary>Purchase intent as a feature the merchant can switch off: every cart then counts at the store's rate, and no checkout is tagged.</summary>
    public static readonly AiFeature Switch = new(Name, "Purchase intent",
        "Scores how likely a cart is to become an order, for the cart offers and the checkout-recovery tags.", ["store_rate"])
    {
        OffMeaning = new Dictionary<string, string> { ["store_rate"] = "every cart counts at the store's own cart conversion rate; no checkout is tagged as recoverable" },
    };

    public static IServiceCollection AddIntent(this IServiceCollection services)
    {
        services.AddModelKind(IntentModelTrainer.Registration);
        services.AddAiFeature(Switch);
        services.AddSingleton<IntentScorer>();
        services.AddSingleton<IIntentScorer>(sp => sp.GetRequiredService<IntentScorer>());
        services.AddSingleton(sp =>
        {
            var scorer = sp.GetRequiredService<IntentScorer>();
            return PluginApp.Data.ChangeSubscription.OfShops(PluginApp.Training.ModelRegistry.Channel, scorer.Invalidate, scorer.InvalidateAll);
        });
        services.AddOptions<AbandonmentOptions>().BindConfiguration(AbandonmentOptions.Section).ValidateOnStart();
        services.AddSingleton<IValidateOptions<AbandonmentOptions>, AbandonmentOptionsValidator>();
        services.AddTransient<AbandonmentSignal>();
        services.AddRecurringJob<AbandonmentSignal>("abandonment-signal", j => j.SweepAsync(CancellationToken.None), _ => "*/30 * * * *");
        services.AddScopeUse("write_customers", "tagging customers with a recoverable abandoned checkout (pluginapp:checkout-recoverable) for recovery emails");
        services.AddTransient<CartCustomersJob>();
        services.AddRecurringJob<CartCustomersJob>("cart-customers", j => j.RunAsync(CancellationToken.None), _ => "17 4 * * *");
        // The carts she was logged in on as the cart block answered them are hers (their rows, and deliveries about them).
        services.AddCartLink(new CartLink("cart customers", "SELECT cart_token FROM cart_customers WHERE shop_id = $1 AND customer_id = $2"));
        // Only her own logins: a cart of hers that another customer logged in on later is theirs (until 6 Dec 2026 her erasure
        // deleted their row too).
        services.AddPersonalData(new PersonalDataTable("cart_customers", ["customer_id", "cart_token"],
            "DELETE FROM cart_customers WHERE shop_id = $1 AND customer_id = $2",
            Export: "SELECT coalesce(jsonb_agg(jsonb_build_object('cart_token', cart_token, 'seen_at', seen_at)), '[]') FROM cart_customers WHERE shop_id = $1 AND customer_id = $2"));
        // Why kept: a cart's token and when it was shown an offer, no more than the cart's own row keeps after an erasure (its
        // token, lines and times, for training); erased, her shown carts would train the model again as shown nothing.
        services.AddPersonalData(new PersonalDataTable("cart_offers_shown", [], null,
            NotErased: "a cart's token and when the cart offers showed it something: the cart's own row keeps its token after an erasure, and this row keeps the cart out of purchase-intent training",
            Export: "SELECT coalesce(jsonb_agg(jsonb_build_object('cart_token', cart_token, 'shown_at', shown_at)), '[]') FROM cart_offers_shown WHERE shop_id = $1 AND cart_token IN (SELECT cart_token FROM redaction_carts)"));
        services.AddPersonalData(new PersonalDataTable("checkout_signals", ["customer_id"],
            "DELETE FROM checkout_signals WHERE shop_id = $1 AND customer_id = $2",
            Export: "SELECT coalesce(jsonb_agg(to_jsonb(s) - 'shop_id'), '[]') FROM checkout_signals s WHERE s.shop_id = $1 AND s.customer_id = $2"));
        return services;
    }
}
