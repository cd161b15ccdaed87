using Microsoft.Extensions.Options;

namespace PluginApp.Stripe;

/// <summary>Stripe, for disputes and early fraud warnings (labels for the order-risk model). Off until configured.</summary>
public sealed class StripeOptions
{
    public const string Section = "Stripe";

    /// <summary>The webhook endpoint's signing secret (whsec_...). Unset: /stripe/webhooks answers 503 and stores nothing.</summary>
    public string? WebhookSecret { get; set; }

    /// <summary>A restricted key that may read charges (rk_... or sk_...). Unset: events are stored without their charge.</summary>
    public string? ApiKey { get; set; }

    /// <summary>Where the Stripe API is; tests point it at a stand-in on loopback.</summary>
    public string ApiBase { get; set; } = "https://api.stripe.com";

    /// <summary>How old a signed event may be (Stripe signs a timestamp; older deliveries are replays).</summary>
    public TimeSpan WebhookTolerance { get; set; } = TimeSpan.FromMinutes(5);
}

public sealed class StripeOptionsValidator : IValidateOptions<StripeOptions>
{
    public ValidateOptionsResult Validate(string? name, StripeOptions o)
    {
        var f = new List<string>();
        if (o.WebhookSecret is { Length: > 0 } s && !s.StartsWith("whsec_", StringComparison.Ordinal))
            f.Add("Stripe:WebhookSecret must be the endpoint's signing secret (whsec_...).");
        if (!Uri.TryCreate(o.ApiBase, UriKind.Absolute, out var api) || (api.Scheme != "https" && !api.IsLoopback))
            f.Add($"Stripe:ApiBase '{o.ApiBase}' must be an absolute https URL (http only on loopback).");
        if (o.WebhookTolerance < TimeSpan.FromSeconds(10) || o.WebhookTolerance > TimeSpan.FromHours(1))
            f.Add($"Stripe:WebhookTolerance {o.WebhookTolerance} must be between 10 s and 1 h.");
        return f.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(f);
    }
}
