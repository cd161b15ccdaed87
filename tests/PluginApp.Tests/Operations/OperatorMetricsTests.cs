using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Hangfire;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using PluginApp.Tests.Infrastructure;
using PluginApp.Tests.Recommendations;

namespace PluginApp.Tests.Operations;

/// <summary>The app with the operators' token set, so metrics are collected; the outbox backlog is read every second.</summary>
public sealed class OperatorMetricsFixture : AppFixture
{
    public const string Token = "operators-metrics-0123456789abcdef01234567";

    protected override void ConfigureMainInstance(IWebHostBuilder builder)
    {
        builder.UseSetting("Scheduling:DashboardToken", Token);
        builder.UseSetting("Operations:OutboxBacklogRefresh", "00:00:01");
    }
}

/// <summary>
/// Why alone: meters are process-wide, so another app host running at the same time would add its own requests, jobs and
/// outbox gauges to what this app exports, and one that stops ends the metric streams this app's exporter shares with it.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class OperatorMetricsCollection
{
    public const string Name = "Operator metrics";
}

/// <summary>Probe jobs for the job metrics: one succeeds, one fails once (no retry).</summary>
public sealed class OperatorProbeJob
{
    // Sleeps well past the 0.02 s the test asserts: timers may fire a millisecond early.
    public Task SucceedAsync(CancellationToken ct) => Task.Delay(60, ct);

    [AutomaticRetry(Attempts = 0)]
    public Task FailAsync() => throw new InvalidOperationException("the probe fails on purpose");
}

[Collection(OperatorMetricsCollection.Name)]
public sealed class OperatorMetricsTests(OperatorMetricsFixture app) : IClassFixture<OperatorMetricsFixture>
{
    private const string Path = "/operator/metrics";

    [Fact]
    public async Task OperatorMetrics_WithoutToken_Is401AndAsksForIt()
    {
        var response = await app.Client.GetAsync(Path);

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Contains("Basic", response.Headers.WwwAuthenticate.ToString());
        Assert.DoesNotContain("http_server", await response.Content.ReadAsStringAsync());
    }

    [Theory]
    [InlineData("Bearer", "not-the-operators-token-0123456789abcdef")]
    [InlineData("Basic", "ops:not-the-operators-token-0123456789abcdef")]
    [InlineData("Basic", "operators-metrics-0123456789abcdef01234567")] // the token as a user name, no password
    public async Task OperatorMetrics_WithAWrongToken_Is401(string scheme, string credential)
    {
        var parameter = scheme == "Basic" ? Convert.ToBase64String(Encoding.UTF8.GetBytes(credential)) : credential;
        var request = new HttpRequestMessage(HttpMethod.Get, Path) { Headers = { Authorization = new AuthenticationHeaderValue(scheme, parameter) } };

        var response = await app.Client.SendAsync(request);

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
    }

    [Fact]
    public async Task OperatorMetrics_WithToken_ServesPrometheusTextWithRequestDurationsPerRoute()
    {
        Assert.Equal(HttpStatusCode.OK, (await app.Client.GetAsync("/healthz")).StatusCode);

        // Why until: the request's duration is recorded when its context ends, which the in-memory server does after answering.
        var text = await ScrapeUntilAsync(t => Sum(t, "http_server_request_duration_seconds_count", ("http_route", "/healthz"), ("http_response_status_code", "200")) >= 1);
        var (response, _) = await ScrapeAsync();

        Assert.Equal("text/plain", response.Content.Headers.ContentType?.MediaType);
        Assert.Contains("no-store", response.Headers.CacheControl?.ToString());
        Assert.Contains("# TYPE http_server_request_duration_seconds histogram", text);
    }

    [Fact]
    public async Task OperatorMetrics_AfterASignedWebhook_ShowsItsLagByTopic()
    {
        const string shop = "ops-webhook-lag.myshopify.com";
        await app.InstallShopAsync(shop);

        var delivered = await app.SendWebhookAsync("orders/create", shop, ShopifyPayloads.Order(7_301_001).ToJsonString());
        var forged = await app.SendWebhookAsync("products/create", shop, "{}", hmac: "bm90LXRoZS1zaWduYXR1cmU=");

        Assert.Equal(HttpStatusCode.OK, delivered.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, forged.StatusCode);
        var text = await ScrapeUntilAsync(t => Sum(t, "pluginapp_webhook_lag_seconds_count", ("topic", "orders/create")) >= 1);
        Assert.True(Sum(text, "pluginapp_webhook_lag_seconds_bucket", ("topic", "orders/create"), ("le", "+Inf")) >= 1, text);
        Assert.Equal(0, Sum(text, "pluginapp_webhook_lag_seconds_count", ("topic", "products/create")));
    }

