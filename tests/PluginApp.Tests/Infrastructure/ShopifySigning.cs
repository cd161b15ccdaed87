using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace PluginApp.Tests.Infrastructure;

/// <summary>What Shopify signs, signed the way Shopify signs it, for tests.</summary>
public static class ShopifySigning
{
    public static string SessionToken(string secret, string shop, string audience, DateTimeOffset now,
        TimeSpan? expiresIn = null, string? dest = null, string? iss = null, string alg = "HS256", bool withNbf = true)
    {
        var header = new { alg, typ = "JWT" };
        var payload = new Dictionary<string, object>
        {
            ["iss"] = iss ?? $"https://{shop}/admin",
            ["dest"] = dest ?? $"https://{shop}",
            ["aud"] = audience,
            ["sub"] = "42",
            ["exp"] = (now + (expiresIn ?? TimeSpan.FromMinutes(1))).ToUnixTimeSeconds(),
            ["nbf"] = now.AddSeconds(-5).ToUnixTimeSeconds(),
            ["iat"] = now.AddSeconds(-5).ToUnixTimeSeconds(),
            ["jti"] = Guid.NewGuid().ToString(),
            ["sid"] = "session-1",
        };
        if (!withNbf) payload.Remove("nbf");
        var head = B64(JsonSerializer.SerializeToUtf8Bytes(header)) + "." + B64(JsonSerializer.SerializeToUtf8Bytes(payload));
        var sig = HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), Encoding.ASCII.GetBytes(head));
        return head + "." + B64(sig);
    }

    /// <summary>The query Shopify sends to /auth/callback, with its hex HMAC.</summary>
    public static string OAuthCallbackQuery(string secret, IDictionary<string, string> parameters)
    {
        var message = string.Join('&', parameters.OrderBy(p => p.Key, StringComparer.Ordinal)
            .Select(p => $"{Uri.EscapeDataString(p.Key)}={Uri.EscapeDataString(p.Value)}"));
        var hmac = Convert.ToHexStringLower(HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), Encoding.UTF8.GetBytes(message)));
        return message + "&hmac=" + hmac;
    }

    public static string WebhookHmac(string secret, byte[] body) =>
        Convert.ToBase64String(HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), body));

    private static string B64(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');
}
