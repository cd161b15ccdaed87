using Hangfire;
using Npgsql;
using PluginApp.Jobs;

namespace PluginApp.Compliance;

public static class ComplianceExtensions
{
    /// <summary>The personal-data catalog features declare into, and the daily job that applies their retention rules.</summary>
    public static IServiceCollection AddCompliance(this IServiceCollection services)
    {
        services.AddSingleton<PersonalDataCatalog>();
        services.AddRecurringJob<RetentionJob>("retention", j => j.RunAsync(CancellationToken.None), _ => "0 4 * * *");
        services.AddRecurringJob<ErasureSecondPassJob>("erasure-second-pass", j => j.RunAsync(CancellationToken.None), _ => "* * * * *");
        services.AddRecurringJob<ShopTokenChecks>(ShopTokenChecks.JobId, j => j.RunAsync(CancellationToken.None), _ => "* * * * *");
        // Only passes the second-pass job has seen: one queued while this erasure runs (a late order of hers, dated by its
        // delivery, so older than her second pass) was not weighed by the job's check for writers in flight, and deleted
        // here its writer's rows escaped (until 7 Dec 2026). Kept, it runs on its own once seen and no writer holds it.
        services.AddPersonalData(new PersonalDataTable("erasure_second_passes", ["customer_id", "request", "visitors", "carts"],
            "DELETE FROM erasure_second_passes WHERE shop_id = $1 AND customer_id = $2 AND requested_at < $5 AND seen_at IS NOT NULL",
            NotExported: "the erasure request itself, kept until its second pass (two to three minutes)"));
        return services;
    }
}

/// <summary>
/// Daily: deletes what each declared retention rule says is kept no longer. Each rule on its own: one that fails (a
/// timeout on a large table, a lock) is logged and the others still run, then the job fails naming it, so Hangfire
/// retries it and the failure shows. Until 8 Dec 2026 the first failure ended the run, and every rule after it (the
/// decision log's, with its customer and visitor ids, is last) kept its rows for as long as it went on failing.
/// </summary>
public sealed class RetentionJob(NpgsqlDataSource db, PersonalDataCatalog catalog, TimeProvider clock, ILogger<RetentionJob> logger)
{
    /// <summary>How long one rule's statement may take: a month of a busy store's deliveries is read whole (Npgsql's own 30 s is too short).</summary>
    public const int RuleTimeoutSeconds = 900;

    [Queue(JobQueues.Long)]
    public async Task RunAsync(CancellationToken ct)
    {
        var failed = new List<string>();
        foreach (var rule in catalog.Retention)
        {
            try
            {
                await using var cmd = db.CreateCommand(rule.Delete);
                cmd.CommandTimeout = RuleTimeoutSeconds;
                cmd.Parameters.AddWithValue(clock.GetUtcNow() - rule.Keep);
                var deleted = await cmd.ExecuteNonQueryAsync(ct);
                if (deleted > 0) logger.LogInformation("Retention: deleted {Count} rows of {Rule} (kept {Days} days)", deleted, rule.Name, rule.Keep.TotalDays);
            }
            catch (Exception e) when (!ct.IsCancellationRequested)
            {
                logger.LogError(e, "Retention: {Rule} failed; the other rules go on", rule.Name);
                failed.Add(rule.Name);
            }
        }
        if (failed.Count > 0) throw new InvalidOperationException($"retention failed for: {string.Join(", ", failed)} (the other rules ran)");
    }
}
