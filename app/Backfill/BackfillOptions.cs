using Microsoft.Extensions.Options;

namespace PluginApp.Backfill;

public sealed class BackfillOptions
{
    public const string Section = "Backfill";

    /// <summary>Orders created in this many past days are imported, when the store granted <see cref="ReadAllOrders"/>.</summary>
    public int OrderHistoryDays { get; set; } = 365;

    /// <summary>The optional scope without which Shopify shows an app only a store's last <see cref="DaysWithoutReadAllOrders"/> days of orders.</summary>
    public const string ReadAllOrders = "read_all_orders";

    public const int DaysWithoutReadAllOrders = 60;

    /// <summary>The days of orders a store's history import asks for, by whether it granted <see cref="ReadAllOrders"/>.</summary>
    public int OrderDays(bool allOrders) => allOrders ? OrderHistoryDays : Math.Min(OrderHistoryDays, DaysWithoutReadAllOrders);

    /// <summary>How often a running bulk operation is polled.</summary>
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromSeconds(3);

    /// <summary>Longest wait for one bulk operation before the backfill fails (and is retried later).</summary>
    public TimeSpan MaxWait { get; set; } = TimeSpan.FromHours(6);

    /// <summary>Parent objects (orders, products, customers) written per transaction. Why 1,000: each chunk has work of its
    /// own beside its rows (each statement sorts the chunk's parents; the progress update, the commit), and a chunk's order
    /// lines (28,000 for 1,000 of the Online Retail set's orders, 4.5 MB) are sorted within the merge's 32 MB up to about 200
    /// lines per order.</summary>
    public int ChunkSize { get; set; } = 1000;

    /// <summary>
    /// Chunks merged at once, each in its own transaction on its own connection. Why more than one: a chunk is one
    /// PostgreSQL backend's work, and chunks hold disjoint parents and children, so another core merges the next meanwhile.
    /// </summary>
    public int MergeConnections { get; set; } = 2;
}

public sealed class BackfillOptionsValidator : IValidateOptions<BackfillOptions>
{
    public ValidateOptionsResult Validate(string? name, BackfillOptions o)
    {
        var f = new List<string>();
        if (o.OrderHistoryDays is < 1 or > 3650) f.Add($"Backfill:OrderHistoryDays {o.OrderHistoryDays} must be between 1 and 3650.");
        if (o.PollInterval < TimeSpan.FromMilliseconds(10)) f.Add($"Backfill:PollInterval {o.PollInterval} must be at least 10 ms.");
        if (o.MaxWait < o.PollInterval) f.Add($"Backfill:MaxWait {o.MaxWait} must be at least PollInterval.");
        if (o.ChunkSize is < 1 or > 10_000) f.Add($"Backfill:ChunkSize {o.ChunkSize} must be between 1 and 10000.");
        if (o.MergeConnections is < 1 or > 16) f.Add($"Backfill:MergeConnections {o.MergeConnections} must be between 1 and 16.");
        return f.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(f);
    }
}
