using PluginApp.Admin;
using PluginApp.Compliance;
using PluginApp.Risk.Review;

// Why the feature's namespace and not the folder's: Program.cs already uses PluginApp.Risk, so registering takes one line each.
namespace PluginApp.Risk;

/// <summary>The review queue: flagged orders for store staff to approve or mark as fraud, one reviewer per order at a time.</summary>
public static class ReviewQueueExtensions
{
    public static IServiceCollection AddReviewQueue(this IServiceCollection services)
    {
        services.AddSingleton<ReviewStore>();
        services.AddAdminPage("/admin/review", "Review queue", 30);
        // A note is the staff's free text about a customer's order: it goes with the customer's other data, the decision stays.
        services.AddPersonalData(new PersonalDataTable("review_decisions", ["note"],
            "UPDATE review_decisions SET note = NULL WHERE shop_id = $1 AND note IS NOT NULL AND order_id IN (SELECT id FROM redaction_orders)",
            Export: """
                SELECT coalesce(jsonb_agg(jsonb_build_object('order_id', d.order_id, 'decision', d.decision, 'note', d.note, 'decided_at', d.decided_at)
                    ORDER BY d.id), '[]')
                FROM review_decisions d WHERE d.shop_id = $1 AND d.order_id IN (SELECT id FROM redaction_orders)
                """, ExportAs: "review_decisions"));
        services.AddRetention(new RetentionRule("expired review locks", TimeSpan.FromDays(1), "DELETE FROM review_locks WHERE expires_at < $1"));
        return services;
    }

    /// <summary>The queue's routes under /api/admin/review, joining the chain of admin maps (token check and shop scope come from that group).</summary>
    public static RouteGroupBuilder MapReviewQueue(this RouteGroupBuilder api)
    {
        var review = api.MapGroup("/review");
        review.MapGet("/queue", ReviewQueueApi.QueueAsync);
        review.MapGet("/orders/{id:long}", ReviewQueueApi.OrderAsync);
        review.MapPost("/orders/{id:long}/lock", ReviewQueueApi.LockAsync);
        review.MapDelete("/orders/{id:long}/lock", ReviewQueueApi.ReleaseAsync);
        review.MapPost("/orders/{id:long}/decisions", ReviewQueueApi.DecideAsync);
        return api;
    }
}
