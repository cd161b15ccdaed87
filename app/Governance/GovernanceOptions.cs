using Microsoft.Extensions.Options;

namespace PluginApp.Governance;

/// <summary>How models are guarded ("Governance" section), validated at start.</summary>
public sealed class GovernanceOptions
{
    public const string Section = "Governance";

    /// <summary>Errors or timeouts in a row after which a shop's model is cut off and the fallback answers.</summary>
    public int BreakerFailures { get; set; } = 3;

    /// <summary>How long a cut-off model rests before one request tries it again; doubled after each failed try, up to <see cref="BreakerMaxCooldown"/>.</summary>
    public TimeSpan BreakerCooldown { get; set; } = TimeSpan.FromMinutes(5);

    public TimeSpan BreakerMaxCooldown { get; set; } = TimeSpan.FromHours(1);
}

/// <summary>The options, and the inventory's rule: a model kind whose risk is high must have its controls (checked at start).</summary>
internal sealed class GovernanceOptionsValidator(Training.ModelKinds kinds, PluginApp.Admin.Switches.AiFeatures features) : IValidateOptions<GovernanceOptions>
{
    public ValidateOptionsResult Validate(string? name, GovernanceOptions o)
    {
        var problems = new List<string>();
        foreach (var k in kinds.All.Where(k => k.Risk.Score >= Training.AiRisk.HighFrom))
        {
            var missing = new List<string>();
            if (k.Switch is null || features.Find(k.Switch) is null) missing.Add("a switch the merchant can turn off (Switch naming a registered AI feature)");
            if (!k.Breaker) missing.Add("a circuit breaker (Breaker)");
            if (k.DecisionKind is null || !DecisionKinds.All.Contains(k.DecisionKind)) missing.Add("a logged decision for every answer (DecisionKind)");
            if (missing.Count > 0)
                problems.Add($"Model kind '{k.Name}' has a {k.Risk.Level} risk score ({k.Risk.Impact} × {k.Risk.Likelihood} = {k.Risk.Score}) but lacks {string.Join(", ", missing)}.");
        }
        if (o.BreakerFailures is < 1 or > 100) problems.Add($"Governance:BreakerFailures {o.BreakerFailures} must be between 1 and 100.");
        if (o.BreakerCooldown <= TimeSpan.Zero) problems.Add("Governance:BreakerCooldown must be positive.");
        if (o.BreakerMaxCooldown < o.BreakerCooldown) problems.Add("Governance:BreakerMaxCooldown must be at least Governance:BreakerCooldown.");
        return problems.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(problems);
    }
}
