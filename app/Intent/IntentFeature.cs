using Microsoft.Extensions.Options;
using PluginApp.CartOffers;
using PluginApp.Compliance;
using PluginApp.Install;
using PluginApp.Jobs;
using PluginApp.Training;

namespace PluginApp.Intent;

public static class IntentFeature
{
    public static IServiceCollection AddIntent(this IServiceCollection services)
    {
        services.AddModelKind(IntentModelTrainer.Registration);
        services.AddSingleton<IntentScorer>();
        services.AddSingleton<IIntentScorer>(sp => sp.GetRequiredService<IntentScorer>());
        services.AddOptions<AbandonmentOptions>().BindConfiguration(AbandonmentOptions.Section).ValidateOnStart();
        services.AddSingleton<IValidateOptions<AbandonmentOptions>, AbandonmentOptionsValidator>();
        services.AddTransient<AbandonmentSignal>();
        services.AddRecurringJob<AbandonmentSignal>("abandonment-signal", j => j.SweepAsync(CancellationToken.None), _ => "*/30 * * * *");
        services.AddScopeUse("write_customers", "tagging customers with a recoverable abandoned checkout (pluginapp:checkout-recoverable) for recovery emails");
        services.AddPersonalData(new PersonalDataTable("checkout_signals", ["customer_id"],
            "DELETE FROM checkout_signals WHERE shop_id = $1 AND customer_id = $2"));
        return services;
    }
}
