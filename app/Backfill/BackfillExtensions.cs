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
        // Staged rows live only while their phase is applied. An erased customer's staged row goes; the staged orders and
        // refunds of the customer lose their personal fields, as the store's do (and the merge gives none back to a redacted customer).
        services.AddPersonalData(new PersonalDataTable("backfill_customers", ["email", "first_name", "last_name", "phone"],
            """
            DELETE FROM backfill_customers s USING backfill_runs r WHERE r.id = s.run_id AND r.shop_id = $1
              AND (s.id = $2 OR ($4::text IS NOT NULL AND lower(s.email) = lower($4::text)))
            """));
        // Why refunds first: they find the customer's staged orders through the email the next declaration erases.
        services.AddPersonalData(new PersonalDataTable("backfill_refunds", ["note"],
            """
            UPDATE backfill_refunds s SET note = NULL FROM backfill_runs r WHERE r.id = s.run_id AND r.shop_id = $1 AND s.note IS NOT NULL
              AND (s.order_id = ANY($3) OR s.order_id IN (SELECT id FROM redaction_orders)
                OR s.order_id IN (SELECT o.id FROM backfill_orders o WHERE o.run_id = s.run_id
                                  AND (o.customer_id = $2 OR ($4::text IS NOT NULL AND lower(o.email) = lower($4::text)))))
            """));
        services.AddPersonalData(new PersonalDataTable("backfill_orders", ["email", "browser_ip", "card_bin", "card_last4"],
            """
            UPDATE backfill_orders s SET email = NULL, browser_ip = NULL, card_bin = NULL, card_last4 = NULL
            FROM backfill_runs r WHERE r.id = s.run_id AND r.shop_id = $1
              AND (s.customer_id = $2 OR s.id = ANY($3) OR s.id IN (SELECT id FROM redaction_orders)
                OR ($4::text IS NOT NULL AND lower(s.email) = lower($4::text)))
            """));
        services.AddNotPersonal("backfill_orders", "customer_id", "Shopify's opaque customer id (as orders.customer_id)");
        services.AddNotPersonal("backfill_orders", "name", "the order's number (as orders.name)");
        services.AddNotPersonal("backfill_order_lines", "title", "the product's title at the time of the order (as order_lines.title)");
        services.AddNotPersonal("backfill_products", "title", "a catalog title");
        services.AddNotPersonal("backfill_variants", "title", "a catalog title");
        var staged = BackfillPhase.AllTables.Select(t => t.Name).ToList();
        services.AddRetention(new RetentionRule("staged rows of abandoned backfills", TimeSpan.FromDays(14),
            "WITH abandoned AS (SELECT id FROM backfill_runs WHERE updated_at < $1)"
            + string.Concat(staged.SkipLast(1).Select((t, i) => $", d{i} AS (DELETE FROM {t} WHERE run_id IN (SELECT id FROM abandoned))"))
            + $" DELETE FROM {staged[^1]} WHERE run_id IN (SELECT id FROM abandoned)"));
        return services;
    }
}
