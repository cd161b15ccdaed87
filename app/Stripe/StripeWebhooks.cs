using Microsoft.AspNetCore.Http.HttpResults;
using System.Text;
using System.Text.Json;
using Hangfire;
using Microsoft.Extensions.Options;
using Npgsql;
using NpgsqlTypes;
using PluginApp.Compliance;
using PluginApp.Jobs;
using Stripe;

namespace PluginApp.Stripe;

/// <summary>The Stripe API version the app speaks, in one place. Stripe.net is built for exactly one; a start-up check keeps them equal.</summary>
public static class StripeApiVersion
{
    public const string Pinned = "2026-10-28.endive";
}

/// <summary>
/// POST /stripe/webhooks: the Stripe-Signature header verified by Stripe.net (EventUtility.ConstructEvent, which also
/// refuses an event of another API version), each event stored once by its id. Disputes and early fraud warnings get
/// their charge fetched by a job (the charge's metadata names the order), so the webhook answers at once.
/// </summary>
public static class StripeWebhooks
{
    private static readonly string[] ChargeEvents =
        ["charge.dispute.created", "charge.dispute.updated", "charge.dispute.closed", "radar.early_fraud_warning.created", "radar.early_fraud_warning.updated"];

    public static IServiceCollection AddStripe(this IServiceCollection services)
    {
        services.AddOptions<StripeOptions>().BindConfiguration(StripeOptions.Section).ValidateOnStart();
        services.AddSingleton<IValidateOptions<StripeOptions>, StripeOptionsValidator>();
        if (StripeConfiguration.ApiVersion != StripeApiVersion.Pinned)
            throw new InvalidOperationException($"Stripe.net speaks API version {StripeConfiguration.ApiVersion}; the app is pinned to {StripeApiVersion.Pinned}.");
        services.AddSingleton<IStripeClient>(sp =>
        {
            var o = sp.GetRequiredService<IOptions<StripeOptions>>().Value;
            return new StripeClient(new StripeClientOptions { ApiKey = o.ApiKey, ApiBase = o.ApiBase.TrimEnd('/') });
        });
        services.AddPersonalData(new PersonalDataTable("stripe_events", ["payload", "charge"],
            """
            UPDATE stripe_events SET payload = jsonb_build_object('redacted_at', $5::timestamptz), charge = NULL
            WHERE $4::text IS NOT NULL AND (lower(payload::text) LIKE '%' || lower($4::text) || '%' OR lower(charge::text) LIKE '%' || lower($4::text) || '%')
            """));
        // Disputes arrive up to 120 days after a payment; labels need a year of them.
        services.AddRetention(new RetentionRule("Stripe events", TimeSpan.FromDays(400), "DELETE FROM stripe_events WHERE received_at < $1"));
        return services;
    }

    public static IEndpointRouteBuilder MapStripeWebhooks(this IEndpointRouteBuilder app)
    {
        app.MapPost("/stripe/webhooks", ReceiveAsync).DisableAntiforgery();
        return app;
    }

    private static async Task<Results<Ok, ProblemHttpResult, StatusCodeHttpResult>> ReceiveAsync(HttpRequest request, IOptions<StripeOptions> options, NpgsqlDataSource db,
        IBackgroundJobClient jobs, TimeProvider clock, ILoggerFactory logs, CancellationToken ct)
    {
        var o = options.Value;
        if (string.IsNullOrEmpty(o.WebhookSecret))
            return TypedResults.Problem(title: "Stripe is not configured", detail: "Stripe:WebhookSecret is not set.", statusCode: 503);
        var body = await Webhooks.WebhookEndpoints.ReadBodyAsync(request, ct);
        if (body is null) return TypedResults.StatusCode(StatusCodes.Status413PayloadTooLarge);
        var json = Encoding.UTF8.GetString(body);
        Event stripeEvent;
        try
        {
            stripeEvent = EventUtility.ConstructEvent(json, request.Headers["Stripe-Signature"].ToString(), o.WebhookSecret,
                (long)o.WebhookTolerance.TotalSeconds, clock.GetUtcNow().ToUnixTimeSeconds(), throwOnApiVersionMismatch: true);
        }
        catch (StripeException e)
        {
            logs.CreateLogger(typeof(StripeWebhooks)).LogWarning(Webhooks.WebhookIngestor.SecurityEvent, "Refused a Stripe webhook: {Reason}", e.Message);
            return TypedResults.Problem(title: "Stripe webhook refused", detail: e.Message, statusCode: 400);
        }

        using var doc = JsonDocument.Parse(body);
        var obj = doc.RootElement.GetProperty("data").GetProperty("object");
        var objectId = obj.TryGetProperty("id", out var id) ? id.GetString() : null;
        var chargeId = obj.TryGetProperty("charge", out var c) && c.ValueKind == JsonValueKind.String ? c.GetString() : null;
        await using var cmd = db.CreateCommand("""
            INSERT INTO stripe_events (id, type, account, api_version, livemode, created_at, received_at, object_id, charge_id, payload)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb)
            ON CONFLICT (id) DO NOTHING
            """);
        cmd.Parameters.AddWithValue(stripeEvent.Id);
        cmd.Parameters.AddWithValue(stripeEvent.Type);
        cmd.Parameters.Add(new NpgsqlParameter { Value = (object?)stripeEvent.Account ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
        cmd.Parameters.AddWithValue(stripeEvent.ApiVersion);
        cmd.Parameters.AddWithValue(stripeEvent.Livemode);
        cmd.Parameters.AddWithValue(new DateTimeOffset(stripeEvent.Created, TimeSpan.Zero));
        cmd.Parameters.AddWithValue(clock.GetUtcNow());
        cmd.Parameters.Add(new NpgsqlParameter { Value = (object?)objectId ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
        cmd.Parameters.Add(new NpgsqlParameter { Value = (object?)chargeId ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
        cmd.Parameters.Add(new NpgsqlParameter { Value = json, NpgsqlDbType = NpgsqlDbType.Jsonb });
        var stored = await cmd.ExecuteNonQueryAsync(ct) == 1;
        if (stored && chargeId is not null && ChargeEvents.Contains(stripeEvent.Type) && !string.IsNullOrEmpty(o.ApiKey))
            jobs.Enqueue<StripeChargeJob>(j => j.FetchAsync(stripeEvent.Id, CancellationToken.None));
        return TypedResults.Ok();
    }
}

/// <summary>Reads the charge a dispute or fraud warning is about (its metadata and payment intent name the order) and keeps it with the event.</summary>
public sealed class StripeChargeJob(IStripeClient stripe, NpgsqlDataSource db)
{
    public async Task FetchAsync(string eventId, CancellationToken ct)
    {
        await using var read = db.CreateCommand("SELECT charge_id FROM stripe_events WHERE id = $1 AND charge IS NULL");
        read.Parameters.AddWithValue(eventId);
        if (await read.ExecuteScalarAsync(ct) is not string chargeId) return;
        var charge = await new ChargeService(stripe).GetAsync(chargeId, cancellationToken: ct);
        await using var write = db.CreateCommand("UPDATE stripe_events SET charge = $2::jsonb WHERE id = $1");
        write.Parameters.AddWithValue(eventId);
        write.Parameters.Add(new NpgsqlParameter
        {
            Value = JsonSerializer.Serialize(new { id = charge.Id, payment_intent = charge.PaymentIntentId, metadata = charge.Metadata, amount = charge.Amount, currency = charge.Currency }),
            NpgsqlDbType = NpgsqlDbType.Jsonb,
        });
        await write.ExecuteNonQueryAsync(ct);
    }
}
