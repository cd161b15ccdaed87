using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Threading.Channels;
using PluginApp.Shopify;

namespace StoreReplay;

public sealed record WebhookSenderOptions
{
    public required string ClientSecret { get; init; }
    public required string ShopDomain { get; init; }
    public string ApiVersion { get; init; } = "2026-07";
    /// <summary>Deliveries started per second; 0 = as fast as the concurrency allows.</summary>
    public double RatePerSecond { get; init; }
    public int Concurrency { get; init; } = 8;
    /// <summary>Attempts per delivery; 5xx, 429 and connection errors are retried, other 4xx are not.</summary>
    public int MaxAttempts { get; init; } = 4;
    public int? MaxDeliveries { get; init; }
    public TimeSpan MaxDuration { get; init; } = TimeSpan.FromHours(2);
}

public sealed record SendReport(IReadOnlyDictionary<string, int> SentByTopic, IReadOnlyDictionary<string, int> FailedByTopic,
    int LinesSent, int NotAttempted, double Seconds, IReadOnlyList<string> FirstErrors)
{
    public int Sent => SentByTopic.Values.Sum();
    public int Failed => FailedByTopic.Values.Sum();
    public int SentOf(string topic) => SentByTopic.GetValueOrDefault(topic);
}

/// <summary>
/// Posts deliveries to {base}/webhooks signed like Shopify, by the app's own <see cref="ShopifySigner"/>. Deliveries
/// with the same partition key go through one worker, so they arrive in order; different partitions run concurrently.
/// Bounded by MaxDeliveries and MaxDuration.
/// </summary>
public sealed class WebhookSender(HttpClient http, WebhookSenderOptions options)
{
    private readonly ConcurrentDictionary<string, int> _sent = new();
    private readonly ConcurrentDictionary<string, int> _failed = new();
    private readonly ConcurrentQueue<string> _errors = new();
    private int _lines;
    private int _notAttempted;

    public async Task<SendReport> SendAsync(IEnumerable<Delivery> deliveries, CancellationToken ct = default)
    {
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(ct);
        limit.CancelAfter(options.MaxDuration);
        var token = limit.Token;
        var clock = Stopwatch.StartNew();
        var lanes = Enumerable.Range(0, Math.Max(1, options.Concurrency))
            .Select(_ => Channel.CreateBounded<Delivery>(new BoundedChannelOptions(64) { SingleReader = true })).ToArray();
        var workers = lanes.Select(lane => Task.Run(() => DrainAsync(lane.Reader, token), CancellationToken.None)).ToArray();
        var queued = 0;
        try
        {
            foreach (var d in deliveries)
            {
                if (queued >= options.MaxDeliveries) break;
                if (options.RatePerSecond > 0)
                {
                    var wait = TimeSpan.FromSeconds(queued / options.RatePerSecond) - clock.Elapsed;
                    if (wait > TimeSpan.FromMilliseconds(1)) await Task.Delay(wait, token);
                }
                await lanes[Lane(d.PartitionKey, lanes.Length)].Writer.WriteAsync(d, token);
                queued++;
            }
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            _errors.Enqueue($"stopped after {options.MaxDuration.TotalSeconds:F0} s (MaxDuration)");
        }
        foreach (var lane in lanes) lane.Writer.TryComplete();
        await Task.WhenAll(workers);
        ct.ThrowIfCancellationRequested();
        return new SendReport(new Dictionary<string, int>(_sent), new Dictionary<string, int>(_failed), _lines, _notAttempted,
            clock.Elapsed.TotalSeconds, _errors.Take(10).ToList());
    }

    private async Task DrainAsync(ChannelReader<Delivery> reader, CancellationToken token)
    {
        // Reads even after the time limit so the producer never blocks on a full lane; those are counted as not attempted.
        await foreach (var d in reader.ReadAllAsync(CancellationToken.None))
        {
            if (token.IsCancellationRequested)
            {
                Interlocked.Increment(ref _notAttempted);
                continue;
            }
            if (await SendOneAsync(d, token))
            {
                _sent.AddOrUpdate(d.Topic, 1, (_, n) => n + 1);
                if (d.Topic == "orders/create") Interlocked.Add(ref _lines, d.Lines);
            }
            else _failed.AddOrUpdate(d.Topic, 1, (_, n) => n + 1);
        }
    }

    private async Task<bool> SendOneAsync(Delivery d, CancellationToken token)
    {
        var hmac = ShopifySigner.Webhook(options.ClientSecret, d.Body);
        for (var attempt = 1; attempt <= options.MaxAttempts; attempt++)
        {
            string error;
            try
            {
                using var request = Request(d, hmac);
                using var response = await http.SendAsync(request, token);
                if (response.IsSuccessStatusCode) return true;
                error = $"{d.Topic} {d.DeliveryId}: HTTP {(int)response.StatusCode} {Truncate(await response.Content.ReadAsStringAsync(token))}";
                if (!Retryable(response.StatusCode)) return Fail(error);
            }
            catch (HttpRequestException e) { error = $"{d.Topic} {d.DeliveryId}: {e.Message}"; }
            catch (TaskCanceledException e) when (!token.IsCancellationRequested) { error = $"{d.Topic} {d.DeliveryId}: timeout ({e.Message})"; }
            catch (OperationCanceledException) { return Fail($"{d.Topic} {d.DeliveryId}: stopped by the time limit"); }
            if (attempt == options.MaxAttempts) return Fail(error);
            try { await Task.Delay(TimeSpan.FromMilliseconds(200 * (1 << (attempt - 1))), token); }
            catch (OperationCanceledException) { return Fail(error); }
        }
        return false;
    }

    private HttpRequestMessage Request(Delivery d, string hmac)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "webhooks") { Content = new ByteArrayContent(d.Body) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        request.Headers.Add("X-Shopify-Topic", d.Topic);
        request.Headers.Add("X-Shopify-Hmac-Sha256", hmac);
        request.Headers.Add("X-Shopify-Shop-Domain", options.ShopDomain);
        request.Headers.Add("X-Shopify-API-Version", options.ApiVersion);
        request.Headers.Add("X-Shopify-Webhook-Id", d.DeliveryId);
        request.Headers.Add("X-Shopify-Event-Id", d.DeliveryId);
        request.Headers.Add("X-Shopify-Triggered-At", Formats.Time(d.TriggeredAt));
        return request;
    }

    private static bool Retryable(HttpStatusCode s) => (int)s >= 500 || s is HttpStatusCode.TooManyRequests or HttpStatusCode.RequestTimeout;

    private bool Fail(string error)
    {
        if (_errors.Count < 10) _errors.Enqueue(error);
        return false;
    }

    private static string Truncate(string s) => s.Length <= 300 ? s : s[..300] + "...";

    /// <summary>FNV-1a, not string.GetHashCode (randomized per process), so a key always maps to the same lane.</summary>
    private static int Lane(string key, int lanes)
    {
        var h = 2166136261u;
        foreach (var ch in key) h = (h ^ ch) * 16777619u;
        return (int)(h % (uint)lanes);
    }
}
