using Microsoft.Extensions.Options;

namespace PluginApp.Risk;

public sealed class RiskOptions
{
    public const string Section = "Risk";

    /// <summary>
    /// How long after an order its outcome counts as known: younger orders are left out of training and counted as unknown
    /// in the backtest. Chargebacks arrive for months (60 days by default); a data set whose labels arrive after a known
    /// delay (the fraud simulation's 7 days) sets that.
    /// </summary>
    public TimeSpan LabelMaturity { get; set; } = TimeSpan.FromDays(60);
}

public sealed class RiskOptionsValidator : IValidateOptions<RiskOptions>
{
    public ValidateOptionsResult Validate(string? name, RiskOptions o) =>
        o.LabelMaturity < TimeSpan.FromDays(1) || o.LabelMaturity > TimeSpan.FromDays(365)
            ? ValidateOptionsResult.Fail($"Risk:LabelMaturity {o.LabelMaturity} must be between 1 and 365 days.")
            : ValidateOptionsResult.Success;
}
