using Microsoft.Extensions.Options;
using PluginApp.Compliance;
using PluginApp.Jobs;

namespace PluginApp.Training;

public static class TrainingExtensions
{
    /// <summary>The one training path every model kind (AddModelKind) is trained through.</summary>
    public static IServiceCollection AddTraining(this IServiceCollection services)
    {
        services.AddOptions<TrainingOptions>().BindConfiguration(TrainingOptions.Section).ValidateOnStart();
        services.AddSingleton<IValidateOptions<TrainingOptions>, TrainingOptionsValidator>();
        services.AddSingleton<ModelKinds>();
        services.AddSingleton<ModelRegistry>();
        services.AddTransient<TrainingService>();
        services.AddTransient<TrainingScheduler>();
        services.AddRecurringJob<NewOrdersTrainingJob>("train-on-new-orders", j => j.RunAsync(CancellationToken.None),
            sp => $"*/{(int)sp.GetRequiredService<IOptions<TrainingOptions>>().Value.NewOrdersCheckInterval.TotalMinutes} * * * *");
        services.AddRecurringJob<NightlyTrainingSchedules>(NightlyTrainingSchedules.Id, j => j.RunAsync(CancellationToken.None), _ => "17 * * * *");
        // The registry keeps the active model, a version in shadow or canary, the three newest others, the version a rollback
        // goes back to (the last retired one that served: until 5 Dec 2026 three candidates that failed the gate pushed it out,
        // and Rollback had nothing to go back to) and anything younger than 30 days.
        services.AddRetention(new RetentionRule("old model versions", TimeSpan.FromDays(30),
            $"""
            DELETE FROM models m WHERE m.status NOT IN ('active', 'shadow', 'canary') AND m.created_at < $1 AND m.id NOT IN (
              SELECT id FROM (SELECT id, row_number() OVER (PARTITION BY shop_id, kind ORDER BY version DESC) AS n
                              FROM models WHERE status <> 'active') k WHERE k.n <= 3)
              AND m.id NOT IN (SELECT DISTINCT ON (shop_id, kind) id FROM models WHERE {ModelRegistry.RollbackTarget}
                               ORDER BY shop_id, kind, activated_at DESC)
            """));
        // Runs are the Training runs table's history (the page shows the latest 50) and the new-orders check's mark (each
        // kind's latest run), so each kind's latest run stays whatever its age.
        services.AddRetention(new RetentionRule("training runs (when each model kind was trained, on what, with what result)", TimeSpan.FromDays(90),
            """
            DELETE FROM training_runs WHERE state <> 'running' AND finished_at < $1
              AND id NOT IN (SELECT max(id) FROM training_runs GROUP BY shop_id, kind)
            """));
        return services;
    }
}
