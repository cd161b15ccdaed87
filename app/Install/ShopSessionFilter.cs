using Microsoft.AspNetCore.Http.HttpResults;
using PluginApp.Data;
using Microsoft.EntityFrameworkCore;
using PluginApp.StoreData;

namespace PluginApp.Install;

/// <summary>
/// After the session token is validated: make sure we hold an offline token for its shop (token
/// exchange on the first embedded load) and scope the request's data access to that shop.
/// </summary>
public sealed class ShopSessionFilter(AppDbContext db, ShopScope scope, ShopifyTokenClient tokens, ShopInstaller installer,
    ILogger<ShopSessionFilter> logger) : IEndpointFilter
{
    public async ValueTask<object?> InvokeAsync(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        var http = context.HttpContext;
        var domain = http.User.FindFirst(SessionTokenAuthenticationHandler.ShopClaim)?.Value;
        if (domain is null) return TypedResults.Unauthorized();

        var shop = await db.Shops.AsNoTracking().Where(s => s.Domain == domain).Where(ShopStatus.IsInstalled)
            .Select(s => new { s.Id, s.AccessTokenEnc }).FirstOrDefaultAsync(http.RequestAborted);
        long shopId;
        if (shop is null || shop.AccessTokenEnc is null)
        {
            if (http.Items[SessionTokenAuthenticationHandler.RawTokenItem] is not string rawToken)
                return TypedResults.Problem(title: "Shop not installed yet", detail: $"{domain} has no offline token yet.", statusCode: 503);
            try
            {
                var grant = await tokens.ExchangeSessionTokenAsync(domain, rawToken, http.RequestAborted);
                shopId = await installer.InstallAsync(domain, grant, http.RequestAborted);
            }
            catch (TokenEndpointException e)
            {
                logger.LogWarning("Token exchange for {Shop} failed: {Message}", domain, e.Message);
                http.Response.Headers["X-Shopify-Retry-Invalid-Session-Request"] = "1";
                return TypedResults.Unauthorized();
            }
        }
        else shopId = shop.Id;

        scope.Enter(shopId, domain);
        return await next(context);
    }
}
