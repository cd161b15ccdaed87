using System.Text;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using PluginApp.Shopify;

namespace PluginApp.Install;

/// <param name="IssuedAt">When Shopify issued it (its nbf): the app was installed then.</param>
public sealed record SessionToken(string Shop, string? UserId, string Raw, DateTimeOffset IssuedAt);

/// <summary>
/// App Bridge session tokens: HS256 over the client secret (or the previous one until it expires), aud = client id,
/// dest = the shop, iss = exactly https://{dest host}/admin, exp and nbf both required, with 10 s leeway (as Shopify's
/// own libraries allow).
/// </summary>
public sealed class SessionTokenValidator(IOptions<ShopifyOptions> options, ShopifyHmac secrets, TimeProvider clock)
{
    public static readonly TimeSpan Leeway = TimeSpan.FromSeconds(10);
    private static readonly JsonWebTokenHandler Handler = new() { MapInboundClaims = false };

    /// <returns>The token's shop, or the reason it is refused.</returns>
    public async Task<(SessionToken? Token, string? Error)> ValidateAsync(string? jwt)
    {
        if (string.IsNullOrEmpty(jwt)) return (null, "no session token");
        var o = options.Value;
        var keys = secrets.Keys().Select(k => (SecurityKey)new SymmetricSecurityKey(k)).ToList();

        var result = await Handler.ValidateTokenAsync(jwt, new TokenValidationParameters
        {
            ValidAlgorithms = [SecurityAlgorithms.HmacSha256],
            IssuerSigningKeys = keys,
            ValidateIssuerSigningKey = true,
            ValidAudience = o.ClientId,
            ValidateAudience = true,
            ValidateIssuer = false,   // checked below against dest
            ValidateLifetime = false, // checked below against the injected clock
            RequireExpirationTime = true,
            RequireSignedTokens = true,
        });
        if (!result.IsValid) return (null, $"invalid session token ({result.Exception?.GetType().Name ?? "rejected"})");

        var token = (JsonWebToken)result.SecurityToken;
        var now = clock.GetUtcNow();
        if (!token.TryGetPayloadValue<long>("exp", out var exp) || DateTimeOffset.FromUnixTimeSeconds(exp) + Leeway < now)
            return (null, "session token expired");
        if (!token.TryGetPayloadValue<long>("nbf", out var nbf)) return (null, "session token has no nbf");
        if (DateTimeOffset.FromUnixTimeSeconds(nbf) - Leeway > now) return (null, "session token not yet valid");
        if (!token.TryGetPayloadValue<string>("dest", out var dest) || !Uri.TryCreate(dest, UriKind.Absolute, out var destUri)
            || destUri.Scheme != "https" || !ShopDomain.TryNormalize(destUri.Host, out var shop))
            return (null, "session token dest is not a shop");
        if (!token.TryGetPayloadValue<string>("iss", out var iss) || !string.Equals(iss, $"https://{shop}/admin", StringComparison.Ordinal))
            return (null, "session token iss is not the shop's admin");
        token.TryGetPayloadValue<string>("sub", out var sub);
        return (new SessionToken(shop, sub, jwt, DateTimeOffset.FromUnixTimeSeconds(nbf)), null);
    }
}
