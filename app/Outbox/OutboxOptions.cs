using Microsoft.Extensions.Options;

namespace PluginApp.Outbox;

public sealed class OutboxOptions
{
    public const string Section = "Outbox";

    /// <summary>Attempts before a call is marked failed for good (visible in the admin).</summary>
    public int MaxAttempts { get; set; } = 10;

    /// <summary>First retry delay; doubles per attempt up to MaxDelay.</summary>
    public TimeSpan BaseDelay { get; set; } = TimeSpan.FromSeconds(5);

    public TimeSpan MaxDelay { get; set; } = TimeSpan.FromHours(1);

    /// <summary>How long a claimed call is reserved for the instance sending it; after that another attempt may take it (and checks first).</summary>
    public TimeSpan Lease { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>Calls one drain of a shop sends before it yields its worker (and queues itself again).</summary>
    public int BatchSize { get; set; } = 50;
}

public sealed class OutboxOptionsValidator : IValidateOptions<OutboxOptions>
{
    public ValidateOptionsResult Validate(string? name, OutboxOptions o)
    {
        var f = new List<string>();
        if (o.MaxAttempts is < 1 or > 100) f.Add($"Outbox:MaxAttempts {o.MaxAttempts} must be between 1 and 100.");
        if (o.BaseDelay <= TimeSpan.Zero || o.BaseDelay > o.MaxDelay) f.Add($"Outbox:BaseDelay {o.BaseDelay} must be positive and at most MaxDelay {o.MaxDelay}.");
        if (o.Lease < TimeSpan.FromSeconds(5) || o.Lease > TimeSpan.FromHours(1)) f.Add($"Outbox:Lease {o.Lease} must be between 5 s and 1 h.");
        if (o.BatchSize is < 1 or > 1000) f.Add($"Outbox:BatchSize {o.BatchSize} must be between 1 and 1000.");
        return f.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(f);
    }
}
