using System.Diagnostics.Metrics;

namespace PluginApp.Operations;

/// <summary>
/// The app's own instruments for operators, on one process-wide meter (exported at the operators' metrics endpoint with
/// ASP.NET Core's request durations and the runtime's). Every tag takes values from a small set the code names (topics we
/// handle, job methods, serving paths), never from input, so the series stay few.
/// </summary>
public static class OperatorMetrics
{
    public const string MeterName = "PluginApp";

    private static readonly Meter Meter = new(MeterName, "1.0");

    private static readonly Histogram<double> WebhookLag = Meter.CreateHistogram<double>("pluginapp.webhook.lag", "s",
        "Seconds from Shopify's X-Shopify-Triggered-At to the delivery's commit in our database (deliveries without the header are not counted).",
        tags: null, advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900, 3600, 21600] });

    private static readonly Histogram<double> JobDuration = Meter.CreateHistogram<double>("pluginapp.job.duration", "s",
        "How long each background job ran on this instance, by job and outcome (succeeded, failed, cancelled).",
        tags: null, advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600] });

    private static readonly Counter<long> ServingAnswers = Meter.CreateCounter<long>("pluginapp.serving.answers", "{answer}",
        "Storefront answers by feature and the path that produced them (e.g. recommendations: model, co_occurrence, bestsellers, switched_off).");

    private static readonly Counter<long> WebhookBatchRetries = Meter.CreateCounter<long>("pluginapp.webhook.batch_retries", "{retry}",
        "Batches of webhook deliveries written again, by reason: deadlock (with another transaction; each waited out PostgreSQL's " +
        "deadlock timeout), unattributed (an error that names no delivery: written again a delivery a round trip), delivery (one " +
        "delivery's own error: written again without it, or with it kept aside).");

    /// <summary>A batch of webhook deliveries is written again (<paramref name="reason"/>: deadlock, unattributed or delivery).</summary>
    public static void WebhookBatchRetried(string reason) =>
        WebhookBatchRetries.Add(1, new KeyValuePair<string, object?>("reason", reason));

    /// <summary>A delivery written to our database (a duplicate or a refused one is not): its lag behind Shopify's trigger.</summary>
    public static void WebhookStored(string topic, DateTimeOffset triggeredAt, DateTimeOffset committedAt) =>
        // Why the floor: Shopify's clock and ours differ by a little; a negative lag is clock skew, not news.
        WebhookLag.Record(Math.Max(0, (committedAt - triggeredAt).TotalSeconds), new KeyValuePair<string, object?>("topic", topic));

    /// <summary>A background job finished on this instance.</summary>
    public static void JobPerformed(string job, string outcome, TimeSpan duration) =>
        JobDuration.Record(duration.TotalSeconds, new KeyValuePair<string, object?>("job", job), new KeyValuePair<string, object?>("outcome", outcome));

    /// <summary>A storefront answer of <paramref name="feature"/> produced by <paramref name="path"/> (a constant of the feature, never input).</summary>
    public static void Served(string feature, string path) =>
        ServingAnswers.Add(1, new KeyValuePair<string, object?>("feature", feature), new KeyValuePair<string, object?>("path", path));
}
