using System.Buffers;
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

    /// <summary>A token issued at <paramref name="now"/> (an answer's items share one reading of the clock).</summary>
    public string Issue(string shop, string requestId, string? visitorHash, long? customerId, long productId, DateTimeOffset now)
    {
        var at = now.ToUnixTimeSeconds();
        Span<byte> mac = stackalloc byte[ShopifyHmac.AppMacBytes];
        Span<byte> buffer = stackalloc byte[512];
        var message = Message(buffer, shop, requestId, visitorHash, customerId, productId, at, out var rented);
        try { hmac.SignAppToken(Purpose, message, mac); }
        finally { if (rented is not null) ArrayPool<byte>.Shared.Return(rented); }
        Span<char> token = stackalloc char[64];
        at.TryFormat(token, out var n, default, CultureInfo.InvariantCulture);
        token[n++] = '.';
        n += Base64Url.EncodeToChars(mac, token[n..]);
        return new string(token[..n]);
    }

    private static readonly long LatestTime = DateTimeOffset.MaxValue.ToUnixTimeSeconds();

    public bool Verify(string? token, string shop, string requestId, string? visitorHash, long? customerId, long productId)
    {
        if (string.IsNullOrEmpty(token) || token.Length > 64) return false;
        var dot = token.IndexOf('.');
        // A time past any date is refused with the forgeries (until 7 Dec 2026 reading it as a date failed the request, 500).
        if (dot <= 0 || !long.TryParse(token.AsSpan(0, dot), NumberStyles.None, CultureInfo.InvariantCulture, out var at) || at > LatestTime) return false;
        var age = clock.GetUtcNow() - DateTimeOffset.FromUnixTimeSeconds(at);
        if (age > options.Value.EventWindow || age < -shopify.Value.ClockSkew) return false;
        Span<byte> mac = stackalloc byte[32];
        if (!Base64Url.TryDecodeFromChars(token.AsSpan(dot + 1), mac, out var n) || n != ShopifyHmac.AppMacBytes) return false;
        Span<byte> buffer = stackalloc byte[512];
        var message = Message(buffer, shop, requestId, visitorHash, customerId, productId, at, out var rented);
        try { return hmac.VerifyAppToken(Purpose, message, mac[..ShopifyHmac.AppMacBytes]); }
        finally { if (rented is not null) ArrayPool<byte>.Shared.Return(rented); }
    }

    /// <summary>When a token <see cref="Verify"/> accepted was issued (to the second).</summary>
    public static DateTimeOffset IssuedAt(string token) =>
        DateTimeOffset.FromUnixTimeSeconds(long.Parse(token.AsSpan(0, token.IndexOf('.')), NumberStyles.None, CultureInfo.InvariantCulture));

    /// <summary>The signed message, shop\nrequest\nvisitor\ncustomer\nproduct\nat in UTF-8: in <paramref name="buffer"/>, or in a rented array when it
    /// does not fit (returned to the pool by the caller).</summary>
    private static ReadOnlySpan<byte> Message(Span<byte> buffer, string shop, string requestId, string? visitorHash, long? customerId, long productId, long at,
        out byte[]? rented)
    {
        rented = null;
        var needed = System.Text.Encoding.UTF8.GetMaxByteCount(shop.Length + requestId.Length + (visitorHash?.Length ?? 0) + 3 * 20 + 5);
        if (needed > buffer.Length) buffer = rented = ArrayPool<byte>.Shared.Rent(needed);
        if (!System.Text.Unicode.Utf8.TryWrite(buffer, CultureInfo.InvariantCulture, $"{shop}\n{requestId}\n{visitorHash}\n{customerId}\n{productId}\n{at}", out var written))
            throw new InvalidOperationException("a decision token's message did not fit its buffer"); // never sign a partial message
        return buffer[..written];
    }
}
