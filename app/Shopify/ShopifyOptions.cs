using Microsoft.Extensions.Options;

namespace PluginApp.Shopify;

/// <summary>The app's credentials and addresses, from the "Shopify" configuration section.</summary>
public sealed class ShopifyOptions
{
    public const string Section = "Shopify";

    /// <summary>API key of the app (SHOPIFY_API_KEY / Shopify__ClientId).</summary>
    public string ClientId { get; set; } = "";

    /// <summary>API secret key; keys every HMAC and session token.</summary>
    public string ClientSecret { get; set; } = "";

    /// <summary>The previous secret during a rotation; Shopify may sign with it for up to an hour.</summary>
    public string? PreviousClientSecret { get; set; }

    /// <summary>When the previous secret stops being accepted (required with it: a rotation has an end).</summary>
    public DateTimeOffset? PreviousClientSecretExpiresAt { get; set; }

    /// <summary>Public https address of this app (application_url in shopify.app.toml).</summary>
    public string AppUrl { get; set; } = "";

    public string Scopes { get; set; } = "read_orders,write_orders,read_products,read_inventory,write_customers,write_discounts,write_merchant_managed_fulfillment_orders,read_shopify_payments_disputes,write_app_proxy";

    /// <summary>
    /// Base address of a shop's Admin endpoints. "{shop}" is replaced by the shop domain. Production keeps the
    /// default; tests and the demo point it at a stand-in server on loopback.
    /// </summary>
    public string ShopUrlTemplate { get; set; } = "https://{shop}";

    /// <summary>Longest wait for one Admin API answer; a mutation that times out is treated as possibly applied (the outbox checks before resending).</summary>
    public TimeSpan AdminApiTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Allowed clock difference for OAuth timestamps, app-proxy timestamps and session tokens.</summary>
    public TimeSpan ClockSkew { get; set; } = TimeSpan.FromSeconds(90);

    public Uri ShopBaseUri(string shopDomain) => new(ShopUrlTemplate.Replace("{shop}", shopDomain, StringComparison.Ordinal).TrimEnd('/') + "/");
}

public sealed class ShopifyOptionsValidator : IValidateOptions<ShopifyOptions>
{
    public ValidateOptionsResult Validate(string? name, ShopifyOptions o)
    {
        var failures = new List<string>();
        if (string.IsNullOrWhiteSpace(o.ClientId)) failures.Add("Shopify:ClientId is required.");
        if (string.IsNullOrWhiteSpace(o.ClientSecret)) failures.Add("Shopify:ClientSecret is required.");
        else if (o.ClientSecret.Length < 32) failures.Add($"Shopify:ClientSecret is {o.ClientSecret.Length} characters; Shopify secrets are at least 32.");
        if (!string.IsNullOrEmpty(o.PreviousClientSecret) && o.PreviousClientSecretExpiresAt is null)
            failures.Add("Shopify:PreviousClientSecretExpiresAt is required with Shopify:PreviousClientSecret (e.g. two hours after the rotation).");
        if (!string.IsNullOrEmpty(o.PreviousClientSecret) && o.PreviousClientSecret == o.ClientSecret)
            failures.Add("Shopify:PreviousClientSecret equals Shopify:ClientSecret.");
        if (!Uri.TryCreate(o.AppUrl, UriKind.Absolute, out var app) || (app.Scheme != "https" && !app.IsLoopback))
            failures.Add($"Shopify:AppUrl '{o.AppUrl}' must be an absolute https URL (http only on loopback).");
        if (!o.ShopUrlTemplate.Contains("{shop}", StringComparison.Ordinal))
            failures.Add($"Shopify:ShopUrlTemplate '{o.ShopUrlTemplate}' must contain {{shop}}.");
        else if (!Uri.TryCreate(o.ShopUrlTemplate.Replace("{shop}", "x.myshopify.com"), UriKind.Absolute, out var shop)
                 || (shop.Scheme != "https" && !shop.IsLoopback))
            failures.Add($"Shopify:ShopUrlTemplate '{o.ShopUrlTemplate}' must be https (http only on loopback).");
        if (o.AdminApiTimeout < TimeSpan.FromSeconds(1) || o.AdminApiTimeout > TimeSpan.FromMinutes(2))
            failures.Add($"Shopify:AdminApiTimeout {o.AdminApiTimeout} must be between 1 s and 2 min.");
        if (o.ClockSkew < TimeSpan.Zero || o.ClockSkew > TimeSpan.FromMinutes(10))
            failures.Add($"Shopify:ClockSkew {o.ClockSkew} must be between 0 and 10 minutes.");
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
