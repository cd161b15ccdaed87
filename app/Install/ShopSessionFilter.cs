using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.Filters;
using Microsoft.EntityFrameworkCore;
using PluginApp.Data;
using PluginApp.StoreData;

namespace PluginApp.Install;

/// <summary>
/// After the session token is validated: make sure we hold an offline token for its shop (token exchange on the first
/// embedded load) and scope the request's data access to that shop. The admin API's route group and every admin page
/// run it, through the two filters below.
/// </summary>
public sealed class ShopSession(AppDbContext db, ShopScope scope, ShopifyTokenClient tokens, ShopInstaller installer, TimeProvider clock,
    ShopSession.SessionsNoted sessions, ILogger<ShopSession> logger)
{
    /// <summary>
    /// When this instance last noted a session of each shop (<c>session_seen_at</c>). A singleton, not a static: two hosts
    /// in one process (the tests' fixtures, each with its own database and so the same shop ids) shared one, and a shop of
    /// one database was taken as noted from another's (the CI run of 7 Dec 2026 failed on it).
    /// </summary>
    public sealed class SessionsNoted
    {
        internal System.Collections.Concurrent.ConcurrentDictionary<long, DateTimeOffset> Shops { get; } = new();
    }

    /// <summary>Null when the request may go on (its shop is entered in <see cref="ShopScope"/>); otherwise the answer to give instead.</summary>
    public async Task<IResult?> EnterAsync(HttpContext http)
    {
        var domain = http.User.FindFirst(SessionTokenAuthenticationHandler.ShopClaim)?.Value;
        if (domain is null) return TypedResults.Unauthorized();

        var shop = await db.Shops.AsNoTracking().Where(s => s.Domain == domain).Where(ShopStatus.IsInstalled)
            .Select(s => new { s.Id, s.AccessTokenEnc, s.TokenRevokedAt, s.AccessTokenExpiresAt, s.RefreshTokenEnc, s.RefreshTokenExpiresAt })
            .FirstOrDefaultAsync(http.RequestAborted);
        var now = clock.GetUtcNow();
        long shopId;
        // A stored token that cannot be used any more (Shopify revoked it; or it expired with no refresh token still valid, as
        // after 90 days without a call) is exchanged anew too: the merchant opening the app is what every "not connected"
        // call waits for, and without this only an uninstall and reinstall brought the shop back.
        // Revoked, or an uninstall triggered since its grant waits for its check: installed again, or soon to be found gone.
        var reinstalled = shop is not null && (shop.TokenRevokedAt is not null || await UninstallTriggeredSinceGrantAsync(shop.Id, http.RequestAborted));
        if (shop is null || shop.AccessTokenEnc is null || reinstalled
            || (shop.AccessTokenExpiresAt <= now && (shop.RefreshTokenEnc is null || shop.RefreshTokenExpiresAt <= now)))
        {
            if (http.Items[SessionTokenAuthenticationHandler.RawTokenItem] is not string rawToken)
                return TypedResults.Problem(title: "Shop not installed yet", detail: $"{domain} has no offline token yet.", statusCode: 503);
            try
            {
                var grant = await tokens.ExchangeSessionTokenAsync(domain, rawToken, http.RequestAborted);
                // A shop installed again is set up again, though it still reads as installed (its uninstall not yet acted on):
                // Shopify dropped the app's metafields, so blocks of features switched off show again until set up. Until
                // 8 Dec 2026 only a shop read as uninstalled was.
                shopId = await installer.InstallAsync(domain, grant, http.RequestAborted, setUpAgain: reinstalled);
            }
            catch (TokenEndpointException e)
            {
                logger.LogWarning("Token exchange for {Shop} failed: {Message}", domain, e.Message);
                http.Response.Headers["X-Shopify-Retry-Invalid-Session-Request"] = "1";
                return TypedResults.Unauthorized();
            }
        }
        else
        {
            shopId = shop.Id;
            // Noted once a minute at most (each instance remembers what it noted, so most requests write nothing): a session
            // issued after an uninstall Shopify delivers late says the merchant installed again since (migration 0097;
            // WebhookIngestor.Uninstall, ComplianceService.AddShopRedaction).
            if (http.Items[SessionTokenAuthenticationHandler.IssuedAtItem] is DateTimeOffset issued
                && (!sessions.Shops.TryGetValue(shopId, out var noted) || issued - noted >= TimeSpan.FromMinutes(1)))
            {
                await db.Database.ExecuteSqlAsync($"""
                    UPDATE shops SET session_seen_at = {issued}
                    WHERE id = {shopId} AND (session_seen_at IS NULL OR session_seen_at < {issued} - interval '1 minute')
                    """, http.RequestAborted);
                sessions.Shops[shopId] = issued;
            }
        }

        scope.Enter(shopId, domain);
        return null;
    }

    /// <summary>
    /// An app/uninstalled triggered after the shop's token was granted waits for its check (a minute, or hours while Shopify
    /// retries its delivery): Shopify revoked that token at the uninstall, though the shop still reads as installed. A
    /// merchant opening the app now has installed it again, so the token is exchanged anew. Why: without it the reinstalled
    /// shop kept the dead token, the check then found it refused and uninstalled the shop, and 48 hours later shop/redact
    /// erased the store of a merchant using the app (until 7 Dec 2026). Once exchanged, the grant is newer than the uninstall,
    /// so this asks no more, and the check finds the new token accepted.
    /// </summary>
    private async Task<bool> UninstallTriggeredSinceGrantAsync(long shopId, CancellationToken ct) =>
        await db.Database.SqlQuery<bool>($"""
            SELECT EXISTS (SELECT 1 FROM shop_token_checks c JOIN shops s ON s.id = c.shop_id
                           WHERE c.shop_id = {shopId} AND c.topic = {Webhooks.WebhookTopics.AppUninstalled}
                             AND (s.granted_at IS NULL OR s.granted_at <= c.triggered_at)) AS "Value"
            """).SingleAsync(ct);
}

/// <summary>The shop session for the admin API's route group.</summary>
public sealed class ShopSessionFilter(ShopSession session) : IEndpointFilter
{
    public async ValueTask<object?> InvokeAsync(EndpointFilterInvocationContext context, EndpointFilterDelegate next) =>
        await session.EnterAsync(context.HttpContext) ?? await next(context);
}

/// <summary>The shop session for every admin page (Razor Pages run page filters, not endpoint filters).</summary>
public sealed class ShopSessionPageFilter(ShopSession session) : IAsyncPageFilter
{
    public Task OnPageHandlerSelectionAsync(PageHandlerSelectedContext context) => Task.CompletedTask;

    public async Task OnPageHandlerExecutionAsync(PageHandlerExecutingContext context, PageHandlerExecutionDelegate next)
    {
        if (await session.EnterAsync(context.HttpContext) is { } refusal) context.Result = new HttpResultAction(refusal);
        else await next();
    }

    private sealed class HttpResultAction(IResult result) : IActionResult
    {
        public Task ExecuteResultAsync(ActionContext context) => result.ExecuteAsync(context.HttpContext);
    }
}