    [Fact]
    public async Task OperatorMetrics_OutboxBacklog_ReflectsPendingAndFailedRows()
    {
        const string shop = "ops-outbox-backlog.myshopify.com";
        var shopId = await app.InstallShopAsync(shop);
        // Due tomorrow, so no drain sends them meanwhile; failed ones stay until someone retries them.
        for (var i = 0; i < 5; i++)
        {
            await using var cmd = app.Db.CreateCommand("""
                INSERT INTO outbox_messages (shop_id, resource_key, operation, variables, idempotency_key, created_at, next_attempt_at, attempts, failed_at)
                VALUES ($1, $2, 'tagsAdd', '{}', $2, now(), now() + interval '1 day', 1, CASE WHEN $3 THEN now() END)
                """);
            cmd.Parameters.AddWithValue(shopId);
            cmd.Parameters.AddWithValue($"ops-backlog-{i}");
            cmd.Parameters.AddWithValue(i >= 3);
            await cmd.ExecuteNonQueryAsync();
        }

        long pending = 0, failed = 0;
        var text = await ScrapeUntilAsync(async t =>
        {
            pending = await app.CountAsync("SELECT count(*) FROM outbox_messages WHERE completed_at IS NULL AND failed_at IS NULL");
            failed = await app.CountAsync("SELECT count(*) FROM outbox_messages WHERE failed_at IS NOT NULL");
            return Sum(t, "pluginapp_outbox_messages", ("state", "pending")) == pending && Sum(t, "pluginapp_outbox_messages", ("state", "failed")) == failed;
        });

        Assert.True(pending >= 3, $"{pending} pending");
        Assert.True(failed >= 2, $"{failed} failed");
        Assert.Contains("pluginapp_outbox_oldest_due_age_seconds", text);
    }

    [Fact]
    public async Task OperatorMetrics_AfterJobsRun_ShowsTheirDurationsByOutcome()
    {
        var jobs = app.Factory.Services.GetRequiredService<IBackgroundJobClient>();

        jobs.Enqueue<OperatorProbeJob>(j => j.SucceedAsync(CancellationToken.None));
        jobs.Enqueue<OperatorProbeJob>(j => j.FailAsync());

        var text = await ScrapeUntilAsync(t =>
            Sum(t, "pluginapp_job_duration_seconds_count", ("job", "OperatorProbeJob.SucceedAsync"), ("outcome", "succeeded")) >= 1
            && Sum(t, "pluginapp_job_duration_seconds_count", ("job", "OperatorProbeJob.FailAsync"), ("outcome", "failed")) >= 1);
        Assert.True(Sum(text, "pluginapp_job_duration_seconds_sum", ("job", "OperatorProbeJob.SucceedAsync"), ("outcome", "succeeded")) >= 0.02, text);
    }

    [Fact]
    public async Task OperatorMetrics_AfterAProxyRecommendation_CountsItsServingPath_AndTheHeldCatalog()
    {
        const string shop = "ops-serving-path.myshopify.com";
        await app.InstallShopAsync(shop);
        var url = StoreSeed.Signed("/proxy/recommendations", shop, "placement=product&product_id=7301002&visitor_id=ops-visitor", app.Clock.GetUtcNow());

        var response = await app.Client.GetAsync(url);

        response.EnsureSuccessStatusCode();
        var path = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("path").GetString()!;
        var text = await ScrapeUntilAsync(t => Sum(t, "pluginapp_serving_answers_total", ("feature", "recommendations"), ("path", path)) >= 1);
        // The shop's catalog snapshot is now held, and the operators see it against its budget.
        Assert.True(Sum(text, "pluginapp_serving_catalog_cache_shops") >= 1, text);
        Assert.True(Sum(text, "pluginapp_serving_catalog_cache_size_bytes") > 0, text);
        Assert.True(Sum(text, "pluginapp_serving_catalog_loads_total") >= 1, text); // the load that made it held
    }

