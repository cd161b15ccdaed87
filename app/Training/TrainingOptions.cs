using Microsoft.Extensions.Options;

namespace PluginApp.Training;

public sealed class TrainingOptions
{
    public const string Section = "Training";

    /// <summary>Orders placed since a kind was last trained that trigger a new training of that kind.</summary>
    public int RetrainAfterNewOrders { get; set; } = 200;

    /// <summary>How often shops are checked for new orders (whole minutes, 1 to 59: it becomes a cron schedule).</summary>
    public TimeSpan NewOrdersCheckInterval { get; set; } = TimeSpan.FromMinutes(10);
}

public sealed class TrainingOptionsValidator : IValidateOptions<TrainingOptions>
{
    public ValidateOptionsResult Validate(string? name, TrainingOptions o)
    {
        var f = new List<string>();
        if (o.RetrainAfterNewOrders < 1) f.Add($"Training:RetrainAfterNewOrders {o.RetrainAfterNewOrders} must be at least 1.");
        if (o.NewOrdersCheckInterval.Ticks % TimeSpan.TicksPerMinute != 0 || o.NewOrdersCheckInterval.TotalMinutes is < 1 or > 59)
            f.Add($"Training:NewOrdersCheckInterval {o.NewOrdersCheckInterval} must be a whole number of minutes from 1 to 59.");
        return f.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(f);
    }
}
