using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using PluginApp.Tests.Infrastructure;
using WireMock.RequestBuilders;
using WireMock.ResponseBuilders;
using WireMock.Server;

namespace PluginApp.Tests.Stripe;

/// <summary>The app with Stripe configured on its main instance, pointed at a WireMock stand-in for Stripe's API.</summary>
public sealed class StripeFixture : AppFixture
{
    public const string Secret = "whsec_test_0123456789abcdef0123456789abcdef";
    public WireMockServer Stripe { get; } = WireMockServer.Start();

    // Every instance on one database runs its jobs: all of them are configured alike, as in production.
    protected override void ConfigureMainInstance(IWebHostBuilder b)
    {
        b.UseSetting("Stripe:WebhookSecret", Secret);
        b.UseSetting("Stripe:ApiKey", "rk_test_readcharges");
        b.UseSetting("Stripe:ApiBase", Stripe.Url!);
    }

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        Stripe.Stop();
    }
}

/// <summary>Stripe webhooks verified by Stripe.net, stored once; the disputed charge read from Stripe's API (a WireMock stand-in).</summary>
public sealed class StripeWebhookTests(StripeFixture app) : IClassFixture<StripeFixture>
{
    private const string Secret = StripeFixture.Secret;
    private WireMockServer _stripe => app.Stripe;

    /// <summary>Stripe's scheme: t=timestamp, v1=hex HMAC-SHA256 of "{t}.{payload}" with the endpoint secret.</summary>
    private static string Sign(string payload, DateTimeOffset at, string secret = Secret)
    {
        var t = at.ToUnixTimeSeconds();
        var v1 = Convert.ToHexStringLower(HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), Encoding.UTF8.GetBytes($"{t}.{payload}")));
        return $"t={t},v1={v1}";
    }

    private static string Dispute(string id, string apiVersion = PluginApp.Stripe.StripeApiVersion.Pinned) => new JsonObject
    {
        ["id"] = id, ["object"] = "event", ["api_version"] = apiVersion, ["created"] = 1796000000, ["livemode"] = false,
        ["pending_webhooks"] = 1, ["request"] = new JsonObject { ["id"] = null, ["idempotency_key"] = null }, ["type"] = "charge.dispute.created",
        ["data"] = new JsonObject
        {
            ["object"] = new JsonObject
            {
                ["id"] = "dp_" + id, ["object"] = "dispute", ["charge"] = "ch_" + id, ["amount"] = 4200, ["currency"] = "usd",
                ["reason"] = "fraudulent", ["status"] = "needs_response",
            },
        },
    }.ToJsonString();

    private static async Task<HttpResponseMessage> PostAsync(HttpClient client, string payload, string signature)
    {
        var req = new HttpRequestMessage(HttpMethod.Post, "/stripe/webhooks") { Content = new StringContent(payload, Encoding.UTF8, "application/json") };
        req.Headers.Add("Stripe-Signature", signature);
        return await client.SendAsync(req);
    }

    [Fact]
    public async Task SignedDispute_IsStoredOnce_AndItsChargeIsReadFromStripe()
    {
        _stripe.Given(Request.Create().WithPath("/v1/charges/ch_evt_ok").UsingGet()).RespondWith(Response.Create().WithStatusCode(200)
            .WithHeader("Content-Type", "application/json")
            .WithBody("""{"id":"ch_evt_ok","object":"charge","amount":4200,"currency":"usd","payment_intent":"pi_9","metadata":{"shopify_order_id":"450789469"}}"""));
        var client = app.Client;
        var payload = Dispute("evt_ok");

        var first = await PostAsync(client, payload, Sign(payload, app.Clock.GetUtcNow()));
        var again = await PostAsync(client, payload, Sign(payload, app.Clock.GetUtcNow()));

        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        Assert.Equal(HttpStatusCode.OK, again.StatusCode);
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM stripe_events WHERE id = 'evt_ok' AND type = 'charge.dispute.created' AND charge_id = 'ch_evt_ok'"));
        var deadline = DateTime.UtcNow.AddSeconds(15);
        while (DateTime.UtcNow < deadline && await app.CountAsync("SELECT count(*) FROM stripe_events WHERE id = 'evt_ok' AND charge->'metadata'->>'shopify_order_id' = '450789469'") == 0)
            await Task.Delay(200);
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM stripe_events WHERE id = 'evt_ok' AND charge->>'payment_intent' = 'pi_9'"));
        var call = Assert.Single(_stripe.LogEntries, e => e.RequestMessage.Path == "/v1/charges/ch_evt_ok");
        Assert.Equal("Bearer rk_test_readcharges", call.RequestMessage.Headers!["Authorization"].ToString());
        Assert.Equal(PluginApp.Stripe.StripeApiVersion.Pinned, call.RequestMessage.Headers!["Stripe-Version"].ToString());
    }

    [Theory]
    [InlineData("forged")]
    [InlineData("stale")]
    [InlineData("tampered")]
    [InlineData("other-api-version")]
    public async Task BadEvent_Is400AndStoresNothing(string how)
    {
        var client = app.Client;
        var id = "evt_bad_" + how.Replace('-', '_');
        var payload = Dispute(id, how == "other-api-version" ? "2024-06-20" : PluginApp.Stripe.StripeApiVersion.Pinned);
        var now = app.Clock.GetUtcNow();
        var (body, signature) = how switch
        {
            "forged" => (payload, Sign(payload, now, "whsec_someone_else_000000000000000000")),
            "stale" => (payload, Sign(payload, now.AddMinutes(-10))),
            "tampered" => (payload.Replace("4200", "1"), Sign(payload, now)),
            _ => (payload, Sign(payload, now)),
        };

        var response = await PostAsync(client, body, signature);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal(0, await app.CountAsync("SELECT count(*) FROM stripe_events WHERE id = $1", id));
    }

    [Fact]
    public async Task NotConfigured_Is503()
    {
        await using var database = await TestDatabase.CreateAsync();
        await using var unconfigured = app.CreateFactory(database.ConnectionString);
        using var client = unconfigured.CreateClient(new() { BaseAddress = new Uri("https://localhost") });
        var payload = Dispute("evt_unconfigured");

        var response = await PostAsync(client, payload, Sign(payload, app.Clock.GetUtcNow()));

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
    }
}
