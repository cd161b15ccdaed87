using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Hangfire;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;
using Npgsql;
using PluginApp.Compliance;
using PluginApp.Data;
using PluginApp.Jobs;
using Stripe;

namespace PluginApp.Stripe;

/// <summary>The Stripe API version the app speaks, in one place. Stripe.net is built for exactly one; a start-up check keeps them equal.</summary>
public static class StripeApiVersion
{
    public const string Pinned = "2026-10-28.endive";
}

/// <summary>
/// POST /stripe/webhooks/{endpointId}: each connected store has its own endpoint, so the secret to verify with is known
/// before the body is read. The Stripe-Signature header is verified by Stripe.net (EventUtility.ConstructEvent, which also
/// refuses a stale timestamp and an event of another API version); a forged or other store's signature is 400 and stores
/// nothing. Disputes and early fraud warnings are stored once by (connection, event id) and matched to an order by
/// <see cref="StripeChargeJob"/>, so the webhook answers at once. Other event types are acknowledged and not kept.
/// </summary>
public static class StripeWebhooks
{
    public const string Dispute = "charge.dispute.created";
    public const string DisputeClosed = "charge.dispute.closed";
    public const string EarlyFraudWarning = "radar.early_fraud_warning.created";
    public static readonly string[] LabelEvents = [Dispute, DisputeClosed, EarlyFraudWarning];

    public static IServiceCollection AddStripe(this IServiceCollection services)
    {
        services.AddOptions<StripeOptions>().BindConfiguration(StripeOptions.Section).ValidateOnStart();
        services.AddSingleton<IValidateOptions<StripeOptions>, StripeOptionsValidator>();
        if (StripeConfiguration.ApiVersion != StripeApiVersion.Pinned)
            throw new InvalidOperationException($"Stripe.net speaks API version {StripeConfiguration.ApiVersion}; the app is pinned to {StripeApiVersion.Pinned}.");
        services.AddSingleton<StripeConnections>();
        services.AddTransient<StripeChargeJob>();
        // Events are matched to orders by their id and the charge's metadata; an email in the metadata or the object is erased too.
        // An erased event still waiting to be matched is matched no more: matching reads the charge from Stripe again and
        // stored its metadata back (until 5 Dec 2026, at the next sweep).
        services.AddPersonalData(new PersonalDataTable("stripe_events", ["payload", "charge"],
            """
            UPDATE stripe_events SET payload = jsonb_build_object('redacted_at', $5::timestamptz), charge = NULL, retry_at = NULL,
              outcome = CASE WHEN state IN ('pending', 'unmatched') THEN 'erased at the customer''s request before it was matched' ELSE outcome END,
              state = CASE WHEN state IN ('pending', 'unmatched') THEN 'no_label' ELSE state END
            WHERE shop_id = $1 AND NOT payload ? 'redacted_at' AND (order_id IN (SELECT id FROM redaction_orders)
               OR ($4::text IS NOT NULL AND (mentions_email(payload::text, $4) OR mentions_email(charge::text, $4))))
            """,
            Export: """
                SELECT coalesce(jsonb_agg(to_jsonb(e) - 'shop_id' - 'connection_id' ORDER BY e.created_at), '[]') FROM stripe_events e
                WHERE e.shop_id = $1 AND (e.order_id IN (SELECT id FROM redaction_orders)
                   OR ($4::text IS NOT NULL AND (mentions_email(e.payload::text, $4) OR mentions_email(e.charge::text, $4))))
                """));
        // Disputes arrive up to 120 days after a payment; labels need a year of them.
        services.AddRetention(new RetentionRule("Stripe events", TimeSpan.FromDays(400), "DELETE FROM stripe_events WHERE received_at < $1"));
        // What a process that died between storing an event and queueing its job left pending.
        services.AddRecurringJob<StripeChargeJob>("stripe-pending-sweep", j => j.SweepAsync(CancellationToken.None), _ => "*/10 * * * *");
        return services;
    }

    public static IEndpointRouteBuilder MapStripeWebhooks(this IEndpointRouteBuilder app)
    {
        app.MapPost($"{StripeConnections.WebhookPath}/{{endpointId}}", ReceiveAsync).DisableAntiforgery();
        return app;
    }

