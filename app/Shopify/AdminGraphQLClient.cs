using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Options;
using Npgsql;
using Polly;
using Polly.Retry;
using PluginApp.Install;

namespace PluginApp.Shopify;

/// <summary>Top-level GraphQL errors, or an answer we could not read.</summary>
public class ShopifyGraphQLException(string shop, string message) : Exception($"{shop}: {message}");

/// <summary>
/// The shop is frozen (HTTP 402: its Shopify bill is unpaid) or locked (423): nothing sent to it is applied, and it comes
/// back. A caller that retries later treats it as any failed call (it is a <see cref="ShopifyGraphQLException"/>); the
/// outbox keeps its calls waiting untried, since nothing sent was applied.
/// </summary>
public sealed class ShopFrozenException(string shop, string message) : ShopifyGraphQLException(shop, message);

/// <summary>Shopify answered THROTTLED every time the client waited for its bucket: the call was refused before it ran, so
/// nothing was applied. The outbox keeps such a call waiting untried (until 6 Dec 2026 it spent one of its attempts and
/// looked again before resending, as for an answer that did not say).</summary>
public sealed class ShopifyThrottledException(string shop, string message) : ShopifyGraphQLException(shop, message);

/// <summary>A mutation that Shopify refused with userErrors.</summary>
public sealed class ShopifyUserErrorsException(string shop, string mutation, IReadOnlyList<ShopifyUserError> errors)
    : Exception($"{shop}: {mutation} refused: " + string.Join("; ", errors.Select(e => $"{string.Join('.', e.Field)}: {e.Message}")))
{
    public IReadOnlyList<ShopifyUserError> Errors { get; } = errors;
}

public sealed record ShopifyUserError(IReadOnlyList<string> Field, string Message, string? Code);

/// <summary>Shopify answered 401: the token was revoked. The shop is marked and its jobs stop.</summary>
public sealed class ShopTokenRevokedException(string shop) : Exception($"{shop}: the access token was revoked");

