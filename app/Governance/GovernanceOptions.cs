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

    /// <summary>
    /// Whether a new version of a kind with staged releases (ModelKind.StagedRelease) goes through shadow and canary before it
    /// serves everyone, when the shop has not chosen (release_settings). A shop's first version always serves at once.
    /// </summary>
    public bool StagedReleases { get; set; } = true;

    /// <summary>Decisions a version answers in shadow (logged, never shown) before its canary.</summary>
    public int ShadowDecisions { get; set; } = 500;

    /// <summary>The share of visitors (a deterministic hash of the visitor) a canary answers.</summary>
    public double CanaryShare { get; set; } = 0.1;

    /// <summary>Canary decisions without a broken guardrail after which the version is promoted.</summary>
    public int CanaryDecisions { get; set; } = 1000;

    /// <summary>The canary is rolled back when more than this share of its decisions failed (an error, an overrun, an unreadable file)...</summary>
    public double CanaryMaxFailureShare { get; set; } = 0.02;

    /// <summary>...once it has made at least this many.</summary>
    public int CanaryMinDecisions { get; set; } = 50;

    /// <summary>The kind's own guardrail (the recommender: click-through) is read once both versions have this many impressions.</summary>
    public int CanaryMinImpressions { get; set; } = 200;

    /// <summary>The canary is rolled back when its click-through is below this fraction of the active version's.</summary>
    public double CanaryClickThroughFloor { get; set; } = 0.8;

    /// <summary>
    /// A canary is rolled back when it gives its costly action to more than this many times the share of units the others got
    /// it (order risk: orders flagged for review; purchase intent: carts given a discount; churn: customers put in a win-back segment).
    /// </summary>
    public double CanaryActionRateCeiling { get; set; } = 2;
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
        if (o.ShadowDecisions is < 1 or > 1_000_000) problems.Add($"Governance:ShadowDecisions {o.ShadowDecisions} must be between 1 and 1000000.");
        if (!(o.CanaryShare is > 0 and <= ReleaseSettings.MaxCanaryShare)) problems.Add($"Governance:CanaryShare {o.CanaryShare} must be above 0 and at most {ReleaseSettings.MaxCanaryShare}.");
        if (o.CanaryDecisions is < 1 or > 1_000_000) problems.Add($"Governance:CanaryDecisions {o.CanaryDecisions} must be between 1 and 1000000.");
        if (!(o.CanaryMaxFailureShare is >= 0 and < 1)) problems.Add($"Governance:CanaryMaxFailureShare {o.CanaryMaxFailureShare} must be at least 0 and below 1.");
        if (o.CanaryMinDecisions < 1) problems.Add($"Governance:CanaryMinDecisions {o.CanaryMinDecisions} must be at least 1.");
        if (o.CanaryMinImpressions < 1) problems.Add($"Governance:CanaryMinImpressions {o.CanaryMinImpressions} must be at least 1.");
        if (!(o.CanaryClickThroughFloor is > 0 and <= 1)) problems.Add($"Governance:CanaryClickThroughFloor {o.CanaryClickThroughFloor} must be above 0 and at most 1.");
        if (!(o.CanaryActionRateCeiling is >= 1 and <= 100)) problems.Add($"Governance:CanaryActionRateCeiling {o.CanaryActionRateCeiling} must be between 1 and 100.");
        return problems.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(problems);
    }
}
