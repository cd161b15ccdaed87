using Npgsql;
using PluginApp.Admin.Shell;
using PluginApp.Backfill;
using PluginApp.Data;
using PluginApp.Outbox;
using PluginApp.Webhooks;

namespace PluginApp.Admin.Operations;

/// <summary>The plumbing a merchant may need to look at: the history import, calls to Shopify, and webhook deliveries.</summary>
public sealed class OperationsModel(NpgsqlDataSource db, ShopScope scope, TimeProvider clock, Microsoft.Extensions.Options.IOptions<BackfillOptions> backfill,
    PluginApp.Install.ShopScopes scopes) : AdminPageModel
{
    /// <summary>The days of orders the history import asks for, and whether the store granted the scope for more than 60.</summary>
    public (int Days, bool AllOrders) OrderHistory { get; private set; }

    public List<BackfillRunView> Backfills { get; private set; } = [];
    public OutboxCounts Outbox { get; private set; } = new(0, 0, 0);
    public List<OutboxView> Failed { get; private set; } = [];
    public List<OutboxView> Waiting { get; private set; } = [];
    public List<DeliveryCount> Deliveries { get; private set; } = [];
    public List<DeliveryView> Recent { get; private set; } = [];

    public async Task OnGetAsync(CancellationToken ct)
    {
        ViewData["Title"] = "Operations";
        var now = clock.GetUtcNow();
        Backfills = await BackfillAdminApi.RunsAsync(db, scope.ShopId, ct);
        var allOrders = await scopes.GrantedAsync(scope.ShopId, BackfillOptions.ReadAllOrders, ct);
        OrderHistory = (backfill.Value.OrderDays(allOrders), allOrders);
        Outbox = await OutboxAdminApi.CountsAsync(db, scope.ShopId, now, ct);
        Failed = await OutboxAdminApi.ListAsync(db, scope.ShopId, "failed", ct);
        Waiting = (await OutboxAdminApi.ListAsync(db, scope.ShopId, "waiting", ct)).Take(20).ToList();
        Deliveries = await WebhooksAdminApi.CountsAsync(db, scope.ShopId, now.AddDays(-7), ct);
        Recent = await WebhooksAdminApi.RecentAsync(db, scope.ShopId, 20, ct);
    }

    public static string Badge(string state) => state switch
    {
        "completed" or "normalized" => "badge--success",
        "failed" or "refused" => "badge--critical",
        "running" or "stored_raw" => "badge--info",
        _ => "badge--neutral",
    };
}
