using System.Buffers;
using System.Globalization;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;
using PluginApp.Compliance;
using PluginApp.Data;
using PluginApp.Jobs;
using PluginApp.Shopify;
using PluginApp.StoreData;

namespace PluginApp.Webhooks;

/// <summary>The one route every Shopify topic is delivered to (see shopify.app.toml).</summary>
public static class WebhookEndpoints
{
    public const int MaxBodyBytes = 1024 * 1024;

    /// <summary>
    /// The delivery records d that hold the customer's data (the personal-data parameters $1 to $4 and redaction_orders). A
    /// refund's or a transaction's body names only its order: one the erasure listed is hers whether we hold it or not.
    /// </summary>
    private const string CustomersDeliveries = $"""
        d.shop_id = $1 AND NOT d.body ? 'redacted_at' AND (
             d.body @> jsonb_build_object('customer', jsonb_build_object('id', $2::bigint))
          OR (d.topic LIKE 'customers/%' AND d.body @> jsonb_build_object('id', $2::bigint))
          OR (d.topic = '{WebhookTopics.ConsentTopic}' AND d.body @> jsonb_build_object('customer_id', $2::bigint))
          OR (d.topic LIKE 'orders/%' AND ((d.body ->> 'id')::text IN (SELECT id::text FROM redaction_orders) OR (d.body ->> 'id') = ANY($3::bigint[]::text[])))
          OR (d.topic IN ('refunds/create', 'order_transactions/create') AND ((d.body ->> 'order_id')::text IN (SELECT id::text FROM redaction_orders)
                OR (d.body ->> 'order_id') = ANY($3::bigint[]::text[])))
          OR (d.topic LIKE 'carts/%' AND (d.body ->> 'token') IN (SELECT cart_token FROM redaction_carts))
          OR (d.topic LIKE 'checkouts/%' AND (d.body ->> 'token') IN (SELECT checkout_token FROM redaction_orders))
          OR ($4::text IS NOT NULL AND mentions_email(d.body::text, $4))
          OR (d.raw_body IS NOT NULL AND position(convert_to($2::text, 'UTF8') in d.raw_body) > 0)
          -- Her email as a whole JSON string in a body kept as bytes (a guest checkout's): the bytes read as text with
          -- anything not ASCII escaped, so no byte sequence stops the erasure.
          OR (d.raw_body IS NOT NULL AND $4::text IS NOT NULL AND position(lower('"' || $4::text || '"') in lower(encode(d.raw_body, 'escape'))) > 0))
        """;

    public static IServiceCollection AddWebhooks(this IServiceCollection services)
    {
        services.AddSingleton<WebhookIngestor>();
        services.AddOptions<IngestOptions>().BindConfiguration(IngestOptions.Section).ValidateOnStart();
        services.AddSingleton<IValidateOptions<IngestOptions>, IngestOptionsValidator>();
        services.AddSingleton<IngestBatcher>();
        services.AddHostedService(sp => sp.GetRequiredService<IngestBatcher>());
        services.AddSingleton<WebhookTopicTable>();
        services.AddRecurringJob<DeletedOrdersRecheck>(DeletedOrdersRecheck.JobId, j => j.RunAsync(CancellationToken.None), _ => "*/5 * * * *");
        // Why at start: a topic two features both claim must stop the deploy, not fail its first delivery.
        services.AddHostedService<WebhookTopicCheck>();
        // Raw bodies of the customer's deliveries: those naming the customer, her orders, checkouts and carts, or (guest
        // orders) her email.
        // Why exported too: a delivery kept aside as failed, or of a topic the app does not act on, keeps its whole body,
        // which no exported row holds.
        services.AddPersonalData(new PersonalDataTable("webhook_deliveries", ["body", "raw_body"],
            $"UPDATE webhook_deliveries d SET body = jsonb_build_object('redacted_at', $5::timestamptz), raw_body = NULL WHERE {CustomersDeliveries}",
            Export: $"""
                SELECT coalesce(jsonb_agg(jsonb_build_object('topic', d.topic, 'received_at', d.received_at, 'body', d.body,
                         'raw_body', encode(d.raw_body, 'escape')) ORDER BY d.received_at), '[]')
                FROM webhook_deliveries d WHERE {CustomersDeliveries}
                """));
        services.AddNotPersonal("webhook_deliveries", "shop_domain", "the merchant's shop, erased by shop/redact");
        // Deliveries for shops we do not hold carry no personal data (the body is withheld), and are kept a week for debugging.
        services.AddRetention(new RetentionRule("deliveries for shops we do not hold", TimeSpan.FromDays(7),
            "DELETE FROM webhook_deliveries WHERE shop_id IS NULL AND received_at < $1"));
        // Every other delivery's record (a summary, a body the app does not act on, or one kept aside as failed) for 30 days:
        // Shopify retries a delivery for 4 hours, so a copy is refused long after it can come; the Operations page shows 7 days.
        services.AddRetention(new RetentionRule("every other webhook delivery's record", TimeSpan.FromDays(30),
            "DELETE FROM webhook_deliveries WHERE received_at < $1"));
        return services;
    }

