using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
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

    public sealed record ShopView(string Domain, string Scopes, DateTimeOffset? InstalledAt, DateTimeOffset? AccessTokenExpiresAt,
        int Orders, int Products, int Customers);
    public sealed record OrderView(Order Order, List<OrderLine> Lines, List<Refund> Refunds);
}