    [Fact]
    public async Task OperatorMetrics_ReachedThroughTheAppProxyPrefix_Is404EvenWithTheToken()
    {
        // Kestrel removes dot segments before routing; the request line still shows the way the request came.
        var viaDotSegments = await app.Factory.Server.SendAsync(c =>
        {
            c.Request.Method = "GET";
            c.Request.Path = Path;
            c.Features.Get<IHttpRequestFeature>()!.RawTarget = "/proxy/%2E%2E/operator/metrics";
            c.Request.Headers.Authorization = $"Bearer {OperatorMetricsFixture.Token}";
        });
        var withProxyParameters = await app.Client.SendAsync(new HttpRequestMessage(HttpMethod.Get,
            StoreSeed.Signed(Path, "ops-proxy-way.myshopify.com", "x=1", app.Clock.GetUtcNow()))
            { Headers = { Authorization = new AuthenticationHeaderValue("Bearer", OperatorMetricsFixture.Token) } });

        Assert.Equal(StatusCodes.Status404NotFound, viaDotSegments.Response.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, withProxyParameters.StatusCode);
    }

    private async Task<(HttpResponseMessage Response, string Text)> ScrapeAsync()
    {
        var response = await app.Client.SendAsync(new HttpRequestMessage(HttpMethod.Get, Path)
            { Headers = { Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"prometheus:{OperatorMetricsFixture.Token}"))) } });
        return (response, await response.Content.ReadAsStringAsync());
    }

    private Task<string> ScrapeUntilAsync(Func<string, bool> done) => ScrapeUntilAsync(t => Task.FromResult(done(t)));

    /// <summary>Scrapes until <paramref name="done"/> holds (the exporter caches an answer briefly, jobs and the backlog read take a moment).</summary>
    private async Task<string> ScrapeUntilAsync(Func<string, Task<bool>> done)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            var (response, text) = await ScrapeAsync();
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            if (await done(text)) return text;
            if (DateTime.UtcNow > deadline) Assert.Fail($"the metrics never showed what was expected:\n{text}");
            await Task.Delay(250);
        }
    }

    private static readonly Regex Sample = new(@"^(?<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?<labels>.*)\})?\s+(?<value>\S+)", RegexOptions.Compiled);
    private static readonly Regex Label = new(@"(?<key>[a-zA-Z_][a-zA-Z0-9_]*)=""(?<value>(?:[^""\\]|\\.)*)""", RegexOptions.Compiled);

    /// <summary>The sum of the samples of <paramref name="name"/> whose labels include every one given.</summary>
    private static double Sum(string text, string name, params (string Key, string Value)[] labels)
    {
        var sum = 0.0;
        foreach (var line in text.Split('\n'))
        {
            if (line.StartsWith('#') || Sample.Match(line) is not { Success: true } m || m.Groups["name"].Value != name) continue;
            var have = Label.Matches(m.Groups["labels"].Value).ToDictionary(l => l.Groups["key"].Value, l => l.Groups["value"].Value);
            if (labels.All(l => have.TryGetValue(l.Key, out var v) && v == l.Value))
                sum += double.Parse(m.Groups["value"].Value, CultureInfo.InvariantCulture);
        }
        return sum;
    }
}

/// <summary>An app with no operators' token: nothing is collected and the endpoint refuses everyone.</summary>
public sealed class OperatorMetricsNoTokenTests(AppFixture app) : IClassFixture<AppFixture>
{
    [Theory]
    [InlineData("Bearer", "operators-metrics-0123456789abcdef01234567")]
    [InlineData("Basic", "ops:")]
    [InlineData(null, null)]
    public async Task OperatorMetrics_WhenNoTokenIsConfigured_RefusesEveryone(string? scheme, string? credential)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, "/operator/metrics");
        if (scheme is not null)
            request.Headers.Authorization = new AuthenticationHeaderValue(scheme, scheme == "Basic" ? Convert.ToBase64String(Encoding.UTF8.GetBytes(credential!)) : credential);

        var response = await app.Client.SendAsync(request);

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Empty(response.Headers.WwwAuthenticate);
    }

    [Theory]
    [InlineData("/proxy/metrics", "Operations:MetricsPath")]
    [InlineData("/operator/metrics/", "Operations:MetricsPath")]
    [InlineData("/operator/../metrics", "Operations:MetricsPath")]
    public async Task Start_WithAMetricsPathThePublicReaches_FailsNamingTheSetting(string path, string setting)
    {
        var e = await app.StartRefusalAsync(b => b.UseSetting("Operations:MetricsPath", path));

        Assert.Contains(setting, e.ToString());
    }

    [Fact]
    public async Task Start_WithATooFrequentOutboxBacklogRead_FailsNamingTheSetting()
    {
        var e = await app.StartRefusalAsync(b => b.UseSetting("Operations:OutboxBacklogRefresh", "00:00:00.100"));

        Assert.Contains("Operations:OutboxBacklogRefresh", e.ToString());
    }
}