/// <summary>
/// The one Admin GraphQL client. Paces itself from extensions.cost.throttleStatus so it is rarely
/// throttled, waits and retries THROTTLED, 429 and 5xx with jittered backoff, turns userErrors into
/// typed failures and marks a shop whose token Shopify revoked.
/// </summary>
public sealed class AdminGraphQLClient(HttpClient http, OfflineTokenStore tokens, IOptions<ShopifyOptions> options,
    TimeProvider clock, AdminGraphQLClient.Pacing pacing, ILogger<AdminGraphQLClient> logger)
{
    /// <summary>What Shopify last told us about a shop's bucket, and when.</summary>
    internal sealed record Bucket(double Available, double Maximum, double RestoreRate, DateTimeOffset At);

    /// <summary>
    /// What this instance learned of each shop's bucket: a singleton, not a static, so two hosts in one process (the tests'
    /// fixtures, each with its own clock) do not pace each other's shops.
    /// </summary>
    public sealed class Pacing
    {
        internal ConcurrentDictionary<string, Bucket> Buckets { get; } = new();

        /// <summary>Forgets what we learned about a shop's bucket (tests start from a clean slate).</summary>
        internal void Reset(string shop) => Buckets.TryRemove(shop, out _);
    }

    private ConcurrentDictionary<string, Bucket> Buckets => pacing.Buckets;
    private const int MaxThrottleWaits = 8;
    /// <summary>Assumed cost of a query before Shopify has told us its real cost.</summary>
    public const double DefaultCost = 50;

    /// <summary>Cost assumed for a mutation before Shopify has told us its real cost.</summary>
    public const double MutationCost = 10;

    // Why two pipelines: a query can be repeated after any failure, but a mutation only when Shopify certainly did not run
    // it (429, or no connection was made). After a 5xx, a timeout or a dropped answer its outcome is unknown, and the
    // caller (the outbox) must check before sending it again.
    // A timeout is HttpClient's TaskCanceledException around a TimeoutException (the caller's own cancellation has none).
    private readonly ResiliencePipeline _queries = Pipeline(clock, new PredicateBuilder().Handle<HttpRequestException>().Handle<TransientShopifyException>()
        .Handle<TaskCanceledException>(e => e.InnerException is TimeoutException));
    private readonly ResiliencePipeline _mutations = Pipeline(clock, new PredicateBuilder()
        .Handle<HttpRequestException>(e => e.HttpRequestError is HttpRequestError.ConnectionError or HttpRequestError.NameResolutionError)
        .Handle<TransientShopifyException>(e => e.Status == HttpStatusCode.TooManyRequests));

    private static ResiliencePipeline Pipeline(TimeProvider clock, PredicateBuilder<object> shouldHandle) => new ResiliencePipelineBuilder { TimeProvider = clock }
        .AddRetry(new RetryStrategyOptions
        {
            ShouldHandle = shouldHandle,
            MaxRetryAttempts = 4,
            BackoffType = DelayBackoffType.Exponential,
            UseJitter = true,
            Delay = TimeSpan.FromMilliseconds(500),
            DelayGenerator = a => ValueTask.FromResult(a.Outcome.Exception is TransientShopifyException { RetryAfter: { } ra } ? ra : (TimeSpan?)null),
        })
        .Build();

    private sealed class TransientShopifyException(HttpStatusCode status, TimeSpan? retryAfter) : HttpRequestException($"HTTP {(int)status}", null, status)
    {
        public TimeSpan? RetryAfter { get; } = retryAfter;
        public HttpStatusCode Status { get; } = status;
    }

    /// <summary>Runs a query or mutation and returns its "data" object.</summary>
    public Task<JsonElement> ExecuteAsync(string shop, string document, object? variables, CancellationToken ct,
        double expectedCost = DefaultCost) => ExecuteAsync(shop, document, variables, _queries, expectedCost, ct);

    private async Task<JsonElement> ExecuteAsync(string shop, string document, object? variables, ResiliencePipeline pipeline,
        double expectedCost, CancellationToken ct)
    {
        for (var attempt = 0; ; attempt++)
        {
            await PaceAsync(shop, expectedCost, ct);
            using var doc = await pipeline.ExecuteAsync(async token => await SendAsync(shop, document, variables, token), ct);
            var root = doc.RootElement;
            RecordThrottle(shop, root);
            if (root.TryGetProperty("errors", out var errors) && errors.ValueKind == JsonValueKind.Array && errors.GetArrayLength() > 0)
            {
                if (IsThrottled(errors) && attempt < MaxThrottleWaits)
                {
                    var cost = root.TryGetProperty("extensions", out var ext) && ext.TryGetProperty("cost", out var c)
                        && c.TryGetProperty("requestedQueryCost", out var rq) ? rq.GetDouble() : expectedCost;
                    expectedCost = Math.Max(expectedCost, cost);
                    logger.LogInformation("{Shop} throttled; waiting for {Cost} points", shop, cost);
                    continue;
                }
                if (IsThrottled(errors)) throw new ShopifyThrottledException(shop, $"throttled {attempt + 1} times: " + errors.GetRawText());
                throw new ShopifyGraphQLException(shop, "GraphQL errors: " + errors.GetRawText());
            }
            if (!root.TryGetProperty("data", out var data) || data.ValueKind != JsonValueKind.Object)
                throw new ShopifyGraphQLException(shop, "the answer has no data");
            return data.Clone();
        }
    }

    /// <summary>Runs a mutation; its payload's userErrors (or any *UserErrors list) become a typed failure.</summary>
    public async Task<JsonElement> MutateAsync(string shop, string document, object? variables, string payloadField, CancellationToken ct)
    {
        var data = await ExecuteAsync(shop, document, variables, _mutations, MutationCost, ct);
        if (!data.TryGetProperty(payloadField, out var payload) || payload.ValueKind != JsonValueKind.Object)
            throw new ShopifyGraphQLException(shop, $"the answer has no {payloadField}");
        var errors = payload.EnumerateObject()
            .Where(p => p.Name.EndsWith("serErrors", StringComparison.Ordinal) && p.Value.ValueKind == JsonValueKind.Array)
            .SelectMany(p => p.Value.EnumerateArray())
            .Select(e => new ShopifyUserError(
                e.TryGetProperty("field", out var f) && f.ValueKind == JsonValueKind.Array ? f.EnumerateArray().Select(x => x.ToString()).ToList() : [],
                e.TryGetProperty("message", out var m) ? m.GetString() ?? "" : "",
                e.TryGetProperty("code", out var code) && code.ValueKind == JsonValueKind.String ? code.GetString() : null))
            .ToList();
        if (errors.Count > 0) throw new ShopifyUserErrorsException(shop, payloadField, errors);
        return payload.Clone();
    }

    private async Task<JsonDocument> SendAsync(string shop, string document, object? variables, CancellationToken ct)
    {
        var token = await tokens.GetAccessTokenAsync(shop, ct);
        var uri = new Uri(options.Value.ShopBaseUri(shop), $"admin/api/{ShopifyApiVersion.Pinned}/graphql.json");
        var body = new JsonObject { ["query"] = document, ["variables"] = variables is null ? null : JsonSerializer.SerializeToNode(variables) };
        using var request = new HttpRequestMessage(HttpMethod.Post, uri)
        {
            Content = new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json"),
        };
        request.Headers.Add("X-Shopify-Access-Token", token);
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
        using var response = await http.SendAsync(request, ct);
        if (response.StatusCode == HttpStatusCode.Unauthorized)
        {
            if (await tokens.MarkRevokedAsync(shop, token, ct))
                logger.LogWarning("{Shop} revoked our access token; its jobs stop until it is reinstalled", shop);
            throw new ShopTokenRevokedException(shop);
        }
        // A frozen shop (its Shopify bill unpaid) or a locked one answers every call so: nothing it is sent is applied, so nothing
        // is spent. Until 5 Dec 2026 each call used an attempt, and after 43 minutes every queued call (holds, releases, tags,
        // codes) had failed for good.
        if (response.StatusCode is HttpStatusCode.PaymentRequired or HttpStatusCode.Locked)
            throw new ShopFrozenException(shop, response.StatusCode == HttpStatusCode.PaymentRequired
                ? "the shop is frozen (HTTP 402: its Shopify bill is unpaid)"
                : "the shop is locked (HTTP 423)");
        if (response.StatusCode == HttpStatusCode.TooManyRequests || (int)response.StatusCode >= 500)
            throw new TransientShopifyException(response.StatusCode, response.Headers.RetryAfter?.Delta);
        if (!response.IsSuccessStatusCode)
            throw new ShopifyGraphQLException(shop, $"HTTP {(int)response.StatusCode}");
        try
        {
            await using var stream = await response.Content.ReadAsStreamAsync(ct);
            return await JsonDocument.ParseAsync(stream, cancellationToken: ct);
        }
        catch (Exception e) when (e is JsonException or IOException)
        {
            // An answer cut short or garbled (the connection dropped mid-way): what Shopify did is unknown.
            throw new HttpRequestException(HttpRequestError.ResponseEnded, $"{shop}: the answer was cut short or unreadable ({e.Message})", e);
        }
    }

    /// <summary>How long until the shop's bucket, as Shopify last reported it, affords a call of this cost (zero: now).</summary>
    public TimeSpan TimeUntilAffordable(string shop, double cost)
    {
        if (!Buckets.TryGetValue(shop, out var b) || b.RestoreRate <= 0) return TimeSpan.Zero;
        var available = Math.Min(b.Maximum, b.Available + (clock.GetUtcNow() - b.At).TotalSeconds * b.RestoreRate);
        return available >= cost ? TimeSpan.Zero : TimeSpan.FromSeconds((Math.Min(cost, b.Maximum) - available) / b.RestoreRate);
    }

    private async Task PaceAsync(string shop, double cost, CancellationToken ct)
    {
        var wait = TimeUntilAffordable(shop, cost);
        if (wait <= TimeSpan.Zero) return;
        logger.LogDebug("{Shop}: pacing {Wait} before a query of cost {Cost}", shop, wait, cost);
        await Task.Delay(wait, clock, ct);
    }

    private void RecordThrottle(string shop, JsonElement root)
    {
        if (root.TryGetProperty("extensions", out var ext) && ext.TryGetProperty("cost", out var cost)
            && cost.TryGetProperty("throttleStatus", out var t)
            && t.TryGetProperty("currentlyAvailable", out var cur) && t.TryGetProperty("maximumAvailable", out var max)
            && t.TryGetProperty("restoreRate", out var rate))
            Buckets[shop] = new Bucket(cur.GetDouble(), max.GetDouble(), rate.GetDouble(), clock.GetUtcNow());
    }

    private static bool IsThrottled(JsonElement errors) => errors.EnumerateArray().Any(e =>
        e.TryGetProperty("extensions", out var x) && x.TryGetProperty("code", out var c) && c.GetString() == "THROTTLED");
}
