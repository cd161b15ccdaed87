using PluginApp.CartOffers;
using PluginApp.Training;

namespace PluginApp.Intent;

public static class IntentFeature
{
    public static IServiceCollection AddIntent(this IServiceCollection services)
    {
        services.AddModelKind(IntentModelTrainer.Registration);
        services.AddSingleton<IIntentScorer, IntentScorer>();
        return services;
    }
}
