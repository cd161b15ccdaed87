using System.Security.Claims;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Options;

namespace PluginApp.Install;

/// <summary>Authenticates /admin and /api/admin requests by their App Bridge session token.</summary>
public sealed class SessionTokenAuthenticationHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> options, ILoggerFactory logger, UrlEncoder encoder, SessionTokenValidator validator)
    : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    public const string SchemeName = "ShopifySessionToken";
    public const string ShopClaim = "shop";
    internal const string RawTokenItem = "shopify.session_token";
    internal const string IssuedAtItem = "shopify.session_token_issued_at";

    protected override async Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        var header = Request.Headers.Authorization.ToString();
        // Why only documents take id_token from the query: a token in an API URL ends up in logs, history and Referer headers.
        var jwt = header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) ? header["Bearer ".Length..].Trim()
            : IsDocument(Request) ? Request.Query["id_token"].ToString() : null;
        if (string.IsNullOrEmpty(jwt)) return AuthenticateResult.NoResult();
        var (token, error) = await validator.ValidateAsync(jwt);
        if (token is null) return AuthenticateResult.Fail(error!);
        Context.Items[RawTokenItem] = token.Raw;
        Context.Items[IssuedAtItem] = token.IssuedAt;
        var identity = new ClaimsIdentity([new Claim(ShopClaim, token.Shop), new Claim(ClaimTypes.NameIdentifier, token.UserId ?? "")], SchemeName);
        return AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(identity), SchemeName));
    }

    /// <summary>A full page load of the embedded admin (App Bridge passes a fresh token as id_token); never the JSON API.</summary>
    private static bool IsDocument(HttpRequest r) =>
        HttpMethods.IsGet(r.Method) && !r.Path.StartsWithSegments("/api", StringComparison.OrdinalIgnoreCase);

    protected override Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        // A page load without a valid token is bounced to App Bridge for a fresh one, as Shopify's own libraries do.
        if (IsDocument(Request) && Request.Headers.Authorization.Count == 0 && SessionTokenBounce.RedirectFor(Request) is { } bounce)
        {
            Response.Redirect(bounce);
            return Task.CompletedTask;
        }
        // App Bridge retries once with a fresh token when it sees this header.
        Response.StatusCode = StatusCodes.Status401Unauthorized;
        Response.Headers["X-Shopify-Retry-Invalid-Session-Request"] = "1";
        return Task.CompletedTask;
    }
}
