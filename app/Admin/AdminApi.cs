using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using Npgsql;
using PluginApp.Data;
using PluginApp.Install;
using PluginApp.StoreData;

namespace PluginApp.Admin;

/// <summary>
/// JSON the embedded admin reads. Every route is behind the session token and the shop filter, and
/// every query goes through the shop-filtered context: another shop's ids answer 404.
/// </summary>
public static class AdminApi
{
    public static RouteGroupBuilder MapAdminApi(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api/admin")
            .RequireAuthorization(InstallExtensions.AdminPolicy)
            .AddEndpointFilter<ShopSessionFilter>();
        api.MapGet("/shop", GetShopAsync);
        api.MapGet("/orders", ListOrdersAsync);
        api.MapGet("/orders/{id:long}", GetOrderAsync);
        api.MapGet("/customers/{id:long}", GetCustomerAsync);
        api.MapGet("/products", ListProductsAsync);
        api.MapGet("/data-requests", ListDataRequestsAsync);
        api.MapGet("/webhooks", ListDeliveriesAsync);
        api.MapGet("/backfill", ListBackfillRunsAsync);
        api.MapGet("/outbox", ListOutboxAsync);
        return api;
    }

    private static async Task<Ok<ShopView>> GetShopAsync(AppDbContext db, ShopScope scope, CancellationToken ct)
    {
        var s = await db.Shops.AsNoTracking().SingleAsync(x => x.Id == scope.ShopId, ct);
        return TypedResults.Ok(new ShopView(s.Domain, s.Scopes, s.InstalledAt, s.AccessTokenExpiresAt,
            await db.Orders.CountAsync(ct), await db.Products.CountAsync(ct), await db.Customers.CountAsync(ct)));
    }

    private static async Task<Ok<List<Order>>> ListOrdersAsync(AppDbContext db, int? limit, CancellationToken ct) =>
        TypedResults.Ok(await db.Orders.AsNoTracking().OrderByDescending(o => o.CreatedAt).Take(Math.Clamp(limit ?? 50, 1, 250)).ToListAsync(ct));

    private static async Task<Results<Ok<OrderView>, NotFound>> GetOrderAsync(long id, AppDbContext db, CancellationToken ct)
    {
        var order = await db.Orders.AsNoTracking().SingleOrDefaultAsync(o => o.Id == id, ct);
        if (order is null) return TypedResults.NotFound();
        var lines = await db.OrderLines.AsNoTracking().Where(l => l.OrderId == id).OrderBy(l => l.Id).ToListAsync(ct);
        var refunds = await db.Refunds.AsNoTracking().Where(r => r.OrderId == id).ToListAsync(ct);
        return TypedResults.Ok(new OrderView(order, lines, refunds));
    }

    private static async Task<Results<Ok<Customer>, NotFound>> GetCustomerAsync(long id, AppDbContext db, CancellationToken ct) =>
        await db.Customers.AsNoTracking().SingleOrDefaultAsync(c => c.Id == id, ct) is { } c ? TypedResults.Ok(c) : TypedResults.NotFound();

    private static async Task<Ok<List<Product>>> ListProductsAsync(AppDbContext db, int? limit, CancellationToken ct) =>
        TypedResults.Ok(await db.Products.AsNoTracking().Where(p => p.DeletedAt == null).OrderBy(p => p.Title)
            .Take(Math.Clamp(limit ?? 50, 1, 250)).ToListAsync(ct));

    private static async Task<Ok<List<CustomerDataRequest>>> ListDataRequestsAsync(AppDbContext db, CancellationToken ct) =>
        TypedResults.Ok(await db.CustomerDataRequests.AsNoTracking().OrderByDescending(r => r.RequestedAt).Take(100).ToListAsync(ct));

    private static async Task<Ok<List<DeliveryView>>> ListDeliveriesAsync(AppDbContext db, CancellationToken ct) =>
        TypedResults.Ok(await db.WebhookDeliveries.AsNoTracking().OrderByDescending(d => d.Id).Take(100)
            .Select(d => new DeliveryView(d.DeliveryId, d.Topic, d.Outcome, d.ReceivedAt)).ToListAsync(ct));

    private static async Task<Ok<List<BackfillRunView>>> ListBackfillRunsAsync(NpgsqlDataSource db, ShopScope scope, CancellationToken ct)
    {
        await using var cmd = db.CreateCommand("""
            SELECT state, phase, rows_done, started_at, finished_at, error FROM backfill_runs WHERE shop_id = $1 ORDER BY id DESC LIMIT 20
            """);
        cmd.Parameters.AddWithValue(scope.ShopId);
        var list = new List<BackfillRunView>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
            list.Add(new BackfillRunView(r.GetString(0), r.IsDBNull(1) ? null : r.GetString(1), r.GetInt64(2),
                r.GetFieldValue<DateTimeOffset>(3), r.IsDBNull(4) ? null : r.GetFieldValue<DateTimeOffset>(4), r.IsDBNull(5) ? null : r.GetString(5)));
        return TypedResults.Ok(list);
    }

    /// <summary>Calls to Shopify: state=failed lists those that failed for good, state=pending those still to go.</summary>
    private static async Task<Ok<List<OutboxView>>> ListOutboxAsync(NpgsqlDataSource db, ShopScope scope, string? state, CancellationToken ct)
    {
        var filter = state switch
        {
            "failed" => "failed_at IS NOT NULL",
            "pending" => "completed_at IS NULL AND failed_at IS NULL",
            _ => "true",
        };
        await using var cmd = db.CreateCommand($"""
            SELECT id, resource_key, operation, attempts, last_error, created_at, completed_at, failed_at
            FROM outbox_messages WHERE shop_id = $1 AND {filter} ORDER BY id DESC LIMIT 100
            """);
        cmd.Parameters.AddWithValue(scope.ShopId);
        var list = new List<OutboxView>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
            list.Add(new OutboxView(r.GetInt64(0), r.GetString(1), r.GetString(2), r.GetInt32(3), r.IsDBNull(4) ? null : r.GetString(4),
                r.GetFieldValue<DateTimeOffset>(5), r.IsDBNull(6) ? null : r.GetFieldValue<DateTimeOffset>(6), r.IsDBNull(7) ? null : r.GetFieldValue<DateTimeOffset>(7)));
        return TypedResults.Ok(list);
    }

    public sealed record BackfillRunView(string State, string? Phase, long RowsDone, DateTimeOffset StartedAt, DateTimeOffset? FinishedAt, string? Error);
    public sealed record OutboxView(long Id, string ResourceKey, string Operation, int Attempts, string? LastError,
        DateTimeOffset CreatedAt, DateTimeOffset? CompletedAt, DateTimeOffset? FailedAt);

    public sealed record ShopView(string Domain, string Scopes, DateTimeOffset? InstalledAt, DateTimeOffset? AccessTokenExpiresAt,
        int Orders, int Products, int Customers);
    public sealed record OrderView(Order Order, List<OrderLine> Lines, List<Refund> Refunds);
    public sealed record DeliveryView(string DeliveryId, string Topic, string Outcome, DateTimeOffset ReceivedAt);
}
