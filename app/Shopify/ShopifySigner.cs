using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Primitives;

namespace PluginApp.Shopify;

/// <summary>
/// Signs what Shopify signs, exactly as Shopify does, with a given secret: the one signer for everything that plays
/// Shopify (the demo's app-proxy stand-in, the tests, the load generator, the replay). <see cref="ShopifyHmac"/> verifies
/// with the same message builders.
/// </summary>
public static class ShopifySigner
{
    /// <summary>X-Shopify-Hmac-Sha256 of a webhook: base64 HMAC-SHA256 of the raw body.</summary>
    public static string Webhook(string secret, ReadOnlySpan<byte> body) =>
        Convert.ToBase64String(HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), body));

    /// <summary>
    /// An app-proxy request as Shopify forwards it: the caller's parameters plus shop, logged_in_customer_id (empty when
    /// nobody is logged in, still signed), path_prefix and timestamp, then signature. Returns the query string (no '?').
    /// </summary>
    public static string ProxyQuery(string secret, string shop, IEnumerable<KeyValuePair<string, string>> parameters, DateTimeOffset now,
        string loggedInCustomerId = "", string pathPrefix = "/apps/pluginapp")
    {
        var pairs = parameters.Where(p => p.Key is not ("shop" or "logged_in_customer_id" or "path_prefix" or "timestamp" or "signature" or "hmac"))
            .Select(p => new KeyValuePair<string, StringValues>(p.Key, p.Value)).ToList();
        pairs.Add(new("shop", shop));
        pairs.Add(new("logged_in_customer_id", loggedInCustomerId));
        pairs.Add(new("path_prefix", pathPrefix));
        pairs.Add(new("timestamp", now.ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture)));
        var signature = Hex(secret, ShopifyHmac.ProxyMessage(pairs));
        return string.Join('&', pairs.Append(new("signature", signature))
            .Select(p => $"{Uri.EscapeDataString(p.Key)}={Uri.EscapeDataString(p.Value.ToString())}"));
    }

    /// <summary>An OAuth callback or admin app-load query: the parameters and their hex HMAC. Returns the query string (no '?').</summary>
    public static string AdminQuery(string secret, IEnumerable<KeyValuePair<string, string>> parameters)
    {
        var message = ShopifyHmac.AdminMessage(parameters.Select(p => new KeyValuePair<string, StringValues>(p.Key, p.Value)));
        return message + "&hmac=" + Hex(secret, message);
    }

    /// <summary>
    /// An App Bridge session token (HS256) as Shopify mints it. The demo mints one for its own install; tests mint valid
    /// ones and, through the optional claims, every kind of invalid one.
    /// </summary>
    public static string SessionToken(string secret, string shop, string clientId, DateTimeOffset now, TimeSpan? lifetime = null,
        string? dest = null, string? iss = null, string alg = "HS256", bool withNbf = true, string userId = "42")
    {
        var payload = new Dictionary<string, object>
        {
            ["iss"] = iss ?? $"https://{shop}/admin",
            ["dest"] = dest ?? $"https://{shop}",
            ["aud"] = clientId,
            ["sub"] = userId,
            ["exp"] = (now + (lifetime ?? TimeSpan.FromMinutes(1))).ToUnixTimeSeconds(),
            ["nbf"] = now.AddSeconds(-5).ToUnixTimeSeconds(),
            ["iat"] = now.AddSeconds(-5).ToUnixTimeSeconds(),
            ["jti"] = Guid.NewGuid().ToString(),
            ["sid"] = "session-" + userId,
        };
        if (!withNbf) payload.Remove("nbf");
        var head = Base64Url(JsonSerializer.SerializeToUtf8Bytes(new { alg, typ = "JWT" })) + "." + Base64Url(JsonSerializer.SerializeToUtf8Bytes(payload));
        return head + "." + Base64Url(HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), Encoding.ASCII.GetBytes(head)));
    }

    internal static string Hex(string secret, string message) =>
        Convert.ToHexStringLower(HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), Encoding.UTF8.GetBytes(message)));

    private static string Base64Url(byte[] bytes) => System.Buffers.Text.Base64Url.EncodeToString(bytes);
}