    private static async Task<Results<Ok, NotFound, ProblemHttpResult, StatusCodeHttpResult>> ReceiveAsync(string endpointId, HttpRequest request,
        IOptions<StripeOptions> options, StripeConnections connections, NpgsqlDataSource db, IBackgroundJobClient jobs, TimeProvider clock,
        ILoggerFactory logs, CancellationToken ct)
    {
        var endpoint = await connections.FindEndpointAsync(endpointId, ct);
        if (endpoint is null) return TypedResults.NotFound();
        var body = await Webhooks.WebhookEndpoints.ReadBodyAsync(request, ct);
        if (body is null) return TypedResults.StatusCode(StatusCodes.Status413PayloadTooLarge);
        var json = Encoding.UTF8.GetString(body);
        var o = options.Value;
        Event stripeEvent;
        try
        {
            stripeEvent = EventUtility.ConstructEvent(json, request.Headers["Stripe-Signature"].ToString(), endpoint.WebhookSecret,
                (long)o.WebhookTolerance.TotalSeconds, clock.GetUtcNow().ToUnixTimeSeconds(), throwOnApiVersionMismatch: true);
        }
        catch (StripeException e)
        {
            logs.CreateLogger(typeof(StripeWebhooks)).LogWarning(Webhooks.WebhookIngestor.SecurityEvent,
                "Refused a Stripe webhook for shop {ShopId}: {Reason}", endpoint.ShopId, e.Message);
            return TypedResults.Problem(title: "Stripe webhook refused", detail: e.Message, statusCode: 400);
        }
        if (!LabelEvents.Contains(stripeEvent.Type)) return TypedResults.Ok();

        using var doc = JsonDocument.Parse(body);
        var obj = doc.RootElement.GetProperty("data").GetProperty("object");
        var objectId = Text(obj, "id");
        var chargeId = Text(obj, "charge");
        await using var cmd = db.CreateCommand("""
            INSERT INTO stripe_events (connection_id, shop_id, id, type, api_version, livemode, created_at, received_at, object_id, charge_id, payload)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::jsonb)
            ON CONFLICT (connection_id, id) DO NOTHING
            """);
        cmd.Parameters.Add(Sql.Param(endpoint.ConnectionId));
        cmd.Parameters.Add(Sql.Param(endpoint.ShopId));
        cmd.Parameters.Add(Sql.Param(stripeEvent.Id));
        cmd.Parameters.Add(Sql.Param(stripeEvent.Type));
        cmd.Parameters.Add(Sql.Param(stripeEvent.ApiVersion));
        cmd.Parameters.Add(Sql.Param(stripeEvent.Livemode));
        cmd.Parameters.Add(Sql.Param(new DateTimeOffset(DateTime.SpecifyKind(stripeEvent.Created, DateTimeKind.Utc))));
        cmd.Parameters.Add(Sql.Param(clock.GetUtcNow()));
        cmd.Parameters.Add(Sql.Text(objectId));
        cmd.Parameters.Add(Sql.Text(chargeId));
        cmd.Parameters.Add(Sql.Param(Kept(obj).ToJsonString()));
        var stored = await cmd.ExecuteNonQueryAsync(ct) == 1;
        // A repeated delivery was stored (and queued) the first time: it queues nothing, so it cannot write a second label.
        if (stored) jobs.Enqueue<StripeChargeJob>(j => j.MatchAsync(endpoint.ConnectionId, stripeEvent.Id, CancellationToken.None));
        return TypedResults.Ok();
    }

    /// <summary>
    /// What is kept of the event's object: what the label needs. Why not all of it: a dispute carries the merchant's evidence
    /// (the customer's name, email, addresses), which we neither need nor want.
    /// </summary>
    private static JsonObject Kept(JsonElement obj)
    {
        var kept = new JsonObject();
        foreach (var name in new[] { "id", "object", "charge", "payment_intent", "reason", "status", "fraud_type", "amount", "currency", "created" })
            if (obj.TryGetProperty(name, out var v) && v.ValueKind is JsonValueKind.String or JsonValueKind.Number or JsonValueKind.True or JsonValueKind.False)
                kept[name] = JsonNode.Parse(v.GetRawText());
        return kept;
    }

    private static string? Text(JsonElement obj, string name) =>
        obj.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
}
