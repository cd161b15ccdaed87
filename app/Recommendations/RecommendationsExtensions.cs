using Microsoft.AspNetCore.RateLimiting;
using Microsoft.Extensions.Options;
using PluginApp.Jobs;

namespace PluginApp.Recommendations;

public static class RecommendationsExtensions
{
    public static IServiceCollection AddRecommendations(this IServiceCollection services)
    {
        services.AddOptions<RecommendationOptions>().BindConfiguration(RecommendationOptions.Section).ValidateOnStart();
        services.AddSingleton<IValidateOptions<RecommendationOptions>, RecommendationOptionsValidator>();
        services.AddSingleton<SignalStore>();
        services.AddSingleton<ModelRegistry>();
        services.AddSingleton<ModelCache>();
        services.AddHostedService(sp => sp.GetRequiredService<ModelCache>());
        services.AddSingleton<DecisionLog>();
        services.AddHostedService(sp => sp.GetRequiredService<DecisionLog>());
        services.AddSingleton<CatalogCache>();
        services.AddSingleton<RecommendationService>();
        services.AddSingleton<ShopLimiter>();
        services.AddSingleton<RulesStore>();
        services.AddTransient<TrainingService>();
        services.AddTransient<TrainingScheduler>();
        services.AddRecurringJob<NewOrdersTrainingJob>("train-on-new-orders", j => j.RunAsync(CancellationToken.None),
            sp => $"*/{(int)sp.GetRequiredService<IOptions<RecommendationOptions>>().Value.NewOrdersCheckInterval.TotalMinutes} * * * *");
        services.AddRateLimiter(o =>
        {
            o.RejectionStatusCode = StatusCodes.Status429TooManyRequests;
            o.AddPolicy(ProxyEndpoints.RateLimitPolicy, http =>
                ProxyEndpoints.Partition(http, http.RequestServices.GetRequiredService<IOptions<RecommendationOptions>>().Value));
        });
        return services;
    }
}
