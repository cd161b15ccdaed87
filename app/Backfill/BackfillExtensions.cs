using Microsoft.Extensions.Options;

namespace PluginApp.Backfill;

public static class BackfillExtensions
{
    public static IServiceCollection AddBackfill(this IServiceCollection services)
    {
        services.AddOptions<BackfillOptions>().BindConfiguration(BackfillOptions.Section).ValidateOnStart();
        services.AddSingleton<IValidateOptions<BackfillOptions>, BackfillOptionsValidator>();
        services.AddHttpClient(BackfillService.DownloadClient, c => c.Timeout = TimeSpan.FromMinutes(30));
        services.AddTransient<BackfillService>();
        services.AddTransient<BackfillScheduler>();
        return services;
    }
}
