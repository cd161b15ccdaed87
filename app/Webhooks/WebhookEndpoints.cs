using System.Buffers;
using System.Globalization;
using Microsoft.AspNetCore.Http.HttpResults;
using PluginApp.Shopify;
using PluginApp.Webhooks.Payloads;

namespace PluginApp.Webhooks;

/// <summary>The one route every Shopify topic is delivered to (see shopify.app.toml).</summary>
public static class WebhookEndpoints
{
    public const int MaxBodyBytes = 1024 * 1024;

    public static IServiceCollection AddWebhooks(this IServiceCollection services) =>
        services.AddSingleton<WebhookIngestor>();

    public static IEndpointRouteBuilder MapWebhooks(this IEndpointRouteBuilder app)
    {
        app.MapPost("/webhooks", ReceiveAsync).DisableAntiforgery();
        return app;
    }

    internal static async Task<Results<Ok, UnauthorizedHttpResult, BadRequest<ProblemDetailsBody>, StatusCodeHttpResult>> ReceiveAsync(
        HttpRequest request, ShopifyHmac hmac, WebhookIngestor ingestor, CancellationToken ct)
    {
        if (request.ContentLength > MaxBodyBytes) return TypedResults.StatusCode(StatusCodes.Status413PayloadTooLarge);
        var body = await ReadBodyAsync(request, ct);
        if (body is null) return TypedResults.StatusCode(StatusCodes.Status413PayloadTooLarge);

        // Verify before anything is parsed: a forged delivery learns nothing and changes nothing.
        if (!hmac.VerifyWebhook(body, Header(request, "X-Shopify-Hmac-Sha256"))) return TypedResults.Unauthorized();

        var topic = Header(request, "X-Shopify-Topic");
        var deliveryId = Header(request, "X-Shopify-Webhook-Id");
        if (string.IsNullOrEmpty(topic) || string.IsNullOrEmpty(deliveryId) || deliveryId.Length > 200)
            return Problem("X-Shopify-Topic and X-Shopify-Webhook-Id are required.");
        if (!ShopDomain.TryNormalize(Header(request, "X-Shopify-Shop-Domain"), out var shop))
            return Problem("X-Shopify-Shop-Domain is missing or not a myshopify.com domain.");
        DateTimeOffset? triggeredAt = DateTimeOffset.TryParse(Header(request, "X-Shopify-Triggered-At"), CultureInfo.InvariantCulture,
            DateTimeStyles.AssumeUniversal, out var t) ? t.ToUniversalTime() : null;

        var headers = new WebhookDeliveryHeaders(deliveryId, topic, shop, Header(request, "X-Shopify-API-Version"),
            Header(request, "X-Shopify-Event-Id"), triggeredAt);
        try
        {
            await ingestor.IngestAsync(headers, body, ct);
            return TypedResults.Ok();
        }
        catch (MalformedPayloadException e)
        {
            return Problem($"The {topic} payload is malformed: {e.Message}. Nothing was stored.");
        }
    }

    private static BadRequest<ProblemDetailsBody> Problem(string detail) =>
        TypedResults.BadRequest(new ProblemDetailsBody("Bad webhook delivery", 400, detail));

    // Why the newer lower-case names too: Shopify's "events" deliveries use shopify-* headers.
    private static string? Header(HttpRequest r, string name) =>
        r.Headers.TryGetValue(name, out var v) && v.Count > 0 ? v.ToString()
        : r.Headers.TryGetValue(name[2..].ToLowerInvariant(), out var w) && w.Count > 0 ? w.ToString()
        : null;

    /// <summary>Reads at most MaxBodyBytes; null when the body is larger.</summary>
    private static async Task<byte[]?> ReadBodyAsync(HttpRequest request, CancellationToken ct)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(64 * 1024);
        try
        {
            using var ms = new MemoryStream(request.ContentLength is > 0 and <= MaxBodyBytes ? (int)request.ContentLength : 16 * 1024);
            int n;
            while ((n = await request.Body.ReadAsync(buffer, ct)) > 0)
            {
                if (ms.Length + n > MaxBodyBytes) return null;
                ms.Write(buffer, 0, n);
            }
            return ms.ToArray();
        }
        finally { ArrayPool<byte>.Shared.Return(buffer); }
    }
}

/// <summary>An RFC 9457 problem body.</summary>
public sealed record ProblemDetailsBody(string Title, int Status, string Detail);