    public static IEndpointRouteBuilder MapWebhooks(this IEndpointRouteBuilder app)
    {
        app.MapPost("/webhooks", ReceiveAsync).DisableAntiforgery();
        return app;
    }

    internal static async Task<Results<Ok, UnauthorizedHttpResult, ProblemHttpResult, StatusCodeHttpResult>> ReceiveAsync(
        HttpRequest request, ShopifyHmac hmac, IngestBatcher ingestor, WebhookTopicTable topics, TimeProvider clock, CancellationToken ct)
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
            var result = await ingestor.IngestAsync(headers, body, ct);
            if (triggeredAt is { } triggered && result.Outcome is not (IngestOutcome.Duplicate or IngestOutcome.Refused))
                // Why "other": the topic header is not signed, so only topics we handle become a label.
                Operations.OperatorMetrics.WebhookStored(topics.Handlers.ContainsKey(topic) || topic is WebhookTopics.AppUninstalled or WebhookTopics.ShopRedact ? topic : "other", triggered, clock.GetUtcNow());
            // A refused replay gets a 4xx and changes nothing; a body kept aside as failed gets 200 so Shopify stops retrying it.
            return result.Outcome == IngestOutcome.Refused
                ? TypedResults.Problem(title: "Webhook refused", detail: result.Reason, statusCode: StatusCodes.Status403Forbidden)
                : TypedResults.Ok();
        }
        catch (MalformedPayloadException e)
        {
            return Problem($"The {topic} payload is malformed: {e.Message}. Nothing was stored.");
        }
        catch (IngestStoppedException)
        {
            // Not stored (the app is stopping): Shopify sends it again, to this instance or another.
            request.HttpContext.Response.Headers.RetryAfter = DatabaseUnavailable.RetryAfterSeconds.ToString(CultureInfo.InvariantCulture);
            return TypedResults.StatusCode(StatusCodes.Status503ServiceUnavailable);
        }
    }

    private static ProblemHttpResult Problem(string detail) =>
        TypedResults.Problem(title: "Bad webhook delivery", detail: detail, statusCode: StatusCodes.Status400BadRequest);

    // Why the newer lower-case names too: Shopify's "events" deliveries use shopify-* headers.
    private static string? Header(HttpRequest r, string name) =>
        r.Headers.TryGetValue(name, out var v) && v.Count > 0 ? v.ToString()
        : r.Headers.TryGetValue(name[2..].ToLowerInvariant(), out var w) && w.Count > 0 ? w.ToString()
        : null;

    /// <summary>Reads at most MaxBodyBytes; null when the body is larger.</summary>
    internal static async Task<byte[]?> ReadBodyAsync(HttpRequest request, CancellationToken ct)
    {
        if (request.ContentLength > MaxBodyBytes) return null;
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

/// <summary>Builds the topic table when the app starts (resolving it is the check), so a topic registered twice fails the start.</summary>
internal sealed class WebhookTopicCheck(WebhookTopicTable table) : IHostedService
{
    public WebhookTopicTable Table { get; } = table;
    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
