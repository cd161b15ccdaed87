using System.Buffers.Text;
using System.Globalization;
using Microsoft.Extensions.Options;
using PluginApp.Shopify;

namespace PluginApp.Recommendations;

/// <summary>
/// Each recommended item carries a token proving we served that product, in that answer, to that visitor of that shop,
/// at that time. The storefront sends it back with its events; an event without a valid, recent token is refused, so
/// nobody can feed the training signals or the lift figures with events for answers we never gave.
/// Format: "{unix seconds}.{base64url 16-byte MAC}".
/// </summary>
public sealed class DecisionTokens(ShopifyHmac hmac, IOptions<RecommendationOptions> options, IOptions<ShopifyOptions> shopify, TimeProvider clock)
{
    private const string Purpose = "decision-token/v1";

    public string Issue(string shop, string requestId, string? visitorHash, long? customerId, long productId)
    {
        var at = clock.GetUtcNow().ToUnixTimeSeconds();
        return at.ToString(CultureInfo.InvariantCulture) + "." + Base64Url.EncodeToString(hmac.SignAppToken(Purpose, Message(shop, requestId, visitorHash, customerId, productId, at)));
    }

    public bool Verify(string? token, string shop, string requestId, string? visitorHash, long? customerId, long productId)
    {
        if (string.IsNullOrEmpty(token) || token.Length > 64) return false;
        var dot = token.IndexOf('.');
        if (dot <= 0 || !long.TryParse(token.AsSpan(0, dot), NumberStyles.None, CultureInfo.InvariantCulture, out var at)) return false;
        var age = clock.GetUtcNow() - DateTimeOffset.FromUnixTimeSeconds(at);
        if (age > options.Value.EventWindow || age < -shopify.Value.ClockSkew) return false;
        Span<byte> mac = stackalloc byte[32];
        if (!Base64Url.TryDecodeFromChars(token.AsSpan(dot + 1), mac, out var n) || n != 16) return false;
        return hmac.VerifyAppToken(Purpose, Message(shop, requestId, visitorHash, customerId, productId, at), mac[..16]);
    }

    private static string Message(string shop, string requestId, string? visitorHash, long? customerId, long productId, long at) =>
        string.Join('\n', shop, requestId, visitorHash ?? "", customerId?.ToString(CultureInfo.InvariantCulture) ?? "",
            productId.ToString(CultureInfo.InvariantCulture), at.ToString(CultureInfo.InvariantCulture));
}
