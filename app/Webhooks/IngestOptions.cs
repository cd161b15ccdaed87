using Microsoft.Extensions.Options;

namespace PluginApp.Webhooks;

/// <summary>
/// Group commit of webhook deliveries (<see cref="IngestBatcher"/>): deliveries that arrive together share one transaction
/// and one fsync, and each is answered when that transaction commits.
/// </summary>
public sealed class IngestOptions
{
    public const string Section = "Webhooks:Ingest";

    /// <summary>Most deliveries one transaction holds. 1 turns group commit off (one transaction per delivery, as before).</summary>
    public int MaxBatch { get; set; } = 32;

    /// <summary>
    /// How long a writer that has fewer than <see cref="MaxBatch"/> deliveries waits for more before it writes. Zero takes what
    /// has arrived: under load, deliveries queue while the previous batch commits, so batches grow with the load by themselves.
    /// </summary>
    public TimeSpan MaxWait { get; set; } = TimeSpan.Zero;

    /// <summary>Batches this instance writes at once, each on its own connection.</summary>
    public int Writers { get; set; } = 2;

    /// <summary>
    /// Deliveries parsed and waiting for a writer. When full, a request waits before it queues, so memory stays bounded
    /// (at most this many bodies of at most 1 MiB) whatever the load.
    /// </summary>
    public int QueueCapacity { get; set; } = 256;
}

public sealed class IngestOptionsValidator : IValidateOptions<IngestOptions>
{
    public ValidateOptionsResult Validate(string? name, IngestOptions o)
    {
        var f = new List<string>();
        if (o.MaxBatch is < 1 or > 512) f.Add($"{IngestOptions.Section}:MaxBatch {o.MaxBatch} must be between 1 and 512.");
        if (o.MaxWait < TimeSpan.Zero || o.MaxWait > TimeSpan.FromSeconds(10))
            f.Add($"{IngestOptions.Section}:MaxWait {o.MaxWait} must be between 0 and 10 s (it adds to a quiet delivery's latency).");
        if (o.Writers is < 1 or > 64) f.Add($"{IngestOptions.Section}:Writers {o.Writers} must be between 1 and 64 (each holds a connection while it writes).");
        if (o.QueueCapacity < o.MaxBatch || o.QueueCapacity > 4096)
            f.Add($"{IngestOptions.Section}:QueueCapacity {o.QueueCapacity} must be between MaxBatch ({o.MaxBatch}) and 4096.");
        return f.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(f);
    }
}
