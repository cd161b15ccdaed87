using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Primitives;

namespace PluginApp.Shopify;

/// <summary>
/// Every signature Shopify puts on what it sends us, checked in constant time with the current secret and, during a
/// rotation, the previous one until Shopify:PreviousClientSecretExpiresAt; and the app's own tokens (handed to the
/// storefront and checked when they come back), keyed by a key derived from the same secrets.
/// </summary>
public sealed class ShopifyHmac(IOptions<ShopifyOptions> options, TimeProvider clock)
{
    /// <summary>The secrets that sign now: the current one, and the previous one until its expiry.</summary>
    public IEnumerable<byte[]> Keys()
    {
        var o = options.Value;
        yield return Encoding.UTF8.GetBytes(o.ClientSecret);
        if (!string.IsNullOrEmpty(o.PreviousClientSecret) && o.PreviousClientSecretExpiresAt is { } until && clock.GetUtcNow() < until)
            yield return Encoding.UTF8.GetBytes(o.PreviousClientSecret);
    }

    /// <summary>An app-issued token over the message: 16 bytes of HMAC with a key derived for that purpose (never the raw secret).</summary>
    public byte[] SignAppToken(string purpose, string message) => AppMac(Keys().First(), purpose, message);

    public bool VerifyAppToken(string purpose, string message, ReadOnlySpan<byte> mac)
    {
        foreach (var key in Keys())
            if (CryptographicOperations.FixedTimeEquals(AppMac(key, purpose, message), mac)) return true;
        return false;
    }

    private static byte[] AppMac(byte[] secret, string purpose, string message)
    {
        var key = HKDF.DeriveKey(HashAlgorithmName.SHA256, secret, 32, info: Encoding.UTF8.GetBytes("pluginapp/" + purpose));
        return HMACSHA256.HashData(key, Encoding.UTF8.GetBytes(message))[..16];
    }

    /// <summary>Webhooks: base64 HMAC-SHA256 of the raw body.</summary>
    public bool VerifyWebhook(ReadOnlySpan<byte> body, string? base64Header)
    {
        Span<byte> given = stackalloc byte[32];
        if (string.IsNullOrEmpty(base64Header) || !Convert.TryFromBase64String(base64Header, given, out var n) || n != 32)
            return false;
        Span<byte> mac = stackalloc byte[32];
        foreach (var key in Keys())
        {
            HMACSHA256.HashData(key, body, mac);
            if (CryptographicOperations.FixedTimeEquals(mac, given)) return true;
        }
        return false;
    }

    /// <summary>OAuth callback and admin app-load URLs: hex HMAC of the sorted, form-encoded query without hmac/signature.</summary>
    public bool VerifyAdminQuery(IEnumerable<KeyValuePair<string, StringValues>> query)
    {
        var pairs = query.ToList();
        return VerifyHex(AdminMessage(pairs), pairs.FirstOrDefault(p => p.Key == "hmac").Value.ToString());
    }

    /// <summary>App proxy: hex HMAC of key=value pairs (repeats joined by commas), sorted, unencoded, no separator.</summary>
    public bool VerifyProxyQuery(IEnumerable<KeyValuePair<string, StringValues>> query)
    {
        var pairs = query.ToList();
        return VerifyHex(ProxyMessage(pairs), pairs.FirstOrDefault(p => p.Key == "signature").Value.ToString());
    }

    public static string AdminMessage(IEnumerable<KeyValuePair<string, StringValues>> pairs) => string.Join('&', pairs
        .Where(p => p.Key is not ("hmac" or "signature"))
        .OrderBy(p => p.Key, StringComparer.Ordinal)
        .Select(p => $"{Uri.EscapeDataString(p.Key)}={Uri.EscapeDataString(string.Join(',', p.Value.ToArray()))}"));

    public static string ProxyMessage(IEnumerable<KeyValuePair<string, StringValues>> pairs) => string.Concat(pairs
        .Where(p => p.Key is not ("signature" or "hmac"))
        .OrderBy(p => p.Key, StringComparer.Ordinal)
        .Select(p => $"{p.Key}={string.Join(',', p.Value.ToArray())}"));

    private bool VerifyHex(string message, string? givenHex)
    {
        if (string.IsNullOrEmpty(givenHex) || givenHex.Length != 64) return false;
        byte[] given;
        try { given = Convert.FromHexString(givenHex); }
        catch (FormatException) { return false; }
        var msg = Encoding.UTF8.GetBytes(message);
        foreach (var key in Keys())
            if (CryptographicOperations.FixedTimeEquals(HMACSHA256.HashData(key, msg), given)) return true;
        return false;
    }
}
