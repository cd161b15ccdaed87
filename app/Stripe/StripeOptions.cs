using Microsoft.Extensions.Options;

namespace PluginApp.Stripe;

/// <summary>
/// How the app talks to Stripe. The accounts are the stores' own (see <see cref="StripeConnections"/>): each store connects
/// its account with a restricted key and a webhook signing secret; there is no app-wide Stripe account.
/// </summary>
public sealed class StripeOptions
{
    public const string Section = "Stripe";

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
        if (!Uri.TryCreate(o.ApiBase, UriKind.Absolute, out var api) || (api.Scheme != "https" && !api.IsLoopback))
            f.Add($"Stripe:ApiBase '{o.ApiBase}' must be an absolute https URL (http only on loopback).");
        if (o.WebhookTolerance < TimeSpan.FromSeconds(10) || o.WebhookTolerance > TimeSpan.FromHours(1))
            f.Add($"Stripe:WebhookTolerance {o.WebhookTolerance} must be between 10 s and 1 h.");
        return f.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(f);
    }
}
