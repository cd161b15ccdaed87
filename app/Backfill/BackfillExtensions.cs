using Microsoft.Extensions.Options;
using PluginApp.Compliance;

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
        // Staged bulk lines live only while their phase is applied; a customer erased meanwhile is not applied from them.
        services.AddPersonalData(new PersonalDataTable("backfill_lines", ["body"],
            """
            DELETE FROM backfill_lines l USING backfill_runs r WHERE r.id = l.run_id AND r.shop_id = $1 AND (
                 l.body ->> 'id' = 'gid://shopify/Customer/' || $2 OR l.body::jsonb @> jsonb_build_object('customer', jsonb_build_object('id', 'gid://shopify/Customer/' || $2))
              OR l.body ->> 'id' IN (SELECT 'gid://shopify/Order/' || id FROM redaction_orders)
              -- By her address, only a guest's line (PersonalDataSql.GuestByEmail): another customer's order, or record, that
              -- carries it is theirs, and until 8 Dec 2026 it was dropped from the import with hers.
              OR ($4::text IS NOT NULL AND mentions_email(l.body::text, $4) AND l.body::jsonb -> 'customer' ->> 'id' IS NULL
                  AND coalesce(l.body ->> 'id', '') NOT LIKE 'gid://shopify/Customer/%'))
            """, NotExported: "staged copies of store rows the export holds, dropped once merged"));
        services.AddRetention(new RetentionRule("staged lines of abandoned backfills", TimeSpan.FromDays(14),
            "DELETE FROM backfill_lines l USING backfill_runs r WHERE r.id = l.run_id AND r.updated_at < $1"));
        return services;
    }
}
