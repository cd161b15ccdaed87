using Microsoft.Extensions.Options;

namespace PluginApp.Churn;

/// <summary>Churn segments and their Shopify outputs ("Churn" section). Validated at start.</summary>
public sealed class ChurnOptions
{
    public const string Section = "Churn";

    /// <summary>Churn probability (no order in the store's horizon) from which a customer is at risk.</summary>
    public double AtRisk { get; set; } = 0.5;

    /// <summary>From which a customer is lapsing.</summary>
    public double Lapsing { get; set; } = 0.7;

    /// <summary>From which a customer is counted lost.</summary>
    public double Lost { get; set; } = 0.9;

    /// <summary>Share of the store's scored customers, by spend so far, that counts as high value.</summary>
    public double HighValueShare { get; set; } = 0.2;

    /// <summary>Every customer tag the app writes starts with this; tags without it are the merchant's and never touched.</summary>
    public string TagPrefix { get; set; } = "pluginapp:";

    /// <summary>Namespace of the customer metafields (churn_probability, predicted_value, churn_segment).</summary>
    public string MetafieldNamespace { get; set; } = "pluginapp";

    /// <summary>
    /// The held-out ROC-AUC a churn model needs before it is served (0.5 is chance): below it, its segments would put
    /// customers in groups at random, so the store gets no scores and the page says why.
    /// </summary>
    public double MinRocAuc { get; set; } = 0.55;

    /// <summary>Customers per metafieldsSet call (3 metafields each; Shopify takes up to 25 per call).</summary>
    public int MetafieldCustomersPerCall { get; set; } = 8;

    /// <summary>
    /// A customer whose segment stays the same gets her churn_probability and predicted_value metafields rewritten when the
    /// probability moved by at least this much since they were last written (0.05: five points)...
    /// </summary>
    public double MetafieldProbabilityStep { get; set; } = 0.05;

    /// <summary>...or her predicted value by at least this share of the value written (0.1: a tenth, and at least 1 unit).</summary>
    public double MetafieldValueStep { get; set; } = 0.1;
}

internal sealed class ChurnOptionsValidator : IValidateOptions<ChurnOptions>
{
    public ValidateOptionsResult Validate(string? name, ChurnOptions o)
    {
        var f = new List<string>();
        if (!(o.AtRisk > 0 && o.AtRisk < o.Lapsing && o.Lapsing < o.Lost && o.Lost < 1))
            f.Add($"Churn:AtRisk, Lapsing and Lost must rise strictly between 0 and 1; got {o.AtRisk}, {o.Lapsing}, {o.Lost}.");
        if (o.MinRocAuc is < 0.5 or >= 1) f.Add($"Churn:MinRocAuc {o.MinRocAuc} must be at least 0.5 (chance) and below 1.");
        if (o.HighValueShare is <= 0 or >= 1) f.Add($"Churn:HighValueShare {o.HighValueShare} must be between 0 and 1.");
        if (string.IsNullOrWhiteSpace(o.TagPrefix) || o.TagPrefix.Contains(',') || o.TagPrefix.Length > 30)
            f.Add("Churn:TagPrefix must be a short tag prefix without commas, e.g. \"pluginapp:\".");
        if (o.MetafieldNamespace is not { Length: >= 3 and <= 255 } || o.MetafieldNamespace.Any(c => !(char.IsAsciiLetterOrDigit(c) || c is '_' or '-')))
            f.Add("Churn:MetafieldNamespace must be 3 to 255 letters, digits, '-' or '_'.");
        if (o.MetafieldProbabilityStep is <= 0 or > 1) f.Add($"Churn:MetafieldProbabilityStep {o.MetafieldProbabilityStep} must be above 0 and at most 1.");
        if (o.MetafieldValueStep is <= 0 or > 10) f.Add($"Churn:MetafieldValueStep {o.MetafieldValueStep} must be above 0 and at most 10.");
        if (o.MetafieldCustomersPerCall is < 1 or > 8) f.Add($"Churn:MetafieldCustomersPerCall {o.MetafieldCustomersPerCall} must be 1 to 8 (3 metafields each, 25 per call).");
        return f.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(f);
    }
}
