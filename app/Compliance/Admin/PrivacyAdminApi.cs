using System.Text;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using PluginApp.Data;
using PluginApp.StoreData;

namespace PluginApp.Compliance;

/// <summary>The customer data requests Shopify forwarded, with the export made for each, for the merchant to send on.</summary>
public static class PrivacyAdminApi
{
    public static RouteGroupBuilder MapPrivacyAdmin(this RouteGroupBuilder api)
    {
        api.MapGet("/data-requests", ListAsync);
        api.MapGet("/data-requests/{id:long}/export", ExportAsync);
        return api;
    }

    private static async Task<Ok<List<CustomerDataRequest>>> ListAsync(AppDbContext db, CancellationToken ct) =>
        TypedResults.Ok(await db.CustomerDataRequests.AsNoTracking().OrderByDescending(r => r.RequestedAt).Take(100).ToListAsync(ct));

    /// <summary>One request's export as a JSON file; another shop's id is 404 (the context is filtered by shop).</summary>
    private static async Task<Results<FileContentHttpResult, NotFound>> ExportAsync(long id, AppDbContext db, CancellationToken ct)
    {
        var request = await db.CustomerDataRequests.AsNoTracking().SingleOrDefaultAsync(r => r.Id == id, ct);
        if (request is null) return TypedResults.NotFound();
        return TypedResults.File(Encoding.UTF8.GetBytes(request.Export), "application/json",
            $"customer-{request.CustomerId}-data-request-{request.Id}.json");
    }
}
